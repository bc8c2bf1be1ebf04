"""The process's open WebSocket connections, by user, and delivery of frames to them.

Frames for a connection are collected during one turn of the event loop and written to its
transport with a single ``write`` at the end of the turn. The transport's buffer is the
connection's queue, bounded in bytes: when a reader falls so far behind that the buffer passes
``buffer_limit``, the connection is closed with code 4008, and its client resyncs from its cursor
when it reconnects. Nothing is lost, and memory does not grow with a slow reader. No task or timer
exists per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import msgspec
from aiohttp import web

from wanglai.bus.local import Envelope
from wanglai.gateway.metrics import Metrics
from wanglai.gateway.wsframe import binary_frame, text_frame
from wanglai.services.compact import shorten

_NOTHING: list[bytes] = []  # never appended to: push() replaces it with a list of its own
CLOSE_IDLE = 4000
CLOSE_REVOKED = 4003
CLOSE_SLOW = 4008
CLOSE_SHUTDOWN = 1001


_json_decode = msgspec.json.decode
_json_encode = msgspec.json.encode
_msgpack_encode = msgspec.msgpack.encode


def to_msgpack(payload: bytes) -> bytes:
    """A JSON frame as MessagePack: the same object, fewer bytes. Frames are built once as JSON
    for every socket that gets them; only MessagePack connections pay for this."""
    return _msgpack_encode(_json_decode(payload))


class Connection:
    __slots__ = (
        "bytes_in",
        "bytes_out",
        "closed",
        "compact",
        "device_id",
        "hub",
        "in_flight",
        "last_seen",
        "msgpack",
        "pending",
        "pings",
        "pushes",
        "tasks",
        "transport",
        "unsolicited",
        "user_id",
        "ws",
    )

    def __init__(
        self,
        hub: Hub,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        user_id: int,
        device_id: int,
        msgpack: bool = False,
        compact: bool = False,
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.transport = transport
        self.user_id = user_id
        self.device_id = device_id
        self.pending: list[bytes] = _NOTHING
        """Frames to write at the end of this loop turn (a shared empty list while idle)."""
        self.tasks: set[asyncio.Task[None]] | None = None
        """Work this connection started, created on first use (idle connections have none)."""
        self.last_seen = time.monotonic()
        self.closed = False
        self.bytes_in = 0
        self.bytes_out = 0
        """Bytes written by the hub (WebSocket frames, headers included) since the last usage
        harvest (gateway/metering.py), which resets it, as it does ``pings`` and ``pushes``."""
        self.pings = 0
        """Heartbeats: ``ping`` frames from the client."""
        self.pushes = 0
        """Writes that carried an event the client did not ask for (each may wake its radio)."""
        self.unsolicited = False
        self.in_flight = 0
        """Sends queued for commit and not yet acknowledged."""
        self.msgpack = msgpack
        """The client chose a MessagePack subprotocol: frames go out as MessagePack."""
        self.compact = compact
        """The client chose a compact subprotocol: message frames go out as short arrays
        (``services/compact.py``)."""

    def push(self, payload: bytes) -> None:
        """Queue one JSON frame; it is written at the end of this turn of the event loop (as
        MessagePack, in a binary frame, on a MessagePack connection; as a short array on a
        compact one when the frame has a compact form)."""
        if self.closed:
            return
        if not self.pending:
            self.pending = []
            self.hub.schedule(self)
        if self.compact:
            short = shorten(payload)
            if short is not None:
                self.pending.append(
                    binary_frame(_msgpack_encode(short))
                    if self.msgpack
                    else text_frame(_json_encode(short))
                )
                return
        if self.msgpack:
            self.pending.append(binary_frame(to_msgpack(payload)))
        else:
            self.pending.append(text_frame(payload))

    def flush(self) -> None:
        frames, self.pending = self.pending, _NOTHING
        if self.closed or not frames:
            return
        transport = self.transport
        if transport.is_closing():
            self.close(CLOSE_SHUTDOWN, "connection lost")
            return
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        transport.write(data)
        self.bytes_out += len(data)
        if self.unsolicited:
            self.unsolicited = False
            self.pushes += 1
        self.hub.metrics.frames_out += len(frames)
        if transport.get_write_buffer_size() > self.hub.buffer_limit:
            self.hub.metrics.slow_consumers.inc()
            self.close(CLOSE_SLOW, "slow consumer: resync from your cursor")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a frame's work concurrently; the connection owns the task and cancels it on close."""
        task = asyncio.get_running_loop().create_task(coro)
        if self.tasks is None:
            self.tasks = set()
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.pending = _NOTHING
        self.hub.remove(self)
        task = asyncio.get_running_loop().create_task(_close(self.ws, self.transport, code, reason))
        self.hub.closers.add(task)
        task.add_done_callback(self.hub.closers.discard)

    def cancel_tasks(self) -> None:
        for task in list(self.tasks or ()):
            task.cancel()


async def _close(
    ws: web.WebSocketResponse, transport: asyncio.Transport, code: int, reason: str
) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code=code, message=reason.encode()), 5)
    if not transport.is_closing():
        transport.abort()


class Hub:
    def __init__(self, metrics: Metrics, buffer_limit: int = 1 << 20) -> None:
        self.metrics = metrics
        self.buffer_limit = buffer_limit
        self.by_user: dict[int, list[Connection]] = {}
        self.closers: set[asyncio.Task[None]] = set()
        self._dirty: list[Connection] = []
        self._scheduled = False

    def add(self, conn: Connection) -> None:
        conns = self.by_user.get(conn.user_id)
        if conns is None:
            self.by_user[conn.user_id] = [conn]
        else:
            conns.append(conn)
        self.metrics.connections.inc()

    def remove(self, conn: Connection) -> None:
        conns = self.by_user.get(conn.user_id)
        if conns and conn in conns:
            conns.remove(conn)
            self.metrics.connections.dec()
            if not conns:
                del self.by_user[conn.user_id]

    def count(self) -> int:
        return sum(len(c) for c in self.by_user.values())

    def schedule(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        self._scheduled = False
        for conn in dirty:
            conn.flush()

    def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Bus subscriber: queue each frame on the user's connections in this process."""
        by_user = self.by_user
        for env in envelopes:
            conns = by_user.get(env.user_id)
            if not conns:
                continue
            if env.close_device:
                for conn in list(conns):
                    if conn.device_id == env.close_device:
                        conn.close(CLOSE_REVOKED, "device revoked")
                continue
            skip = env.skip_device
            for conn in conns:
                if conn.device_id != skip or not skip:
                    conn.push(env.frame)
                    conn.unsolicited = True

    def close_idle(self, older_than_s: float) -> int:
        """Close connections silent for longer than ``older_than_s``; returns how many."""
        cutoff = time.monotonic() - older_than_s
        stale = [c for conns in self.by_user.values() for c in conns if c.last_seen < cutoff]
        for conn in stale:
            conn.close(CLOSE_IDLE, "idle: send a ping at the advertised interval")
        return len(stale)

    async def close_all(self) -> None:
        for conns in list(self.by_user.values()):
            for conn in list(conns):
                conn.close(CLOSE_SHUTDOWN, "server shutting down")
        if self.closers:
            await asyncio.wait(list(self.closers), timeout=6)
