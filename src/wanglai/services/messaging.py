"""Conversations and messages: open a direct chat, send, page history, recall, edit, read, search.

Every change lands in the members' event logs inside the same transaction as the change itself;
the frames go out on the bus only after that transaction is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import NamedTuple

import msgspec

from wanglai.bus.local import Bus, Envelope
from wanglai.domain import content as content_rules
from wanglai.domain import editing, receipts
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Conflict, Invalid, NotFound
from wanglai.domain.interworking import SmsPlan
from wanglai.domain.paging import check_limit
from wanglai.domain.policy import check_direct, check_send
from wanglai.services import frames
from wanglai.services.views import ConversationView, MessageView, conversation_view, message_view
from wanglai.store import accounts, conversations, interworking, messages
from wanglai.store.database import Callback, Database
from wanglai.store.messages import Appended
from wanglai.store.sql import Row

_encode_json = msgspec.json.Encoder().encode
_json_decode = msgspec.json.decode
MAX_CLIENT_ID = 64

MediaCheck = Callable[[int, str, str], Awaitable[None]]
"""``(sender_id, kind, media_hash)``; raises to refuse a message carrying that media
(``MediaService.check_attachable``: the media exists and the sender may see it)."""


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 2**62:
        raise Invalid("invalid_" + name, f"'{name}' must be a positive integer.")
    return value


class Sent(NamedTuple):
    view: MessageView
    fresh: bool
    """False when a retry was answered with the message stored the first time."""
    ack: bytes | None
    """With a sending device: the one frame that acknowledges the send on its socket."""


class MessagingService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        bus: Bus,
        media_check: MediaCheck | None = None,
        sms_plan: SmsPlan | None = None,
        sms_wake: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus
        self.media_check = media_check
        # Two shared plans: every message carries one (messages to numbers not on Wanglai go
        # out as SMS within the quota); the second also asks for the SMS fallback.
        plan = sms_plan or SmsPlan(0)
        self._sms = replace(plan, fallback_after_ms=0)
        self._sms_fallback = plan if plan.fallback_after_ms > 0 else None
        self.sms_wake = sms_wake

    def publish(
        self, kind: str, appended: Appended, origin: tuple[int, int] | None = None
    ) -> tuple[MessageView, bytes | None]:
        """Push a committed message change to every member's sockets.

        With ``origin`` = (user id, device id), that device is left out and its user's frame
        is returned instead, for the caller to deliver along with its acknowledgement.
        """
        view = message_view(appended.message)
        own: bytes | None = None
        if appended.deliveries:
            out = frames.message_event_frames(kind, view, appended.deliveries, view.at)
            if origin is None:
                self.bus.publish([Envelope(uid, frame) for uid, frame in out])
            else:
                user_id, device_id = origin
                self.bus.publish([Envelope(uid, frame, 0, device_id) for uid, frame in out])
                own = next((frame for uid, frame in out if uid == user_id), None)
        return view, own

    async def open_direct(self, user_id: int, peer_id: object) -> int:
        """The direct conversation with ``peer_id``, created if the peer may be messaged."""
        peer = _positive(peer_id, "user_id")
        if peer == user_id:
            raise Invalid("cannot_message_self", "Pick someone other than yourself.")
        facts = await self.db.read(conversations.peer_facts, {(user_id, peer)})
        if (user_id, peer) not in facts:
            raise NotFound("user_not_found", "No such user.")
        check_direct(facts[(user_id, peer)])
        conv_id, _created = await self.db.write(
            conversations.open_direct, user_id, peer, self.clock.now_ms()
        )
        return conv_id

    def prepare(
        self,
        user_id: int,
        conv_id: object,
        client_id: object,
        kind: object,
        body: object,
        reply_to: object = None,
        sms_fallback: object = False,
    ) -> messages.NewMessage:
        """Check a message's own content (no I/O) and shape it for the store; raises if bad.
        With ``sms_fallback``, a direct message no device of the recipient received within
        the configured time is texted to them (``services/interworking.py``)."""
        conv = _positive(conv_id, "conv")
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID:
            raise Invalid("invalid_client_id", "'client_id' is a string of 1 to 64 characters.")
        content = content_rules.validate(kind, body)
        reply = None if reply_to is None else _positive(reply_to, "reply_to")
        sms = self._sms
        if sms_fallback is not False:
            if sms_fallback is not True:
                raise Invalid("invalid_sms_fallback", "'sms_fallback' is true or false.")
            if self._sms_fallback is None:
                raise Invalid("sms_fallback_disabled", "SMS fallback is off on this server.")
            sms = self._sms_fallback
        return messages.NewMessage(
            conv,
            user_id,
            client_id,
            content.kind,
            _encode_json(content.body).decode(),
            content.search_text,
            reply,
            content.media,
            content.mentions_all,
            self.clock.now_ms(),
            check_send,
            content.mentions,
            sms,
        )

    @staticmethod
    def needs_lookups(item: messages.NewMessage) -> bool:
        """Whether :meth:`check_references` has anything to look up for this message."""
        return item.kind == "contact" or item.media is not None

    async def check_references(self, item: messages.NewMessage) -> None:
        """What a message points at outside its conversation must exist and be the sender's to
        share: the user on a contact card, the media of an image, voice or file."""
        if item.kind == "contact":
            card_user = int(_json_decode(item.body)["user_id"])
            if await self.db.read(accounts.user_by_id, card_user) is None:
                raise NotFound("contact_not_found", "The shared contact is not a Wanglai user.")
        if item.media is not None and self.media_check is not None:
            await self.media_check(item.sender_id, item.kind, item.media)

    def submit(self, item: messages.NewMessage) -> asyncio.Future[Appended]:
        """Queue a prepared, checked message for the next group commit."""
        return self.db.submit(messages.append, item)

    def submit_callback(self, item: messages.NewMessage, callback: Callback) -> None:
        """Queue a prepared message; ``callback(ok, appended or error)`` runs once durable."""
        self.db.submit_callback(callback, messages.append, item)

    def finish(self, item: messages.NewMessage, appended: Appended, device_id: int = 0) -> Sent:
        """After the commit: push the message to its members, or answer a retry.

        With the sending ``device_id``, that device's copy of the event is not pushed but comes
        back as the frame that acknowledges the send (see :meth:`publish`)."""
        if appended.duplicate:
            first = appended.message
            if (int(first[0]), str(first[4]), str(first[5])) != (
                item.conv_id,
                item.kind,
                item.body,
            ):
                raise Conflict(
                    "client_id_reused", "This client_id was used for a different message."
                )
            view = message_view(first)
            ack = frames.ack_frame(item.client_id, view) if device_id else None
            return Sent(view, False, ack)
        if appended.texted and self.sms_wake is not None:
            self.sms_wake()
        origin = (item.sender_id, device_id) if device_id else None
        view, own = self.publish("message", appended, origin)
        if own is not None:
            return Sent(view, True, frames.with_ack(own, item.client_id))
        return Sent(view, True, frames.ack_frame(item.client_id, view) if device_id else None)

    async def send(
        self,
        user_id: int,
        conv_id: object,
        client_id: object,
        kind: object,
        body: object,
        reply_to: object = None,
        sms_fallback: object = False,
    ) -> MessageView:
        """Store a message durably and deliver it; a retry with the same client id is answered
        with the first message (409 if the retry carries a different message)."""
        sent = await self.deliver(user_id, conv_id, client_id, kind, body, reply_to, sms_fallback)
        return sent.view

    async def deliver(
        self,
        user_id: int,
        conv_id: object,
        client_id: object,
        kind: object,
        body: object,
        reply_to: object = None,
        sms_fallback: object = False,
    ) -> Sent:
        """:meth:`send`, telling also whether the message is new (not a retry's answer)."""
        item = self.prepare(user_id, conv_id, client_id, kind, body, reply_to, sms_fallback)
        if self.needs_lookups(item):
            await self.check_references(item)
        return self.finish(item, await self.submit(item))

    async def history(
        self, user_id: int, conv_id: int, before: int | None, limit: int
    ) -> list[MessageView]:
        check_limit(limit)
        member = await self.db.read(conversations.membership, conv_id, user_id)
        if member is None:
            raise NotFound("conversation_not_found", "No such conversation.")
        rows = await self.db.read(messages.history, conv_id, before or 2**62, limit, int(member[2]))
        views = [message_view(r) for r in rows]
        if views:
            # which of these went (or wait to go) out as SMS: one indexed range read
            texted = await self.db.read(interworking.states, conv_id, views[-1].seq, views[0].seq)
            for view in views:
                view.sms = texted.get(view.seq)
        return views

    async def recall(self, user_id: int, conv_id: int, seq: int) -> MessageView:
        now = self.clock.now_ms()

        def authorize(message: Row, role: str | None) -> None:
            editing.check_recall(
                user_id,
                role,
                int(message[2]),
                int(message[7]),
                message[9] is not None,
                now,
                str(message[4]),
            )

        appended = await self.db.write(
            messages.change, conv_id, seq, user_id, "message.recall", None, None, now, authorize
        )
        return self.publish("message.recall", appended)[0]

    async def edit(self, user_id: int, conv_id: int, seq: int, body: object) -> MessageView:
        now = self.clock.now_ms()
        content = content_rules.validate("text", body)

        def authorize(message: Row, role: str | None) -> None:
            editing.check_edit(
                user_id,
                int(message[2]),
                str(message[4]),
                int(message[7]),
                message[9] is not None,
                now,
                content.mentions_all,
                role,
            )

        appended = await self.db.write(
            messages.change,
            conv_id,
            seq,
            user_id,
            "message.edit",
            _encode_json(content.body).decode(),
            content.search_text,
            now,
            authorize,
        )
        return self.publish("message.edit", appended)[0]

    async def mark_read(self, user_id: int, conv_id: int, seq: object) -> int:
        """Move the read pointer; the user's other devices and a direct peer hear of it."""
        return await self._mark(user_id, conv_id, seq, "read")

    async def mark_delivered(self, user_id: int, conv_id: int, seq: object) -> int:
        """A device of the user has the messages up to ``seq``; a direct peer hears of it."""
        return await self._mark(user_id, conv_id, seq, "delivered")

    async def _mark(self, user_id: int, conv_id: int, seq: object, pointer: str) -> int:
        upto = _positive(seq, "seq")
        now = self.clock.now_ms()
        result = await self.db.write(
            conversations.mark,
            conv_id,
            user_id,
            upto,
            pointer,
            now,
            partial(_receipt_audience, pointer, user_id),
        )
        if result is None:
            raise NotFound("conversation_not_found", "No such conversation.")
        value, deliveries = result
        if deliveries:
            data = {"conv": conv_id, "user": user_id, "seq": value}
            out = frames.data_event_frames(pointer, data, conv_id, deliveries, now)
            self.bus.publish([Envelope(uid, frame) for uid, frame in out])
        return value

    async def typing(self, user_id: int, conv_id: object) -> None:
        conv = _positive(conv_id, "conv")
        ids = await self.db.read(conversations.member_ids, conv)
        if user_id not in ids:
            raise NotFound("conversation_not_found", "No such conversation.")
        frame = frames.ephemeral_frame("typing", conv=conv, user=user_id)
        self.bus.publish([Envelope(uid, frame) for uid in ids if uid != user_id])

    async def conversations(self, user_id: int, limit: int = 200) -> list[ConversationView]:
        rows = await self.db.read(conversations.list_for_user, user_id, limit)
        return [conversation_view(r) for r in rows]

    async def conversation(self, user_id: int, conv_id: int) -> ConversationView:
        rows = await self.db.read(conversations.list_for_user, user_id, 1, conv_id)
        if not rows:
            raise NotFound("conversation_not_found", "No such conversation.")
        return conversation_view(rows[0])

    async def search(
        self, user_id: int, query: str, conv_id: int | None, limit: int
    ) -> list[MessageView]:
        needle = query.strip()
        if not 1 <= len(needle) <= 100:
            raise Invalid("invalid_query", "Search for 1 to 100 characters.")
        check_limit(limit, 100)
        scope = None if conv_id is None else [conv_id]
        rows = await self.db.read(messages.search, user_id, needle, scope, limit)
        return [message_view(r) for r in rows]


def _receipt_audience(pointer: str, user_id: int, conv_kind: str, members: list[int]) -> list[int]:
    return receipts.audience(pointer, conv_kind, user_id, members)
