"""The WebSocket endpoint ``/v1/ws``: live events out, sends, reads, typing and pings in.

Frames are JSON objects tagged by ``t``; docs/protocol.md lists them all.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Annotated, Any

import msgspec
from aiohttp import WSMsgType, web

from wanglai.domain.errors import WanglaiError
from wanglai.gateway import metering
from wanglai.gateway.endpoint import APP_KEY, bearer
from wanglai.gateway.errors import STATUS, error_response
from wanglai.gateway.hub import Connection
from wanglai.services.compact import COMPACT, COMPACT_MSGPACK, expand_send
from wanglai.store.messages import NewMessage

log = logging.getLogger("wanglai.ws")
MAX_FRAME = 64 * 1024
JSON = "wanglai.json"
MSGPACK = "wanglai.msgpack"
SUBPROTOCOLS = (COMPACT_MSGPACK, COMPACT, MSGPACK, JSON)
"""``Sec-WebSocket-Protocol`` (the client's first one that is here wins): frames as JSON text
(the default, also with no subprotocol) or as MessagePack binary frames, the same objects in
fewer bytes; the compact ones also shorten message frames to arrays (``services/compact.py``)."""
MAX_IN_FLIGHT = 256
COMPACT_SHAPE = 'A compact frame is ["s", id, conv, text]; other frames are objects with a "t".'


class SendFrame(msgspec.Struct, tag="send", tag_field="t"):
    id: str
    conv: int
    kind: str
    body: dict[str, Any]
    reply_to: int | None = None
    sms_fallback: bool = False


class ReadFrame(msgspec.Struct, tag="read", tag_field="t"):
    conv: int
    seq: int


class DeliveredFrame(msgspec.Struct, tag="delivered", tag_field="t"):
    conv: int
    seq: int


class TypingFrame(msgspec.Struct, tag="typing", tag_field="t"):
    conv: int


class PingFrame(msgspec.Struct, tag="ping", tag_field="t"):
    pass


class CursorFrame(msgspec.Struct, tag="cursor", tag_field="t"):
    seq: Annotated[int, msgspec.Meta(lt=2**62)]


class ClaimFrame(msgspec.Struct, tag="claim", tag_field="t"):
    """Claim a share of a red packet (as ``POST /v1/redpackets/{id}/claim``); answered by a
    ``claimed`` frame or an ``error`` frame with the same ``id``."""

    id: Annotated[str, msgspec.Meta(max_length=64)]
    packet: Annotated[int, msgspec.Meta(gt=0, lt=2**62)]


class TransferFrame(msgspec.Struct, tag="transfer", tag_field="t"):
    """Send money to a person (as ``POST /v1/wallet/transfers``); ``id`` is the idempotency
    key. Answered by a ``transferred`` frame or an ``error`` frame with the same ``id``."""

    id: Annotated[str, msgspec.Meta(max_length=64)]
    to: int
    amount: Any
    currency: str | None = None
    note: str = ""
    pin: str | None = None


ClientFrame = (
    SendFrame
    | ReadFrame
    | DeliveredFrame
    | TypingFrame
    | PingFrame
    | CursorFrame
    | ClaimFrame
    | TransferFrame
)
_decode = msgspec.json.Decoder(ClientFrame).decode
_encode = msgspec.json.Encoder().encode
PONG = b'{"t":"pong"}'
_DONE = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


def _json_from_msgpack(data: bytes, compact: bool) -> bytes:
    """A client's MessagePack frame as the JSON the frame decoder reads (frames are small)."""
    frame = msgspec.msgpack.decode(data)
    if compact and isinstance(frame, list):
        return expand_send(frame)
    return _encode(frame)


def _json_from_compact(data: bytes) -> bytes:
    """A client's compact JSON array frame as the object frame it stands for."""
    frame = msgspec.json.decode(data)
    if not isinstance(frame, list):
        raise ValueError("not an array")
    return expand_send(frame)


def _error(code: str, message: str, frame_id: str | None = None) -> bytes:
    payload: dict[str, Any] = {"t": "error", "code": code, "message": message}
    if frame_id is not None:
        payload["id"] = frame_id
    return _encode(payload)


async def websocket(request: web.Request) -> web.StreamResponse:
    app = request.app[APP_KEY]
    try:
        session = await app.accounts.authenticate(bearer(request))
    except WanglaiError as exc:  # this route has no error middleware (see app.make_app)
        return error_response(exc.code, exc.message, STATUS.get(exc.kind, 400))
    # Text frames stay bytes (no decode to str and back); the JSON decoder reads bytes.
    ws = web.WebSocketResponse(
        autoping=True,
        heartbeat=None,
        max_msg_size=MAX_FRAME,
        compress=False,
        decode_text=False,
        protocols=SUBPROTOCOLS,
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    protocol = ws.ws_protocol
    conn = Connection(
        app.hub,
        ws,
        transport,
        session.user_id,
        session.device_id,
        msgpack=protocol in (MSGPACK, COMPACT_MSGPACK),
        compact=protocol in (COMPACT, COMPACT_MSGPACK),
    )
    del session  # an idle connection's handler keeps as few objects alive as it can
    app.hub.add(conn)
    metering.connected(app.usage, request, ws, conn)
    try:
        conn.push(await _hello(app, conn))
        while True:  # not `async for`: one frame less on every idle connection's stack
            msg = await ws.receive()
            conn.last_seen = time.monotonic()
            if msg.type == WSMsgType.TEXT:
                data = msg.data
                conn.bytes_in += len(data)
                app.metrics.frames_in += 1
                if conn.compact and data[:1] == b"[":
                    try:
                        data = _json_from_compact(data)
                    except (msgspec.DecodeError, ValueError, RecursionError):
                        conn.push(_error("malformed_frame", COMPACT_SHAPE))
                        continue
                _dispatch(app, conn, data)
            elif msg.type == WSMsgType.BINARY and conn.msgpack:
                conn.bytes_in += len(msg.data)
                app.metrics.frames_in += 1
                try:
                    data = _json_from_msgpack(msg.data, conn.compact)
                except (msgspec.DecodeError, msgspec.EncodeError, TypeError, RecursionError):
                    conn.push(_error("malformed_frame", "Frames are MessagePack maps with a 't'."))
                    continue
                except ValueError:
                    conn.push(_error("malformed_frame", COMPACT_SHAPE))
                    continue
                _dispatch(app, conn, data)
            elif msg.type == WSMsgType.BINARY:
                conn.push(
                    _error(
                        "unsupported_frame",
                        "Send JSON text frames (or use the wanglai.msgpack subprotocol).",
                    )
                )
            elif msg.type in _DONE:
                break
    finally:
        app.hub.remove(conn)
        conn.closed = True
        conn.cancel_tasks()
        metering.take(app.usage, conn)
    return ws


async def _hello(app: Any, conn: Connection) -> bytes:
    head = await app.sync.head(conn.user_id)
    return _encode(
        {
            "t": "hello",
            "user": conn.user_id,
            "device": conn.device_id,
            "head": head,
            "heartbeat": app.settings.heartbeat_s,
            "heartbeat_max": max(app.settings.heartbeat_s, app.settings.heartbeat_max_s),
            "buffer": app.hub.buffer_limit,
        }
    )


def _dispatch(app: Any, conn: Connection, data: bytes) -> None:
    try:
        frame = _decode(data)
    except msgspec.ValidationError as exc:
        conn.push(_error("invalid_frame", str(exc), _frame_id(data)))
        return
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        conn.push(_error("malformed_frame", "Frames are JSON objects with a 't' field."))
        return
    if isinstance(frame, PingFrame):
        conn.pings += 1
        conn.push(PONG)
    elif isinstance(frame, SendFrame):
        _send(app, conn, frame)
    elif isinstance(frame, ReadFrame):
        conn.spawn(_guard(conn, app.messaging.mark_read(conn.user_id, frame.conv, frame.seq)))
    elif isinstance(frame, DeliveredFrame):
        work = app.messaging.mark_delivered(conn.user_id, frame.conv, frame.seq)
        conn.spawn(_guard(conn, work))
    elif isinstance(frame, TypingFrame):
        conn.spawn(_guard(conn, app.messaging.typing(conn.user_id, frame.conv)))
    elif isinstance(frame, ClaimFrame | TransferFrame):
        if conn.in_flight >= MAX_IN_FLIGHT:
            conn.push(_error("too_many_in_flight", "Wait for answers first.", frame.id))
            return
        conn.in_flight += 1
        if isinstance(frame, ClaimFrame):
            work = app.redpackets.claim(conn.user_id, frame.packet)
            conn.spawn(_answer(conn, frame.id, "claimed", work))
        else:
            work = app.transfers.send(
                conn.user_id,
                frame.to,
                frame.amount,
                frame.currency,
                frame.note,
                frame.pin,
                frame.id,
            )
            conn.spawn(_answer(conn, frame.id, "transferred", work))
    else:
        conn.spawn(_guard(conn, app.sync.save_cursor(conn.device_id, max(0, frame.seq))))


def _frame_id(data: bytes) -> str | None:
    """The ``id`` of a frame that failed validation, if it has a readable one to answer with."""
    try:
        raw = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    frame_id = raw.get("id") if isinstance(raw, dict) else None
    return frame_id if isinstance(frame_id, str) and len(frame_id) <= 64 else None


def _send(app: Any, conn: Connection, frame: SendFrame) -> None:
    """Validate, queue for the group commit, and ack from the commit's callback: the common
    case costs no task. Messages that point outside the conversation (contact cards, media)
    need lookups first and take a task."""
    if conn.in_flight >= MAX_IN_FLIGHT:
        conn.push(_error("too_many_in_flight", "Wait for acks before sending more.", frame.id))
        return
    messaging = app.messaging
    try:
        item = messaging.prepare(
            conn.user_id,
            frame.conv,
            frame.id,
            frame.kind,
            frame.body,
            frame.reply_to,
            frame.sms_fallback,
        )
    except WanglaiError as exc:
        conn.push(_error(exc.code, exc.message, frame.id))
        return
    conn.in_flight += 1
    if messaging.needs_lookups(item):
        conn.spawn(_send_after_lookups(app, conn, item))
        return
    messaging.submit_callback(item, partial(_committed, app, conn, item))


async def _send_after_lookups(app: Any, conn: Connection, item: NewMessage) -> None:
    try:
        await app.messaging.check_references(item)
        appended = await app.messaging.submit(item)
    except WanglaiError as exc:
        conn.in_flight -= 1
        conn.push(_error(exc.code, exc.message, item.client_id))
        return
    _acknowledge(app, conn, item, appended)


def _committed(app: Any, conn: Connection, item: NewMessage, ok: bool, result: Any) -> None:
    if not ok:
        error = result
        conn.in_flight -= 1
        if isinstance(error, WanglaiError):
            conn.push(_error(error.code, error.message, item.client_id))
        else:
            log.error("send failed", exc_info=error)
            conn.push(_error("internal", "The message was not stored; retry.", item.client_id))
        return
    _acknowledge(app, conn, item, result)


def _acknowledge(app: Any, conn: Connection, item: NewMessage, appended: Any) -> None:
    conn.in_flight -= 1
    try:
        sent = app.messaging.finish(item, appended, conn.device_id)
    except WanglaiError as exc:
        conn.push(_error(exc.code, exc.message, item.client_id))
        return
    if sent.fresh:
        app.metrics.count_message(sent.view.kind)
    conn.push(sent.ack)


async def _answer(conn: Connection, frame_id: str, kind: str, work: Any) -> None:
    """Run a use case for a frame and answer ``{"t": kind, "id": frame_id, "result": …}`` (or an
    ``error`` frame with the frame's ``id``); the frame counts as in flight until then."""
    try:
        result = await work
    except WanglaiError as exc:
        conn.push(_error(exc.code, exc.message, frame_id))
        return
    except Exception:
        log.exception("%s failed", kind)
        conn.push(_error("internal", "Something broke on our side; it was logged.", frame_id))
        return
    finally:
        conn.in_flight -= 1
    conn.push(
        b'{"t":"%s","id":%s,"result":%s}' % (kind.encode(), _encode(frame_id), _encode(result))
    )


async def _guard(conn: Connection, work: Any) -> None:
    try:
        await work
    except WanglaiError as exc:
        conn.push(_error(exc.code, exc.message))
    except Exception:
        log.exception("frame failed")
        conn.push(_error("internal", "Something broke on our side; it was logged."))
