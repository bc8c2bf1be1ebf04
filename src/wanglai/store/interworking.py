"""SMS interworking: threads with numbers not on Wanglai (placeholder users), opt-outs, the daily
quota, and chat messages that go out as SMS — right away to a number not on Wanglai, or as a
fallback when a registered recipient has not received a message in time.

A number someone texts gets a placeholder row in ``users`` (``placeholder = 1``) that is a member
of the sender's direct conversation like any user, with an event log of its own; everyone else's
lookups leave it out (store/accounts.py, store/contacts.py). Its first login with a code makes it
the real account (``accounts.ensure_user``), so the conversations and their history are there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from wanglai.domain import interworking as rules
from wanglai.domain.limits import day_of
from wanglai.domain.usage import ms_to_next_day
from wanglai.store import conversations, events, sms
from wanglai.store.sql import Op, Values, all_rows, execute, many, one, scalar

_decode = msgspec.json.Decoder().decode
EVENT = "message.sms"
"""The event that tells a sender how their message fared as SMS."""


def number(phone: str) -> Op[tuple[int, bool] | None]:
    """(user id, is placeholder) of whoever has this number, placeholders included."""
    row = yield from one("SELECT id, placeholder FROM users WHERE phone = ?", phone)
    return None if row is None else (int(row[0]), bool(row[1]))


def open_thread(
    sender_id: int, phone: str, now_ms: int, check_opt_out: Callable[[bool], None]
) -> Op[tuple[int, int] | None]:
    """The sender's conversation with a number not on Wanglai: (conversation id, the number's
    placeholder id), made with the placeholder if new. None when the number is a user (the
    caller opens the ordinary direct conversation). ``check_opt_out(opted_out)`` may refuse a
    new thread to a number that replied STOP; an existing thread is returned as it is."""
    found = yield from number(phone)
    if found is not None and not found[1]:
        return None
    if found is not None:
        conv = yield from scalar(
            "SELECT conv_id FROM sms_threads WHERE user_id = ? AND sender_id = ?",
            found[0],
            sender_id,
        )
        if conv is not None:
            return int(conv), found[0]
    opted = yield from opted_out([phone])
    check_opt_out(phone in opted)
    if found is None:
        placeholder = yield from scalar(
            "INSERT INTO users (phone, name, about, dm_policy, seq, created_ms, placeholder)"
            " VALUES (?, '', '', 'friends', 0, ?, 1) RETURNING id",
            phone,
            now_ms,
        )
        placeholder_id = int(placeholder)
    else:
        placeholder_id = found[0]
    conv_id, _created = yield from conversations.open_direct(sender_id, placeholder_id, now_ms)
    yield from execute(
        "INSERT INTO sms_threads (user_id, sender_id, conv_id, msisdn, last_ms)"
        " VALUES (?, ?, ?, ?, 0)",
        placeholder_id,
        sender_id,
        conv_id,
        phone,
    )
    return conv_id, placeholder_id


def opted_out(phones: Sequence[str]) -> Op[set[str]]:
    rows = yield from all_rows(
        "SELECT msisdn FROM sms_optouts WHERE msisdn = ANY(?)", Values(sorted(set(phones)))
    )
    return {str(r[0]) for r in rows}


def used_today(user_ids: Sequence[int], day: int, lock: bool = True) -> Op[dict[int, int]]:
    """SMS each user sent today against the quota (with ``lock``, rows locked on PostgreSQL:
    the caller is about to count more)."""
    query = "SELECT user_id, used FROM sms_quota WHERE user_id = ANY(?) AND day = ?"
    rows = yield from all_rows(
        query,
        Values(sorted(set(user_ids))),
        day,
        pg_sql=query + " ORDER BY user_id FOR UPDATE" if lock else None,
    )
    return {int(r[0]): int(r[1]) for r in rows}


def _count(used: dict[int, int], day: int) -> Op[None]:
    """Add ``used`` (user -> SMS sent now) to today's counts; forget days before yesterday."""
    yield from many(
        "INSERT INTO sms_quota (user_id, day, used) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, day) DO UPDATE SET used = sms_quota.used + excluded.used",
        [(uid, day, n) for uid, n in sorted(used.items())],
    )
    yield from execute(
        "DELETE FROM sms_quota WHERE user_id = ANY(?) AND day < ?", Values(sorted(used)), day - 1
    )


def _names(user_ids: Sequence[int]) -> Op[dict[int, str]]:
    rows = yield from all_rows(
        "SELECT id, name FROM users WHERE id = ANY(?)", Values(sorted(set(user_ids)))
    )
    return {int(r[0]): str(r[1]) for r in rows}


# ---------------------------------------------------------------- messages to numbers


