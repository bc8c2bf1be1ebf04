"""Server-to-client frames, built once per event and shared by every socket that gets them."""

from __future__ import annotations

from typing import Any

import msgspec

from wanglai.bus.local import Envelope
from wanglai.services.views import EventView, MessageView
from wanglai.store.events import Sent

_encode = msgspec.json.Encoder().encode


def event_frame(event: EventView) -> bytes:
    """``{"t":"event", …the event's fields…}``: the same event object sync returns, tagged."""
    return b'{"t":"event",' + _encode(event)[1:]


def message_event_frames(
    kind: str, message: MessageView, deliveries: list[tuple[int, int]], at: int
) -> list[tuple[int, bytes]]:
    """One frame per (user, seq); the message is encoded once for all of them."""
    body = _encode(message)
    head = (
        b'{"t":"event","type":"'
        + kind.encode()
        + b'","at":%d,"conv":%d,"message":'
        % (
            at,
            message.conv,
        )
    )
    tail = body + b',"seq":'
    return [(uid, head + tail + b"%d}" % seq) for uid, seq in deliveries]


def data_event_frames(
    kind: str, data: dict[str, Any], conv: int | None, deliveries: list[tuple[int, int]], at: int
) -> list[tuple[int, bytes]]:
    return [
        (uid, event_frame(EventView(seq=seq, type=kind, at=at, conv=conv, data=data)))
        for uid, seq in deliveries
    ]


def ephemeral_frame(kind: str, **fields: Any) -> bytes:
    """A frame with no seq (typing indicators): not logged, not replayed by sync."""
    return _encode({"t": kind, **fields})


def ack_frame(client_id: str, message: MessageView) -> bytes:
    """``{"t":"ack", …}``: a send was stored (used when no new event can carry the ack)."""
    return b'{"t":"ack","id":%s,"conv":%d,"seq":%d,"at":%d}' % (
        _encode(client_id),
        message.conv,
        message.seq,
        message.at,
    )


def with_ack(event_frame: bytes, client_id: str) -> bytes:
    """The sender's own copy of a new message's event, doubling as the acknowledgement."""
    return event_frame[:-1] + b',"ack":' + _encode(client_id) + b"}"


def notice_envelopes(sent: Sent, at: int) -> list[Envelope]:
    """The frames for notices appended by ``store.events.notify``, one per delivery."""
    envelopes: list[Envelope] = []
    for notice, deliveries in sent:
        out = data_event_frames(notice.kind, notice.data, notice.conv_id, deliveries, at)
        envelopes.extend(Envelope(uid, frame) for uid, frame in out)
    return envelopes
