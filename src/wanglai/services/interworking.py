"""Message anyone by phone number: conversations with numbers not on Wanglai go out as SMS,
texts back from those numbers come into the conversation, STOP/START from a phone turn texts
off and on, and a direct message may fall back to SMS when its recipient stays offline.

Sending itself is ``MessagingService``'s path: the store texts a message to a number not on
Wanglai inside the transaction that stores it (store/messages.py, store/interworking.py), so
the quota and the opt-out are checked where the message is decided, and nothing is stored when
either refuses it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

import msgspec

from wanglai.bus.local import Bus
from wanglai.domain import interworking as rules
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Forbidden, Invalid, WanglaiError
from wanglai.domain.phone import mask, normalise, try_normalise
from wanglai.services import frames
from wanglai.services.messaging import MessagingService
from wanglai.services.sms import Inbound, Outcome, SmsService
from wanglai.store import interworking as store
from wanglai.store.database import Database

log = logging.getLogger("wanglai.interworking")

PURPOSES = ("chat", "fallback")
"""Outbox purposes whose outcome is a chat message's SMS state (``ref``: its sms_messages id)."""


class DirectOpened(msgspec.Struct):
    """A direct conversation, opened (or found) with a user or with a phone number."""

    id: int
    peer: int
    """The other member (for a number not on Wanglai: the number's stand-in until it joins)."""
    sms: bool
    """True while the peer is not on Wanglai: your messages there go out as SMS."""


class SmsThread(msgspec.Struct):
    conv: int
    phone: str
    joined: bool
    """The number has joined Wanglai since: the conversation is an ordinary one now."""
    opted_out: bool
    """The number replied STOP: nothing more is texted to it until it replies START."""
    last_texted_at: int | None = None


class SmsQuota(msgspec.Struct):
    limit: int
    used: int
    """SMS you sent today (China time): to numbers not on Wanglai and as fallbacks."""
    fallback_after_s: int
    """How long a recipient has to receive a message asking for SMS fallback (0: off)."""


class InterworkingService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        bus: Bus,
        sms: SmsService,
        messaging: MessagingService,
        plan: rules.SmsPlan,
        region: str = "CN",
        blocked_prefixes: tuple[str, ...] = rules.DEFAULT_BLOCKED_PREFIXES,
        count_lookup: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus
        self.sms = sms
        self.messaging = messaging
        self.plan = plan
        self.region = region
        self.blocked_prefixes = blocked_prefixes
        self.count_lookup = count_lookup

    def attach(self) -> None:
        """Take texts from phones and SMS outcomes from the SMS service."""
        self.sms.on_inbound(self.on_inbound)
        self.sms.on_outcome(self.on_outcome)

    # ------------------------------------------------------------ starting a conversation

    async def open_by_phone(self, user_id: int, raw_phone: object) -> DirectOpened:
        """The direct conversation with whoever has this number: an ordinary one with a user
        (their DM policy and blocks apply), else an SMS thread with the number."""
        if not isinstance(raw_phone, str):
            raise Invalid("invalid_phone", "Give a phone number, e.g. +8613800138000.")
        phone = normalise(raw_phone, self.region)
        found = await self.db.read(store.number, phone)
        if found is None or found[1]:
            rules.check_sms_number(phone, self.blocked_prefixes)
        if self.count_lookup is not None:
            # as many numbers tried as contact look-ups allow: no probing who is on Wanglai
            await self.count_lookup(user_id)
        if found is None or found[1]:

            def check_opt_out(opted_out: bool) -> None:
                if opted_out:
                    raise Forbidden(
                        "sms_opted_out", "This number has opted out of texts (replied STOP)."
                    )

            opened = await self.db.write(
                store.open_thread, user_id, phone, self.clock.now_ms(), check_opt_out
            )
            if opened is not None:
                return DirectOpened(opened[0], opened[1], True)
            found = await self.db.read(store.number, phone)  # it joined a moment ago
            assert found is not None
        conv = await self.messaging.open_direct(user_id, found[0])
        return DirectOpened(conv, found[0], False)

    async def threads(self, user_id: int) -> list[SmsThread]:
        rows = await self.db.read(store.threads, user_id)
        return [
            SmsThread(conv, phone, joined, opted, last or None)
            for conv, phone, joined, opted, last in rows
        ]

    async def quota(self, user_id: int) -> SmsQuota:
        used = await self.db.read(store.quota_used, user_id, self.clock.now_ms())
        return SmsQuota(self.plan.daily_quota, used, self.plan.fallback_after_ms // 1000)

    # ------------------------------------------------------------ what phones send back

    async def on_inbound(self, message: Inbound) -> None:
        """A text from a phone: STOP/START, or a reply into the conversation that texted that
        number last (a number texted by several users answers the most recent one)."""
        phone = try_normalise(message.source, self.region)
        if phone is None:
            log.warning("sms from an unreadable number %r ignored", message.source[:24])
            return
        word = rules.keyword(message.text)
        now = self.clock.now_ms()
        if word is not None:
            changed = await self.db.write(
                store.set_opt_out, phone, word == rules.STOP, now, rules.confirmation(word)
            )
            if changed:
                log.info("sms %s from %s", word.upper(), mask(phone))
                self.sms.wake()
            return
        found = await self.db.read(store.route, phone)
        if found is None:
            log.info("sms from %s matches no conversation; ignored", mask(phone))
            return
        conv_id, number_user = found
        # The same text redelivered by the SMSC keeps its client id: stored once.
        digest = hashlib.sha256(
            f"{phone}|{message.dest}|{message.received_ms}|{message.text}".encode()
        ).hexdigest()[:40]
        try:
            await self.messaging.deliver(
                number_user, conv_id, f"sms-{digest}", "text", {"text": message.text[:4000]}
            )
        except WanglaiError as exc:
            log.info("sms from %s not stored: %s", mask(phone), exc.code)

    async def on_outcome(self, outcome: Outcome) -> None:
        """An SMS of a chat message was delivered or failed: its sender hears of it."""
        if outcome.purpose not in PURPOSES or outcome.ref is None:
            return
        now = self.clock.now_ms()
        sent = await self.db.write(store.apply_outcome, outcome.ref, outcome.state, now)
        if sent:
            self.bus.publish(frames.notice_envelopes(sent, now))

    # ------------------------------------------------------------ fallbacks

    async def sweep(self, limit: int = 200) -> int:
        """Text the due fallbacks (messages no device of their recipient received in time);
        returns how many due fallbacks were settled. The app runs it in a loop."""
        now = self.clock.now_ms()
        swept = await self.db.write(store.sweep_fallbacks, now, self.plan, limit)
        if swept.texted:
            self.sms.wake()
        if swept.sent:
            self.bus.publish(frames.notice_envelopes(swept.sent, now))
        return swept.done