@dataclass
class Relay:
    """What a batch of messages to numbers not on Wanglai needs, read once in the batch's
    transaction: each number, who opted out, each sender's SMS today. ``admit`` applies the
    rules to one message (counting it), ``write`` stores the SMS of the admitted ones."""

    day: int
    phones: dict[int, str]
    opted: set[str]
    used: dict[int, int]
    resets_in_s: float
    """Seconds until the daily quota starts again (China-time midnight)."""
    admitted: list[tuple[int, int, int, int, str, str]] = field(default_factory=list)
    """(conv_id, seq, sender_id, recipient_id, kind, body) of each message to text."""

    def admit(self, sender_id: int, recipient_id: int, plan: rules.SmsPlan | None) -> None:
        """Raise unless this message may go out as SMS; count it when it may."""
        used = self.used.get(sender_id, 0)
        opted = self.phones.get(recipient_id, "") in self.opted
        rules.check_sms(opted, used, plan, self.resets_in_s)
        self.used[sender_id] = used + 1

    def add(
        self, conv_id: int, seq: int, sender_id: int, recipient_id: int, kind: str, body: str
    ) -> None:
        self.admitted.append((conv_id, seq, sender_id, recipient_id, kind, body))


def relay(pairs: set[tuple[int, int]], now_ms: int) -> Op[Relay]:
    """The facts for messages from senders to placeholders, ``pairs`` of (sender, placeholder)."""
    day = day_of(now_ms)
    rows = yield from all_rows(
        "SELECT id, phone FROM users WHERE id = ANY(?)", Values(sorted({p for _, p in pairs}))
    )
    phones = {int(r[0]): str(r[1]) for r in rows}
    opted = yield from opted_out(list(phones.values()))
    used = yield from used_today([s for s, _ in pairs], day)
    return Relay(day, phones, opted, dict(used), ms_to_next_day(now_ms) / 1000)


def write_relay(found: Relay, now_ms: int) -> Op[None]:
    """Queue the SMS of every admitted message, mark their state and count the quota."""
    if not found.admitted:
        return
    names = yield from _names([a[2] for a in found.admitted])
    counted: dict[int, int] = {}
    for conv_id, seq, sender_id, recipient_id, kind, body in found.admitted:
        phone = found.phones[recipient_id]
        text = rules.chat_text(names.get(sender_id, ""), kind, _decode(body))
        row_id = yield from _track(conv_id, seq, sender_id, recipient_id, rules.CHAT, now_ms)
        yield from sms.enqueue(phone, text, "chat", now_ms, row_id, sender_id)
        counted[sender_id] = counted.get(sender_id, 0) + 1
        yield from execute(
            "UPDATE sms_threads SET last_ms = ? WHERE user_id = ? AND sender_id = ?",
            now_ms,
            recipient_id,
            sender_id,
        )
    yield from _count(counted, found.day)


def _track(
    conv_id: int, seq: int, sender_id: int, recipient_id: int, mode: str, now_ms: int
) -> Op[int]:
    row_id = yield from scalar(
        "INSERT INTO sms_messages (conv_id, seq, sender_id, recipient_id, mode, state,"
        " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        conv_id,
        seq,
        sender_id,
        recipient_id,
        mode,
        rules.SENT,
        now_ms,
    )
    return int(row_id)


# ---------------------------------------------------------------- fallbacks


def add_fallbacks(rows: Sequence[tuple[int, int, int, int, int]], now_ms: int) -> Op[None]:
    """Fallback candidates, each (conv_id, seq, sender_id, recipient_id, due_ms)."""
    yield from many(
        "INSERT INTO sms_messages (conv_id, seq, sender_id, recipient_id, mode, state, due_ms,"
        " updated_ms) VALUES (?, ?, ?, ?, 'fallback', 'waiting', ?, ?)",
        [(*row, now_ms) for row in rows],
    )


@dataclass(frozen=True)
class Swept:
    sent: events.Sent
    texted: int
    """How many SMS were queued (the outbox sender wants a wake-up)."""
    done: int
    """How many due fallbacks were settled (texted, skipped or no longer needed)."""


