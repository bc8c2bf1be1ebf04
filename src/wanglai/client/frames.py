"""Shapes the SDK decodes that are not views: the WebSocket's control frames, sync pages, login.

Messages, events, conversations, users and devices decode into the server's own view structs
(``wanglai.services.views``); only what has no struct importable without the server lives here.
"""

from __future__ import annotations

import msgspec

from wanglai.services.views import EventView, MeView


class Tag(msgspec.Struct):
    t: str


class Hello(msgspec.Struct):
    user: int
    device: int
    head: int
    heartbeat: int
    queue: int = 0
    heartbeat_max: int = 0
    """The longest the server lets a connection stay silent between pings (0: ``heartbeat``)."""


class Ack(msgspec.Struct):
    id: str
    conv: int
    seq: int
    at: int


class ErrorFrame(msgspec.Struct):
    code: str
    message: str
    id: str | None = None


class Typing(msgspec.Struct):
    conv: int
    user: int


class SyncPage(msgspec.Struct):
    """One page of ``GET /v1/sync`` (the same shape as ``wanglai.services.sync.SyncPage``)."""

    events: list[EventView]
    next: int
    more: bool
    head: int


class Login(msgspec.Struct):
    """The answer to ``POST /v1/auth/login``."""

    token: str
    user: MeView
    device_id: int
    new_user: bool


class ErrorBody(msgspec.Struct):
    code: str
    message: str


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


decode_tag = msgspec.json.Decoder(Tag).decode
decode_hello = msgspec.json.Decoder(Hello).decode
decode_ack = msgspec.json.Decoder(Ack).decode
decode_error = msgspec.json.Decoder(ErrorFrame).decode
decode_event = msgspec.json.Decoder(EventView).decode


class EventAck(msgspec.Struct):
    """The sender's own copy of a new message carries the acknowledgement of its send."""

    ack: str | None = None


decode_event_ack = msgspec.json.Decoder(EventAck).decode
decode_typing = msgspec.json.Decoder(Typing).decode
encode = msgspec.json.Encoder().encode
