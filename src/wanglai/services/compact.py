"""The compact dialect: the three frames every text message costs, as short positional arrays.

A phone pays for each byte it sends and receives, and a text message's frames are most of its
traffic. On a connection that chose the ``wanglai.compact`` subprotocol (JSON text frames) or
``wanglai.compact.msgpack`` (MessagePack binary frames), these frames are arrays; every other
frame keeps its object form, and object frames are still accepted from the client::

    client → server  ["s", id, conv, text]                     send a text (a ``send`` frame)
    server → client  ["m", seq, conv, mseq, sender, at, text]  a new plain text (an event)
    server → client  ["a", id, conv, mseq, at]                 the send ``id`` was stored (``ack``)
    server → client  ["a", id, conv, mseq, at, seq]            ... and is event ``seq`` in this
                                                               device's log (the sender's copy)

``seq`` is the event's place in the user's log, ``mseq`` the message's place in the
conversation, ``at`` the server's time in ms. The sender's copy carries no text: the device
that sent it has it. Only plain texts (body ``{"text": …}``, no reply, not edited) are short;
anything else goes out as the object frame, so both forms must be understood by a client.

This module is shared by the server (``shorten``, ``expand_send``) and the SDK (``expand``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from wanglai.services.views import EventView, MessageView

COMPACT = "wanglai.compact"
COMPACT_MSGPACK = "wanglai.compact.msgpack"
SEND, MESSAGE, ACK = "s", "m", "a"


class _Out(msgspec.Struct):
    t: str
    type: str = ""
    seq: int = 0
    at: int = 0
    conv: int = 0
    message: MessageView | None = None
    ack: str | None = None
    id: str = ""


_decode_out = msgspec.json.Decoder(_Out).decode
_encode = msgspec.json.Encoder().encode
_EVENT = b'{"t":"event","type":"message",'
_ACK = b'{"t":"ack",'


def _plain_text(message: MessageView) -> str | None:
    body = message.body
    if (
        message.kind != "text"
        or message.reply_to is not None
        or message.edited_at is not None
        or message.recalled
        or message.sms is not None
        or len(body) != 1
    ):
        return None
    text = body.get("text")
    return text if isinstance(text, str) else None


def shorten(payload: bytes) -> list[Any] | None:
    """The compact array for an outgoing JSON frame, or None if it has no compact form."""
    if payload.startswith(_ACK):
        out = _decode_out(payload)
        return [ACK, out.id, out.conv, out.seq, out.at]
    if not payload.startswith(_EVENT):
        return None
    out = _decode_out(payload)
    message = out.message
    if message is None:
        return None
    text = _plain_text(message)
    if text is None:
        return None
    if out.ack is not None:
        return [ACK, out.ack, message.conv, message.seq, message.at, out.seq]
    return [MESSAGE, out.seq, message.conv, message.seq, message.sender, message.at, text]


def expand_send(frame: list[Any]) -> bytes:
    """A client's compact frame as the JSON object frame it stands for; ValueError if it is
    not one (the caller answers ``malformed_frame``)."""
    if len(frame) != 4 or frame[0] != SEND:
        raise ValueError('a compact frame from a client is ["s", id, conv, text]')
    _, frame_id, conv, text = frame
    return _encode(
        {"t": "send", "id": frame_id, "conv": conv, "kind": "text", "body": {"text": text}}
    )


def expand(frame: list[Any], me: int, sent_texts: dict[str, str]) -> bytes:
    """(SDK) A compact frame from the server as the object frame it stands for. ``me`` is this
    user's id and ``sent_texts`` the texts this device sent, by frame id, to rebuild its own copy
    of a message; ValueError if the frame is not a compact one."""
    tag = frame[0] if frame else None
    if tag == MESSAGE and len(frame) == 7:
        _, seq, conv, mseq, sender, at, text = frame
        message = MessageView(conv, mseq, sender, "", "text", {"text": text}, at)
        return b'{"t":"event",' + _encode(EventView(seq, "message", at, conv, message))[1:]
    if tag == ACK and len(frame) == 5:
        _, frame_id, conv, mseq, at = frame
        return _encode({"t": "ack", "id": frame_id, "conv": conv, "seq": mseq, "at": at})
    if tag == ACK and len(frame) == 6:
        _, frame_id, conv, mseq, at, seq = frame
        text = sent_texts.get(frame_id, "")
        message = MessageView(conv, mseq, me, frame_id, "text", {"text": text}, at)
        event = _encode(EventView(seq, "message", at, conv, message))
        return b'{"t":"event",' + event[1:-1] + b',"ack":' + _encode(frame_id) + b"}"
    raise ValueError(f"not a compact frame: {frame!r:.80}")
