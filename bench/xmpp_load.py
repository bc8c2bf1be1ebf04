"""The XMPP load process of ``compare.py``: the compare workload against ejabberd over raw TCP.

    python bench/xmpp_load.py direct|group '{"port": ..., "server_pid": ..., ...}'

One asyncio ``Protocol`` per user, on uvloop: stream, SASL PLAIN, resource bind, initial
presence; then ``<message type='chat'>`` to the pair's peer (``direct``) or
``type='groupchat'`` into one MUC room (``group``). Incoming bytes are scanned for ``<body>``
only: the body carries the send time and the sender's index, nothing else is parsed. XMPP has
no server acknowledgement of a message (without stream management), so a sender's window closes
when its message arrives: at the peer (direct) or back at the sender as the room's reflection
(group). Prints one ``RESULT {json}`` line like ``load.py``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from load import Meter, measure, note, now_ms, own_cpu_s, process_main

HOST = "localhost"
ROOM = f"bench@conference.{HOST}"
STREAM = (
    f"<?xml version='1.0'?><stream:stream to='{HOST}' xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
).encode()


class Client(asyncio.Protocol):
    """One logged-in user. ``wait_for`` serves the login; afterwards only bodies are read."""

    def __init__(self, index: int, clients: list[Client], meter: Meter, group: bool) -> None:
        self.index = index
        self.clients = clients
        self.meter = meter
        self.group = group
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.expect: bytes = b""
        self.ready: asyncio.Future[bytes] | None = None
        self.online = False
        self.to = b""
        self.kind = b"groupchat" if group else b"chat"
        self.in_flight = 0
        self.window = 0
        self.sending = False

    # ------------------------------------------------------------------ login

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    async def wait_for(self, data: bytes, needle: bytes, timeout_s: float = 60.0) -> bytes:
        """Send ``data`` and wait until the bytes received since contain ``needle``."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.buf = b""
        self.expect = needle
        self.ready = loop.create_future()
        self.transport.write(data)
        return await asyncio.wait_for(self.ready, timeout_s)

    def data_received(self, data: bytes) -> None:
        if not self.online:
            self.buf += data
            if self.ready is not None and not self.ready.done():
                if b"<failure" in self.buf or b"type='error'" in self.buf:
                    self.ready.set_exception(RuntimeError(self.buf.decode(errors="replace")))
                elif self.expect in self.buf:
                    self.ready.set_result(self.buf)
            return
        buf = self.buf + data if self.buf else data
        pos = 0
        while True:
            start = buf.find(b"<body>", pos)
            if start < 0:
                break
            end = buf.find(b"</body>", start)
            if end < 0:
                break
            self.on_body(buf[start + 6 : end])
            pos = end + 7
        # Keep only what may start a body that has not fully arrived.
        cut = buf.rfind(b"<body>", pos)
        self.buf = buf[cut:] if cut >= 0 else buf[-8:]

    async def login(self, user: str, password: str) -> None:
        await self.wait_for(STREAM, b"</stream:features>")
        plain = base64.b64encode(f"\0{user}\0{password}".encode())
        auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
        await self.wait_for(auth % plain, b"<success")
        await self.wait_for(STREAM, b"</stream:features>")
        bind = (
            b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            b"<resource>bench</resource></bind></iq>"
        )
        await self.wait_for(bind, b"</iq>")
        assert self.transport is not None
        self.transport.write(b"<presence/>")

    async def join_room(self, nick: str, create: bool) -> None:
        join = (
            b"<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'>"
            b"<history maxstanzas='0'/></x></presence>" % (ROOM.encode(), nick.encode())
        )
        got = await self.wait_for(join, b"110")
        if create and b"201" in got:
            # A new room stays locked until its owner accepts the default configuration.
            instant = (
                b"<iq type='set' id='cfg' to='%s'><query xmlns='http://jabber.org/protocol/"
                b"muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>" % ROOM.encode()
            )
            await self.wait_for(instant, b"cfg")

    # ------------------------------------------------------------------ load

    def send(self) -> None:
        assert self.transport is not None
        self.in_flight += 1
        self.meter.sent += 1
        self.transport.write(
            b"<message to='%s' type='%s'><body>%.3f %d</body></message>"
            % (self.to, self.kind, now_ms(), self.index)
        )

    def delivered(self) -> None:
        """One of this user's messages arrived where it was going: the window opens by one."""
        self.meter.acked += 1
        self.in_flight -= 1
        if self.sending and self.in_flight < self.window:
            self.send()

    def on_body(self, body: bytes) -> None:
        stamp, _, sender = body.partition(b" ")
        origin = int(sender)
        meter = self.meter
        if origin != self.index or self.group:
            meter.received += 1
            if meter.recording:
                meter.latencies.append(now_ms() - float(stamp))
        if self.group:
            if origin == self.index:
                self.delivered()
        else:
            self.clients[origin].delivered()


async def connect(
    port: int, count: int, meter: Meter, group: bool, password: str, prefix: str
) -> list[Client]:
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    gate = asyncio.Semaphore(100)

    async def one(i: int) -> None:
        async with gate:
            _, client = await loop.create_connection(
                lambda: Client(i, clients, meter, group), "127.0.0.1", port
            )
            await client.login(f"{prefix}{i}", password)
            clients[i] = client

    clients.extend([None] * count)  # type: ignore[list-item]
    await asyncio.gather(*(one(i) for i in range(count)))
    return clients


async def drain(clients: list[Client], timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if not any(c.in_flight > 0 for c in clients):
            return
        await asyncio.sleep(0.05)


async def run(scenario: str, p: dict[str, Any]) -> dict[str, Any]:
    meter = Meter(int(p["server_pid"]))
    group = scenario == "group"
    count = int(p["members"] if group else p["users"])
    window = int(p["window"])
    t0 = time.perf_counter()
    clients = await connect(int(p["port"]), count, meter, group, p["password"], p["prefix"])
    if group:
        await clients[0].join_room("u0", create=True)
        gate = asyncio.Semaphore(20)

        async def join(c: Client) -> None:
            async with gate:
                await c.join_room(f"u{c.index}", create=False)

        await asyncio.gather(*(join(c) for c in clients[1:]))
        senders = clients[:1]
        for c in clients:
            c.to = ROOM.encode()
    else:
        senders = clients
        for c in clients:
            peer = c.index ^ 1
            c.to = f"{p['prefix']}{peer}@{HOST}".encode()
    setup_s = time.perf_counter() - t0
    await asyncio.sleep(0.5)
    for c in clients:
        c.online = True
        c.buf = b""
    note(f"  {count} XMPP users online in {setup_s:.1f} s")
    for c in senders:
        c.window, c.sending = window, True
    for _ in range(window):
        for c in senders:
            c.send()
    await measure(None, meter, p)
    for c in senders:
        c.sending = False
    await drain(senders, 10.0)
    result = meter.window()
    result.update(
        users=count,
        senders=len(senders),
        window=window,
        setup_s=round(setup_s, 1),
        unacked_at_end=sum(c.in_flight for c in senders),
        load_cpu_total_s=round(own_cpu_s(), 1),
    )
    return result


if __name__ == "__main__":
    process_main(run)
