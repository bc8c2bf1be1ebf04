"""The process's open WebSocket connections, by user, and delivery of frames to them.

Each connection has a bounded queue; a writer task exists only while frames are waiting, so an
idle connection costs no task. A connection whose queue overflows is closed with code 4008; its
client resyncs from its cursor when it reconnects, so nothing is lost and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Sequence

from aiohttp import WSMsgType, web

from wanglai.bus.local import Envelope
from wanglai.gateway.metrics import Metrics

CLOSE_IDLE = 4000
CLOSE_REVOKED = 4003
CLOSE_SLOW = 4008
CLOSE_SHUTDOWN = 1001


class Connection:
    __slots__ = (
        "bytes_in",
        "bytes_out",
        "closed",
        "device_id",
        "hub",
        "last_seen",
        "queue",
        "tasks",
        "user_id",
        "writer",
        "ws",
    )

    def __init__(self, hub: Hub, ws: web.WebSocketResponse, user_id: int, device_id: int):
        self.hub = hub
        self.ws = ws
        self.user_id = user_id
        self.device_id = device_id
        self.queue: collections.deque[bytes] = collections.deque()
        self.writer: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_seen = time.monotonic()
        self.closed = False
        self.bytes_in = 0
        self.bytes_out = 0

    def push(self, frame: bytes) -> None:
        if self.closed:
            return
        if len(self.queue) >= self.hub.queue_limit:
            self.hub.metrics.slow_consumers.inc()
            self.close(CLOSE_SLOW, "slow consumer: resync from your cursor")
            return
        self.queue.append(frame)
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.queue and not self.closed:
                frame = self.queue.popleft()
                self.bytes_out += len(frame)
                await self.ws.send_frame(frame, WSMsgType.TEXT)
                self.hub.metrics.frames_out.inc()
        except (ConnectionError, RuntimeError):
            self.close(CLOSE_SHUTDOWN, "connection lost")
        finally:
            self.writer = None

    def spawn(self, coro: asyncio.Future[None] | asyncio.Task[None] | object) -> None:
        """Run a frame's work concurrently; the connection owns the task and cancels it on close."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        self.hub.remove(self)
        ws = self.ws
        task = asyncio.get_running_loop().create_task(_close(ws, code, reason))
        self.hub.closers.add(task)
        task.add_done_callback(self.hub.closers.discard)

    def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.writer is not None:
            self.writer.cancel()


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code=code, message=reason.encode()), 5)


class Hub:
    def __init__(self, metrics: Metrics, queue_limit: int = 2048) -> None:
        self.metrics = metrics
        self.queue_limit = queue_limit
        self.by_user: dict[int, list[Connection]] = {}
        self.closers: set[asyncio.Task[None]] = set()

    def add(self, conn: Connection) -> None:
        self.by_user.setdefault(conn.user_id, []).append(conn)
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

    def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Bus subscriber: put each frame on the queues of the user's connections here."""
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
            for conn in conns:
                conn.push(env.frame)

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
        await asyncio.sleep(0)
