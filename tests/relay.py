"""A TCP relay on loopback that counts the bytes crossing it each way (as bench/wire.py does):
what the usage records must agree with."""

from __future__ import annotations

import asyncio
import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CountingRelay:
    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.up = 0
        self.down = 0
        self.open_flows = 0
        self._server: asyncio.Server | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drained(self) -> None:
        """Wait (up to 10 s) until every connection through the relay has ended."""
        async with asyncio.timeout(10):
            await self._idle.wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_flows += 1
        self._idle.clear()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            await asyncio.gather(
                self._pipe(reader, up_writer, True),
                self._pipe(up_reader, writer, False),
                return_exceptions=True,
            )
        finally:
            self.open_flows -= 1
            if not self.open_flows:
                self._idle.set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
