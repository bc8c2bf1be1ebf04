"""SMS interworking rules: which numbers may get a text, what the text says, the STOP/START
keywords phones send back, the daily free quota and when a chat message falls back to SMS.

Pure: no I/O. The store applies these inside the transaction that stores the message.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

from wanglai.domain.errors import Forbidden, Invalid, RateLimited

DEFAULT_BLOCKED_PREFIXES = (
    "+86106",  # SP / enterprise SMS access codes (106xx...): value-added, billed per message
    "+861259",  # value-added / virtual-network access numbers
    "+86100",  # operator service short codes (10086, 10010, 10000, ...)
    "+86123",  # public-service short codes (12315, 12345, ...)
    "+86400",  # 400 shared-cost service numbers
    "+86800",  # 800 toll-free numbers
)
"""Numbers a user may never text through the platform (configurable, ``WANGLAI_SMS_BLOCKED_
PREFIXES``): CN premium / value-added and service ranges. Most are no valid mobile numbers
anyway (the number-type rule refuses them too); the list catches them even if a numbering-plan
update or a lenient parser let one through, and operators add ranges they see abused."""

SMS_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
"""Number types that can receive an SMS; premium-rate, shared-cost, toll-free, fixed lines,
VoIP, pagers and personal numbers cannot (or cost the receiver or the platform extra)."""

STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "td", "退订", "取消"}
)
START_WORDS = frozenset({"start", "unstop", "subscribe", "resume", "订阅", "恢复"})
_PUNCTUATION = ".,;:!?'\"-_*()[]。，；：！？、"
STOP = "stop"
START = "start"

MAX_BODY = 300
"""Characters of a chat message put into one SMS (with the header: at most 5 UCS-2 parts)."""

REPLY_HINT = "Reply to this number to answer; STOP to opt out."
APP_HINT = "Open Wanglai to reply. STOP to opt out."

# States of a message that goes (or may go) out as SMS (sms_messages.state).
WAITING = "waiting"
"""A fallback: the recipient has until ``due_ms`` to receive it in the app."""
SENT = "sent"
"""Handed to the SMS outbox."""
DELIVERED = "delivered"
FAILED = "failed"
SKIPPED = "skipped"
"""A fallback that was due but could not go (opted out, over quota, recalled)."""
STATES = (WAITING, SENT, DELIVERED, FAILED, SKIPPED)
CHAT = "sms"
"""Mode of a message to a number that is not on Wanglai."""
FALLBACK = "fallback"
"""Mode of a message to a registered user, texted when not received in time."""


@dataclass(frozen=True)
class SmsPlan:
    """What a sender's message may cost in SMS: shared by every message a service prepares."""

    daily_quota: int
    """Free SMS per sender per day (China time), to numbers not on Wanglai and as fallbacks."""
    fallback_after_ms: int = 0
    """With a fallback requested: how long the recipient has to receive it in the app."""


def check_sms_number(
    e164: str, blocked_prefixes: tuple[str, ...] = DEFAULT_BLOCKED_PREFIXES
) -> None:
    """Raise unless ``e164`` (already normalised) is a number the platform may text."""
    for blocked in blocked_prefixes:
        if e164.startswith(blocked):
            raise Invalid(
                "sms_number_blocked",
                "Texts to premium-rate, service and short-code numbers are not allowed.",
            )
    kind = phonenumbers.number_type(phonenumbers.parse(e164, None))
    if kind == PhoneNumberType.PREMIUM_RATE or kind == PhoneNumberType.SHARED_COST:
        raise Invalid(
            "sms_number_blocked",
            "Texts to premium-rate, service and short-code numbers are not allowed.",
        )
    if kind not in SMS_TYPES:
        raise Invalid("sms_number_not_mobile", "Only mobile numbers can get a text; check it.")


