"""The SDK's adaptive heartbeat through a NAT that forgets idle connections: the interval grows
while pings are answered, and after the NAT drops the connection the SDK reconnects and settles
below the NAT's timeout."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from wanglai.client import Client
from wanglai.client.heartbeat import REFINE, AdaptiveHeartbeat

from .conftest import Server, free_port

NAT_IDLE_S = 3.2


class Nat:
    """A TCP relay on loopback that drops a connection (both sides, at once) when nothing has
    crossed it for ``idle_s`` — what a carrier NAT does to a silent phone's connection."""

    def __init__(self, upstream_port: int, idle_s: float) -> None:
        self.upstream_port = upstream_port
        self.idle_s = idle_s
        self.port = free_port()
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._flows: dict[asyncio.StreamWriter, list[float | asyncio.StreamWriter]] = {}
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self._watch = asyncio.create_task(self._watchdog())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for writer, (_, other) in list(self._flows.items()):
            writer.transport.abort()
            other.transport.abort()  # type: ignore[union-attr]
        if self._server is not None:
            self._server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        flow: list[float | asyncio.StreamWriter] = [time.monotonic(), up_writer]
        self._flows[writer] = flow
        await asyncio.gather(
            self._pipe(reader, up_writer, flow),
            self._pipe(up_reader, writer, flow),
            return_exceptions=True,
        )
        self._flows.pop(writer, None)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        flow: list[float | asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await reader.read(65536):
                flow[0] = time.monotonic()
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for writer, (seen, other) in list(self._flows.items()):
                if now - float(seen) > self.idle_s:  # type: ignore[arg-type]
                    self.dropped += 1
                    self._flows.pop(writer, None)
                    writer.transport.abort()
                    other.transport.abort()  # type: ignore[union-attr]


@pytest.fixture
def stretchy_server(tmp_path: Path) -> Iterator[Server]:
    """Pings every second at first; clients may stretch that to 16 s."""
    srv = Server(tmp_path / "data", heartbeat_s=1)
    srv.env["WANGLAI_HEARTBEAT_MAX_S"] = "16"
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def nat(stretchy_server: Server) -> AsyncIterator[Nat]:
    relay = Nat(stretchy_server.port, NAT_IDLE_S)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


async def test_heartbeat_stretches_then_settles_below_the_nat_timeout(
    stretchy_server: Server, nat: Nat
) -> None:
    phone = "+8613900001234"
    direct = Client(stretchy_server.base_url)
    await direct.request_code(phone)
    login = await direct.login(phone, stretchy_server.code_for(phone), "phone")
    await direct.close()
    beat = AdaptiveHeartbeat(1, 1, growth=2, confirm=1)
    client = Client(f"http://127.0.0.1:{nat.port}", login.token, heartbeat=beat)
    try:
        hello = await client.connect()
        assert (hello.heartbeat, hello.heartbeat_max) == (1, 16)
        conn = client.connection
        assert conn is not None
        # 1 s answered -> 2 s answered -> 4 s: the NAT drops the silent connection at 3.2 s
        deadline = time.monotonic() + 20
        while conn.connects < 2 and time.monotonic() < deadline:  # noqa: ASYNC110 (a counter)
            await asyncio.sleep(0.1)
        assert nat.dropped == 1 and conn.connects == 2
        assert (beat.ceiling, beat.interval) == (4, 2)
        # then it probes half-way to the ceiling: 3 s answered, 3.5 s dropped, 3.25 s dropped;
        # 3 s is within 10% of 3.25 s, so it settles there, just under the NAT's 3.2 s
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not (  # noqa: ASYNC110 (counters)
            nat.dropped >= 3 and conn.connects >= 4 and conn.connected
        ):
            await asyncio.sleep(0.1)
        assert (beat.interval, beat.ceiling) == (3, 3.25)
        assert beat.ceiling - beat.interval <= beat.interval * REFINE
        # settled: the connection now outlives several heartbeats
        settled, drops = conn.connects, nat.dropped
        await asyncio.sleep(3 * beat.interval + 1)
        assert conn.connects == settled and nat.dropped == drops and conn.connected
    finally:
        await client.close()
