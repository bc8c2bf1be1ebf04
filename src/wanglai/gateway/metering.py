"""Bytes on the wire per subscriber device, counted where they cross the TCP connection, for
the usage records of sponsored data (``services/usage.py``).

What is counted is the TCP payload, both ways, as a relay or a packet capture would count it:
HTTP request lines, headers and bodies (chunked framing included) and responses the same way;
the WebSocket upgrade and every WebSocket frame with its header and mask, control frames too.

- In: :class:`MeteredHandler` (aiohttp's per-connection protocol) adds ``len(data)`` for every
  read from the socket.
- Out, HTTP: aiohttp's response writer counts what it writes (``output_size``).
- Out, WebSocket: the hub counts its own writes (``Connection.bytes_out``); aiohttp's few
  frames (pongs, close) go through :class:`_CountingTransport`.

Nothing is allocated and nothing is written to the database per frame: an HTTP exchange is
attributed when its response is done, a WebSocket's counters are collected by :func:`harvest`
(the app's flush loop) and when it closes.

Attribution: bytes go to the (user, device) of the request's token. On a keep-alive connection,
bytes that arrive after a response (a body left unread, the next request's first bytes) go to
the next request, or to the last subscriber when the connection closes. Exchanges without a
valid token (asking for a login code, logging in, /healthz) are summed apart, in no record.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from wanglai.gateway.endpoint import APP_KEY, USAGE_OWNER
from wanglai.gateway.hub import Connection, Hub
from wanglai.services.usage import UsageService

_PONG = 0x8A  # FIN + opcode 0xA


class MeteredHandler(RequestHandler):
    """aiohttp's connection protocol, counting the bytes it receives."""

    __slots__ = ("out_mark", "owner", "pongs", "usage", "wire_in", "ws_out")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.wire_in = 0
        """Bytes received and not yet attributed."""
        self.ws_out = 0
        """Bytes aiohttp's WebSocket writer sent (pongs, close) and not yet attributed."""
        self.pongs = 0
        """Pongs aiohttp sent to a client's WebSocket pings (each one a heartbeat)."""
        self.out_mark = 0
        """The part of the current response's ``output_size`` already attributed."""
        self.owner: tuple[int, int] | None = None
        """The last subscriber served on this connection."""
        self.usage: UsageService | None = None
        super().__init__(*args, **kwargs)

    def data_received(self, data: bytes) -> None:
        self.wire_in += len(data)
        super().data_received(data)

    def log_access(
        self, request: BaseRequest, response: web.StreamResponse, time: float | None
    ) -> None:
        """Called by aiohttp once a response is written (or failed): attribute the exchange."""
        usage = self.usage or _usage_of(request)
        if usage is not None:
            self.usage = usage
            up, self.wire_in = self.wire_in, 0
            down = request.writer.output_size - self.out_mark + self.ws_out
            self.out_mark = self.ws_out = 0
            owner = request.get(USAGE_OWNER)
            if owner is None:
                usage.unattributed(up, down)
            else:
                self.owner = owner
                is_ws = isinstance(response, web.WebSocketResponse)
                heartbeats, self.pongs = self.pongs, 0
                user_id, device_id = owner
                requests = 0 if is_ws else 1
                usage.record(user_id, device_id, up, down, heartbeats=heartbeats, requests=requests)
        super().log_access(request, response, time)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        usage = self.usage
        if usage is None or not (self.wire_in or self.ws_out):
            return
        up, down = self.wire_in, self.ws_out
        self.wire_in = self.ws_out = 0
        if self.owner is None:
            usage.unattributed(up, down)
        else:
            heartbeats, self.pongs = self.pongs, 0
            user_id, device_id = self.owner
            usage.record(user_id, device_id, up, down, heartbeats=heartbeats)


def _usage_of(request: BaseRequest) -> UsageService | None:
    config = getattr(request, "config_dict", None)  # a plain BaseRequest (unparsable) has none
    container = config.get(APP_KEY) if config is not None else None
    usage = getattr(container, "usage", None)
    return usage if isinstance(usage, UsageService) else None


class MeteredServer(web.Server):
    def __call__(self) -> RequestHandler:
        return MeteredHandler(self, loop=self._loop, **self._kwargs)


class MeteredRunner(web.AppRunner):
    """``web.AppRunner`` whose connections count their bytes (see the module docstring)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application builds a plain web.Server; only its protocol factory changes.
        server.__class__ = MeteredServer
        return server


class _CountingTransport:
    """Stands in for the transport of aiohttp's WebSocket writer, which sends only the frames
    aiohttp makes itself (pongs, close): the hub's frames bypass it."""

    __slots__ = ("_handler", "_inner")

    def __init__(self, inner: asyncio.Transport, handler: MeteredHandler) -> None:
        self._inner = inner
        self._handler = handler

    def write(self, data: bytes) -> None:
        handler = self._handler
        handler.ws_out += len(data)
        if 2 <= len(data) <= 127 and data[0] == _PONG and data[1] == len(data) - 2:
            handler.pongs += 1
        self._inner.write(data)

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def connected(
    usage: UsageService, request: web.Request, ws: web.WebSocketResponse, conn: Connection
) -> None:
    """A WebSocket is up: count the connect and the upgrade (request and 101 response)."""
    owner = (conn.user_id, conn.device_id)
    request[USAGE_OWNER] = owner
    up = down = 0
    handler = request.protocol
    if isinstance(handler, MeteredHandler):
        handler.owner = owner
        handler.usage = usage
        up, handler.wire_in = handler.wire_in, 0
        down = handler.out_mark = request.writer.output_size
        writer = ws._writer  # aiohttp's own frames; the hub writes to the transport directly
        if writer is not None:
            writer.transport = _CountingTransport(writer.transport, handler)  # type: ignore[assignment]
    usage.record(conn.user_id, conn.device_id, up, down, connects=1)


def take(usage: UsageService, conn: Connection) -> None:
    """Move a WebSocket's counts since the last take into the usage tally."""
    down, conn.bytes_out = conn.bytes_out, 0
    heartbeats, conn.pings = conn.pings, 0
    pushes, conn.pushes = conn.pushes, 0
    up = 0
    handler = conn.transport.get_protocol()
    if isinstance(handler, MeteredHandler):
        up, handler.wire_in = handler.wire_in, 0
        down += handler.ws_out
        heartbeats += handler.pongs
        handler.ws_out = handler.pongs = 0
    if up or down or heartbeats or pushes:
        usage.record(conn.user_id, conn.device_id, up, down, heartbeats=heartbeats, pushes=pushes)


def harvest(hub: Hub, usage: UsageService) -> None:
    """Take the counts of every open WebSocket (the flush loop calls this before a flush)."""
    for conns in hub.by_user.values():
        for conn in conns:
            take(usage, conn)
