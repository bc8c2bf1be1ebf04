"""One logical WebSocket to ``/v1/ws`` that reconnects by itself.

A background task (owned here, stopped by :meth:`Connection.stop`) connects, reads every frame,
answers acks to the sends waiting for them and queues events for the iterator; it pings at the
interval the server advertises and reconnects with bounded, jittered backoff whenever the socket
drops. The queue is bounded: when the reader falls behind, live events are dropped and the
iterator resyncs from its cursor instead, so memory does not grow with a slow consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from wanglai.client import frames
from wanglai.client.backoff import Backoff
from wanglai.client.errors import ApiError, DeviceRevoked, Disconnected
from wanglai.client.heartbeat import AdaptiveHeartbeat
from wanglai.services import compact
from wanglai.services.views import EventView, MessageView

log = logging.getLogger("wanglai.client")

CLOSE_REVOKED = 4003
HANDSHAKE_TIMEOUT = 10.0
PONG_WAIT = 10.0
PING = {"t": "ping"}
"""How long a ping may wait for its pong before it does not count as answered."""
JSON = "wanglai.json"
MSGPACK = "wanglai.msgpack"


@dataclass(frozen=True)
class Connected:
    """Queued after each hello: the iterator catches up from its cursor to ``head``."""

    head: int


Item = EventView | Connected


class Connection:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        token: str,
        backoff: Backoff,
        inbox_limit: int = 10_000,
        on_typing: Callable[[int, int], None] | None = None,
        heartbeat: AdaptiveHeartbeat | None = None,
        msgpack: bool = False,
        compact: bool = False,
    ) -> None:
        self.http = http
        self.msgpack = msgpack
        """Ask for MessagePack frames (smaller); JSON if refused."""
        self.compact = compact
        """Ask for the compact dialect (``services/compact.py``): texts cost the fewest bytes."""
        self.binary = False
        """Whether the open socket speaks MessagePack."""
        self.short = False
        """Whether the open socket speaks the compact dialect."""
        self.me = 0
        self._texts: dict[str, str] = {}
        """Texts sent as compact frames and not yet acknowledged, by frame id."""
        self.url = url
        self.token = token
        self.backoff = backoff
        self.inbox_limit = inbox_limit
        self.on_typing = on_typing
        self.hello: frames.Hello | None = None
        self.connects = 0
        """How many times a socket was opened (1 + reconnects)."""
        self.close_code: int | None = None
        """The close code of the last socket that ended."""
        self.fatal: ApiError | None = None
        """Set when reconnecting cannot help (token refused, device revoked)."""
        self.overflowed = False
        self.heartbeat = heartbeat or AdaptiveHeartbeat(1, 1)
        """How often this connection pings; it learns across reconnects. A new one starts at
        the server's advertised interval (its hello raises the placeholder bounds)."""
        self.pings = 0
        self._pong = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._inbox: deque[Item] = deque()
        self._wakeup = asyncio.Event()
        self._connected = asyncio.Event()
        self._pending: dict[str, asyncio.Future[frames.Ack]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # ------------------------------------------------------------ lifetime

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wanglai-ws")

    async def stop(self) -> None:
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wakeup.set()

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed and self.hello is not None

    async def wait_connected(self, wait: float) -> frames.Hello:
        """Wait for the server's hello; raises the fatal error, or Disconnected on timeout."""
        try:
            async with asyncio.timeout(wait):
                while self.hello is None or not self._connected.is_set():
                    if self.fatal is not None:
                        raise self.fatal
                    self._wakeup.clear()
                    await self._wakeup.wait()
        except TimeoutError:
            raise Disconnected(f"No WebSocket connection within {wait:.0f}s.") from None
        return self.hello

    # ------------------------------------------------------------ what the client uses

    async def next_item(self) -> Item:
        """The next queued event or marker; raises the fatal error once there is one."""
        while not self._inbox:
            if self.fatal is not None:
                raise self.fatal
            if self._stopped:
                raise Disconnected("The client was closed.")
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._inbox.popleft()

    def has_items(self) -> bool:
        return bool(self._inbox)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or ws.closed or self.hello is None:
            raise Disconnected("The WebSocket is not connected.")
        out: dict[str, Any] | list[Any] = frame
        if self.short:
            out = self._shorten(frame)
        try:
            if self.binary:
                await ws.send_bytes(msgspec.msgpack.encode(out))
            else:
                await ws.send_str(frames.encode(out).decode())
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise Disconnected(str(exc)) from exc

    async def request(self, client_id: str, frame: dict[str, Any], wait: float) -> frames.Ack:
        """Send a frame that the server answers with an ack (or an error) carrying ``client_id``."""
        future: asyncio.Future[frames.Ack] = asyncio.get_running_loop().create_future()
        self._pending[client_id] = future
        try:
            await self.send_frame(frame)
            return await asyncio.wait_for(future, wait)
        finally:
            if self._pending.get(client_id) is future:
                del self._pending[client_id]

    def _shorten(self, frame: dict[str, Any]) -> dict[str, Any] | list[Any]:
        """A plain text send as the compact array; anything else as it is."""
        body = frame.get("body")
        if (
            frame.get("t") == "send"
            and frame.get("kind") == "text"
            and frame.get("reply_to") is None
            and isinstance(body, dict)
            and len(body) == 1
            and isinstance(body.get("text"), str)
        ):
            if len(self._texts) >= 1024:  # acks that never came (the send is retried under its id)
                del self._texts[next(iter(self._texts))]
            self._texts[frame["id"]] = body["text"]
            return [compact.SEND, frame["id"], frame["conv"], body["text"]]
        return frame

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        attempt = 0
        while True:
            ws = await self._open()
            if ws is not None:
                greeted = await self._serve(ws)
                if ws.close_code == CLOSE_REVOKED:
                    self._fail(DeviceRevoked())
                    return
                if greeted:
                    attempt = 0
            if self.fatal is not None:
                return
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def _open(self) -> aiohttp.ClientWebSocketResponse | None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                return await self.http.ws_connect(
                    self.url,
                    protocols=self._protocols(),
                    headers={"Authorization": f"Bearer {self.token}"},
                    autoping=True,
                    heartbeat=None,
                    max_msg_size=0,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                self._fail(ApiError("invalid_token", "This session has ended; log in again.", 401))
            else:
                log.info("websocket handshake refused: %s", exc.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.debug("websocket connect failed: %r", exc)
        return None

    def _protocols(self) -> tuple[str, ...]:
        if self.compact:
            first = compact.COMPACT_MSGPACK if self.msgpack else compact.COMPACT
            return (first, MSGPACK, JSON) if self.msgpack else (first, JSON)
        return (MSGPACK, JSON) if self.msgpack else ()

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Read frames until the socket ends; True if the server said hello on it.

        Before the hello the server has a handshake's time to speak; after it, a server silent for
        two heartbeats (pings included) is taken for dead and the socket is dropped.
        """
        self._ws = ws
        self.binary = ws.protocol in (MSGPACK, compact.COMPACT_MSGPACK)
        self.short = ws.protocol in (compact.COMPACT, compact.COMPACT_MSGPACK)
        self.connects += 1
        pinger: asyncio.Task[None] | None = None
        greeted = False
        silence = HANDSHAKE_TIMEOUT
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=silence)
                except TimeoutError:
                    log.info("server silent for %.0fs: reconnecting", silence)
                    break
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break
                data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                if msg.type == aiohttp.WSMsgType.BINARY:
                    data = frames.encode(msgspec.msgpack.decode(data))
                if self.short and data[:1] == b"[":
                    data = self._expand(data)
                hello = self._handle(data)
                if hello is not None and pinger is None:
                    greeted = True
                    self.heartbeat.bounds(hello.heartbeat, hello.heartbeat_max or hello.heartbeat)
                    pinger = asyncio.get_running_loop().create_task(
                        self._ping(ws), name="wanglai-ping"
                    )
                if greeted:
                    # a ping is due after ``interval``, its pong a moment later
                    silence = self.heartbeat.interval + PONG_WAIT + 1
        except (aiohttp.ClientError, ConnectionError) as exc:
            log.debug("websocket read failed: %r", exc)
        finally:
            if greeted and not self._stopped:
                # dropped under us (not closed by close()): maybe a NAT that forgot the
                # connection during the silence; ping more often next time
                self.heartbeat.lost()
            if pinger is not None:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger
            self._ws = None
            self.hello = None
            self._connected.clear()
            with contextlib.suppress(Exception):
                await ws.close()
            self.close_code = ws.close_code
            lost = Disconnected(f"The WebSocket closed (code {ws.close_code}).")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)
            self._pending.clear()
            self._wakeup.set()
        return greeted

    def _handle(self, data: bytes) -> frames.Hello | None:
        try:
            tag = frames.decode_tag(data).t
            if tag == "event":
                event = frames.decode_event(data)
                if b'"ack":' in data and event.message is not None:
                    self._acknowledged(frames.decode_event_ack(data).ack, event.message)
                self._queue(event)
            elif tag == "ack":
                ack = frames.decode_ack(data)
                future = self._pending.get(ack.id)
                if future is not None and not future.done():
                    future.set_result(ack)
            elif tag == "error":
                self._on_error(frames.decode_error(data))
            elif tag == "hello":
                hello = frames.decode_hello(data)
                self.hello = hello
                self.me = hello.user
                self._connected.set()
                self._queue(Connected(hello.head), always=True)
                return hello
            elif tag == "pong":
                self._pong.set()
            elif tag == "typing" and self.on_typing is not None:
                typing = frames.decode_typing(data)
                self.on_typing(typing.conv, typing.user)
        except msgspec.DecodeError:
            log.warning("ignored a frame the SDK does not understand: %r", data[:200])
        return None

    def _expand(self, data: bytes) -> bytes:
        try:
            frame = msgspec.json.decode(data)
            expanded = compact.expand(frame, self.me, self._texts)
            if len(frame) == 6:  # the sender's copy: its text is no longer needed
                self._texts.pop(frame[1], None)
            return expanded
        except (msgspec.DecodeError, ValueError):
            return data  # _handle logs what it cannot read

    def _acknowledged(self, client_id: str | None, message: MessageView) -> None:
        future = self._pending.get(client_id) if client_id is not None else None
        if future is not None and not future.done():
            future.set_result(frames.Ack(client_id or "", message.conv, message.seq, message.at))

    def _on_error(self, error: frames.ErrorFrame) -> None:
        future = self._pending.get(error.id) if error.id is not None else None
        if future is not None and not future.done():
            future.set_exception(ApiError(error.code, error.message))
        else:
            log.warning("server error frame: %s: %s", error.code, error.message)

    def _queue(self, item: Item, always: bool = False) -> None:
        if len(self._inbox) >= self.inbox_limit and not always:
            # The caller will resync from its cursor: dropping here loses nothing.
            self.overflowed = True
        else:
            self._inbox.append(item)
        self._wakeup.set()

    def _fail(self, error: ApiError) -> None:
        self.fatal = error
        self._wakeup.set()

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Ping after each heartbeat interval of silence on our side; an answered ping lets
        the interval grow (see ``client/heartbeat.py``)."""
        while not ws.closed:
            await asyncio.sleep(self.heartbeat.interval)
            self._pong.clear()
            with contextlib.suppress(Disconnected):
                await self.send_frame(PING)
                self.pings += 1
            try:
                await asyncio.wait_for(self._pong.wait(), PONG_WAIT)
            except TimeoutError:
                continue  # the read loop's silence timeout decides whether it is dead
            self.heartbeat.answered()
