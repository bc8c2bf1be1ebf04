"""What the protocol shows of users, devices, messages, events and conversations.

One set of msgspec structs serves REST bodies, WebSocket frames and the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

import msgspec

from wanglai.store.sql import Row

_json = msgspec.json.Decoder()


class UserView(msgspec.Struct, omit_defaults=True):
    id: int
    phone: str = ""
    """Shown to the user themself and their friends (and to whoever matched the number)."""
    name: str = ""
    about: str = ""


class MeView(msgspec.Struct):
    id: int
    phone: str
    name: str
    about: str
    dm_policy: str


class DeviceView(msgspec.Struct):
    id: int
    name: str
    created_at: int
    last_seen_at: int
    current: bool


class MessageView(msgspec.Struct, omit_defaults=True):
    conv: int
    seq: int
    sender: int
    client_id: str
    kind: str
    body: dict[str, Any]
    at: int
    reply_to: int | None = None
    edited_at: int | None = None
    recalled: bool = False
    sms: str | None = None
    """History only: the message went out as SMS, or waits to fall back to SMS — ``waiting``,
    ``sent``, ``delivered``, ``failed`` or ``skipped`` (events ``message.sms`` tell changes)."""


class EventView(msgspec.Struct, omit_defaults=True):
    seq: int
    type: str
    at: int
    conv: int | None = None
    message: MessageView | None = None
    data: dict[str, Any] | None = None


class ConversationView(msgspec.Struct, omit_defaults=True):
    id: int
    kind: str
    title: str
    seq: int
    read_seq: int
    unread: int
    muted: bool
    role: str
    peer: int | None = None
    last: MessageView | None = None
    peer_delivered_seq: int | None = None
    """Direct conversations: how far the other person's devices have received."""
    peer_read_seq: int | None = None
    """Direct conversations: how far the other person has read."""


def user_view(row: Row) -> UserView:
    return UserView(id=int(row[0]), phone=str(row[1]), name=str(row[2]), about=str(row[3]))


def me_view(row: Row) -> MeView:
    return MeView(int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]))


def message_view(row: Row) -> MessageView:
    """From store.messages.MESSAGE_COLUMNS order."""
    conv, seq, sender, client_id, kind, body, reply_to, created, edited, recalled = row[:10]
    return MessageView(
        conv=int(conv),
        seq=int(seq),
        sender=int(sender),
        client_id=str(client_id),
        kind=str(kind),
        body={} if recalled is not None else _json.decode(body),
        at=int(created),
        reply_to=None if reply_to is None else int(reply_to),
        edited_at=None if edited is None else int(edited),
        recalled=recalled is not None,
    )


def event_view(row: Row) -> EventView:
    """From store.events.since column order."""
    seq, kind, conv_id, ref, payload, created = row[:6]
    message = None
    if ref is not None and row[6] is not None:
        sender, client_id, mkind, body, reply_to, mcreated, edited, recalled = row[6:14]
        message = message_view(
            (conv_id, ref, sender, client_id, mkind, body, reply_to, mcreated, edited, recalled)
        )
    return EventView(
        seq=int(seq),
        type=str(kind),
        at=int(created),
        conv=None if conv_id is None else int(conv_id),
        message=message,
        data=None if payload is None else _json.decode(payload),
    )


def conversation_view(row: Row) -> ConversationView:
    """From store.conversations.list_for_user column order."""
    conv_id, kind, title, seq, read_seq, muted, role, unread, peer = row[:9]
    last = None
    if row[9] is not None:
        l_seq, l_sender, l_kind, l_body, l_created, l_recalled = row[9:15]
        last = message_view(
            (conv_id, l_seq, l_sender, row[17], l_kind, l_body, None, l_created, None, l_recalled)
        )
    return ConversationView(
        id=int(conv_id),
        kind=str(kind),
        title=str(title),
        seq=int(seq),
        read_seq=int(read_seq),
        unread=int(unread),
        muted=bool(muted),
        role=str(role),
        peer=None if peer is None else int(peer),
        last=last,
        peer_delivered_seq=None if peer is None else int(row[15]),
        peer_read_seq=None if peer is None else int(row[16]),
    )