def sweep_fallbacks(now_ms: int, plan: rules.SmsPlan, limit: int) -> Op[Swept]:
    """Settle up to ``limit`` due fallbacks: text those still not received by any device of the
    recipient, skip those that may not go (and say why), drop those received meanwhile."""
    due = (
        "SELECT id, conv_id, seq, sender_id, recipient_id FROM sms_messages"
        " WHERE state = 'waiting' AND due_ms <= ? ORDER BY due_ms, id LIMIT ?"
    )
    rows = yield from all_rows(due, now_ms, limit, pg_sql=due + " FOR UPDATE SKIP LOCKED")
    if not rows:
        return Swept([], 0, 0)
    day = day_of(now_ms)
    used = yield from used_today([int(r[3]) for r in rows], day)
    names = yield from _names([int(r[3]) for r in rows])
    notices: list[events.Notice] = []
    counted: dict[int, int] = {}
    for row_id, conv_id, seq, sender_id, recipient_id in (
        (int(a), int(b), int(c), int(d), int(e)) for a, b, c, d, e in rows
    ):
        facts = yield from one(
            "SELECT m.delivered_seq, u.phone, x.kind, x.body, x.recalled_ms,"
            " (SELECT COUNT(*) FROM sms_optouts o WHERE o.msisdn = u.phone)"
            " FROM users u LEFT JOIN members m ON m.conv_id = ? AND m.user_id = u.id"
            " LEFT JOIN messages x ON x.conv_id = ? AND x.seq = ? WHERE u.id = ?",
            conv_id,
            conv_id,
            seq,
            recipient_id,
        )
        assert facts is not None
        spent = used.get(sender_id, 0) + counted.get(sender_id, 0)
        reason = rules.fallback_outcome(
            int(facts[0] or 0),
            seq,
            facts[4] is not None or facts[2] is None,
            bool(facts[5]),
            spent,
            plan,
        )
        if reason == "received":
            yield from execute("DELETE FROM sms_messages WHERE id = ?", row_id)
            continue
        data: dict[str, Any] = {"conv": conv_id, "seq": seq, "via": rules.FALLBACK}
        if reason is None:
            text = rules.fallback_text(names.get(sender_id, ""), str(facts[2]), _decode(facts[3]))
            yield from sms.enqueue(str(facts[1]), text, "fallback", now_ms, row_id, sender_id)
            counted[sender_id] = counted.get(sender_id, 0) + 1
            state = rules.SENT
        else:
            state = rules.SKIPPED
            data["reason"] = reason
        yield from execute(
            "UPDATE sms_messages SET state = ?, reason = ?, due_ms = NULL, updated_ms = ?"
            " WHERE id = ?",
            state,
            reason,
            now_ms,
            row_id,
        )
        data["state"] = state
        notices.append(events.Notice([sender_id], EVENT, data, conv_id))
    if counted:
        yield from _count(counted, day)
    sent = yield from events.notify(notices, now_ms)
    return Swept(sent, sum(counted.values()), len(rows))


# ---------------------------------------------------------------- outcomes and replies


def apply_outcome(row_id: int, outbox_state: str, now_ms: int) -> Op[events.Sent]:
    """A message's SMS reached a final state at the SMSC: record it and tell the sender."""
    state = rules.outbox_state(outbox_state)
    row = yield from one(
        "UPDATE sms_messages SET state = ?, updated_ms = ? WHERE id = ? AND state = 'sent'"
        " RETURNING conv_id, seq, sender_id, mode",
        state,
        now_ms,
        row_id,
    )
    if row is None:
        return []
    data = {"conv": int(row[0]), "seq": int(row[1]), "via": str(row[3]), "state": state}
    sent = yield from events.notify(
        [events.Notice([int(row[2])], EVENT, data, int(row[0]))], now_ms
    )
    return sent


def route(phone: str) -> Op[tuple[int, int] | None]:
    """Where a text from ``phone`` goes: (conversation, the number's user) of the thread that
    texted it last; None when no thread ever texted it."""
    row = yield from one(
        "SELECT conv_id, user_id FROM sms_threads WHERE msisdn = ? AND last_ms > 0"
        " ORDER BY last_ms DESC, conv_id DESC LIMIT 1",
        phone,
    )
    return None if row is None else (int(row[0]), int(row[1]))


def set_opt_out(phone: str, stop: bool, now_ms: int, confirmation: str) -> Op[bool]:
    """STOP (``stop``) or START from ``phone``; when that changed anything, queue the one SMS
    that confirms it. Returns whether it changed anything."""
    if stop:
        changed = yield from execute(
            "INSERT INTO sms_optouts (msisdn, created_ms) VALUES (?, ?) ON CONFLICT DO NOTHING",
            phone,
            now_ms,
        )
    else:
        changed = yield from execute("DELETE FROM sms_optouts WHERE msisdn = ?", phone)
    if changed:
        yield from sms.enqueue(phone, confirmation, "optout", now_ms)
    return bool(changed)


# ---------------------------------------------------------------- what a user sees


def states(conv_id: int, low: int, high: int) -> Op[dict[int, str]]:
    """The SMS state of messages ``low..high`` of a conversation that went or wait to go as SMS."""
    rows = yield from all_rows(
        "SELECT seq, state FROM sms_messages WHERE conv_id = ? AND seq >= ? AND seq <= ?",
        conv_id,
        low,
        high,
    )
    return {int(r[0]): str(r[1]) for r in rows}


def threads(sender_id: int) -> Op[list[tuple[int, str, bool, bool, int]]]:
    """The sender's SMS threads, newest first: (conversation, number, joined, opted out,
    last texted)."""
    rows = yield from all_rows(
        "SELECT t.conv_id, t.msisdn, u.placeholder,"
        " (SELECT COUNT(*) FROM sms_optouts o WHERE o.msisdn = t.msisdn), t.last_ms"
        " FROM sms_threads t JOIN users u ON u.id = t.user_id WHERE t.sender_id = ?"
        " ORDER BY t.last_ms DESC, t.conv_id DESC",
        sender_id,
    )
    return [(int(r[0]), str(r[1]), not r[2], bool(r[3]), int(r[4])) for r in rows]


def quota_used(user_id: int, now_ms: int) -> Op[int]:
    used = yield from used_today([user_id], day_of(now_ms), lock=False)
    return used.get(user_id, 0)
