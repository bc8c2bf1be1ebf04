"""A TCP relay on loopback that counts what crosses it: bytes each way, when data moved, and
(optionally) a NAT's habit of forgetting a connection that stays silent too long."""

from __future__ import annotations

import asyncio
import contextlib
import time

from server import free_port


class Relay:
    """Forwards loopback TCP to ``upstream``; counts bytes each way and timestamps every chunk.

    With ``nat_s``, a connection silent (both ways) for that long is cut, as a carrier-grade
    NAT or firewall does to idle TCP; the client only learns of it when it next speaks.
    """

    def __init__(self, upstream: int, nat_s: float = 0.0) -> None:
        self.upstream = upstream
        self.nat_s = nat_s
        self.port = free_port()
        self.up = 0
        self.down = 0
        self.times: list[float] = []
        """``time.monotonic()`` of each accepted connection and each chunk of data, both ways."""
        self.connects = 0
        self.cut = 0
        """Connections the NAT forgot."""
        self.flows = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def drained(self) -> None:
        """Wait (up to 10 s) until every connection through the relay has ended both ways."""
        async with asyncio.timeout(10):
            await self.idle.wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connects += 1
        self.flows += 1
        self.idle.clear()
        self.times.append(time.monotonic())
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            last = [time.monotonic()]
            pipes = [
                asyncio.ensure_future(self._pipe(reader, up_writer, True, last)),
                asyncio.ensure_future(self._pipe(up_reader, writer, False, last)),
            ]
            if self.nat_s:
                pipes.append(asyncio.ensure_future(self._nat(last)))
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
                for task in pipes:
                    task.cancel()
                for w in (writer, up_writer):
                    w.transport.abort()
            else:
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self.flows -= 1
            if not self.flows:
                self.idle.set()

    async def _nat(self, last: list[float]) -> None:
        while True:
            idle = time.monotonic() - last[0]
            if idle >= self.nat_s:
                self.cut += 1
                return
            await asyncio.sleep(self.nat_s - idle + 0.01)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up: bool,
        last: list[float],
    ) -> None:
        try:
            while data := await reader.read(65536):
                now = time.monotonic()
                last[0] = now
                self.times.append(now)
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()  # half-close: the other way ends when its side has finished


def bursts(times: list[float], gap: float, since: float, until: float) -> int:
    """How many times the radio woke in [since, until): activity after ``gap`` of quiet."""
    count, last = 0, float("-inf")
    for t in sorted(times):
        if t - last > gap and since <= t < until:
            count += 1
        last = t
    return count