def parse_prefixes(raw: str) -> tuple[str, ...]:
    """``WANGLAI_SMS_BLOCKED_PREFIXES``: comma-separated E.164 prefixes (``+86106,+86168``)."""
    out = []
    for item in raw.split(","):
        prefix = item.strip()
        if not prefix:
            continue
        if not prefix.startswith("+") or not prefix[1:].isdigit():
            raise ValueError(f"blocked SMS prefix {prefix!r}: write it as + and digits")
        out.append(prefix)
    return tuple(out)


def keyword(text: str) -> str | None:
    """``STOP`` or ``START`` when a text from a phone is one of their keywords (any case, any
    surrounding spaces or punctuation, full-width letters too), else None: the text is a reply."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    word = "".join(folded.split()).strip(_PUNCTUATION)
    if not word or len(word) > 16 or not word.isalnum():
        return None
    if word in STOP_WORDS:
        return STOP
    if word in START_WORDS:
        return START
    return None


def confirmation(word: str) -> str:
    """The one SMS that confirms a STOP or START."""
    if word == STOP:
        return "Wanglai: you will get no more texts from Wanglai users. Reply START to resume."
    return "Wanglai: texts from Wanglai users are on again. Reply STOP to opt out."


def check_sms(
    opted_out: bool, used_today: int, plan: SmsPlan | None, resets_in_s: float = 0.0
) -> None:
    """Raise unless one more SMS may go to this number from this sender today
    (``resets_in_s``: when the quota starts again, for Retry-After)."""
    if opted_out:
        raise Forbidden(
            "sms_opted_out", "This number has opted out of texts (replied STOP); nothing was sent."
        )
    quota = 0 if plan is None else plan.daily_quota
    if used_today >= quota:
        raise RateLimited(
            "sms_quota_exceeded",
            f"You have used your {quota} free texts for today; nothing was sent. Try tomorrow.",
            resets_in_s,
        )


def check_fallback(conv_kind: str) -> None:
    if conv_kind != "direct":
        raise Invalid("sms_fallback_direct_only", "SMS fallback is for direct conversations.")


def describe(kind: str, body: dict[str, Any]) -> str:
    """A chat message as SMS text."""
    if kind == "text":
        text = str(body.get("text", ""))
    elif kind == "image":
        text = "[photo] " + str(body.get("caption", ""))
    elif kind == "voice":
        text = "[voice message]"
    elif kind == "file":
        text = f"[file: {body.get('name', '')}]"
    elif kind == "location":
        label = str(body.get("label", ""))
        where = label or f"{float(body.get('lat', 0)):.5f},{float(body.get('lon', 0)):.5f}"
        text = f"[location: {where}]"
    else:
        text = "[contact card]"
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 1] + "…"


def sender_label(name: str) -> str:
    name = " ".join(name.split())
    return name[:32] if name else "Someone"


def chat_text(sender_name: str, kind: str, body: dict[str, Any]) -> str:
    """A message to a number that is not on Wanglai."""
    return f"{sender_label(sender_name)} on Wanglai: {describe(kind, body)}\n{REPLY_HINT}"


def fallback_text(sender_name: str, kind: str, body: dict[str, Any]) -> str:
    """A message to a Wanglai user who did not receive it in the app in time."""
    return f"{sender_label(sender_name)} on Wanglai: {describe(kind, body)}\n{APP_HINT}"


def fallback_outcome(
    received_seq: int, seq: int, recalled: bool, opted_out: bool, used_today: int, plan: SmsPlan
) -> str | None:
    """What a due fallback does: None to send it now, ``"received"`` when a device of the
    recipient has it after all (nothing to do), else the reason it is skipped."""
    if received_seq >= seq:
        return "received"
    if recalled:
        return "recalled"
    if opted_out:
        return "sms_opted_out"
    if used_today >= plan.daily_quota:
        return "sms_quota_exceeded"
    return None


def outbox_state(state: str) -> str:
    """The message's SMS state for a final outbox state (delivered, failed, rejected)."""
    return DELIVERED if state == "delivered" else FAILED
