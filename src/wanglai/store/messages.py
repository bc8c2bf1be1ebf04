"""Messages, stored once per conversation under the conversation's sequence numbers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from wanglai.domain.errors import NotFound, WanglaiError
from wanglai.domain.interworking import SmsPlan, check_fallback
from wanglai.domain.policy import SendFacts
from wanglai.store import events, interworking, sequences
from wanglai.store.conversations import peer_facts
from wanglai.store.sql import (
    Op,
    Row,
    Values,
    Wire,
    all_rows,
    batched,
    execute,
    many,
    one,
    portable,
    scalar,
)

MESSAGE_COLUMNS = (
    "conv_id, seq, sender_id, client_id, kind, body, reply_to, created_ms, edited_ms, recalled_ms"
)


@dataclass(frozen=True)
class Appended:
    """A stored message and where it went: ``deliveries`` is (user_id, event seq) per member."""

    message: Row
    deliveries: list[tuple[int, int]]
    duplicate: bool
    texted: bool = False
    """The message went into the SMS outbox (to a number not on Wanglai): wake its sender."""


def _by_client_ids(keys: list[tuple[int, str]]) -> Op[list[Row]]:
    """Messages already stored under any of these (sender_id, client_id) keys."""
    columns = ", ".join(f"m.{c}" for c in MESSAGE_COLUMNS.split(", "))
    rows = yield from all_rows(
        f"WITH v(s, c) AS (VALUES {', '.join(['(?, ?)'] * len(keys))})"
        f" SELECT {columns} FROM v JOIN messages m ON m.sender_id = v.s AND m.client_id = v.c",
        *[x for key in keys for x in key],
        pg_sql=f"SELECT {columns} FROM unnest(?::bigint[], ?::text[]) AS v(s, c)"
        " JOIN messages m ON m.sender_id = v.s AND m.client_id = v.c",
        pg_params=[[s for s, _ in keys], [c for _, c in keys]],
    )
    return rows


def get(conv_id: int, seq: int) -> Op[Row | None]:
    row = yield from one(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv_id = ? AND seq = ?", conv_id, seq
    )
    return row


@dataclass(frozen=True)
class NewMessage:
    """One message to store; ``authorize`` is the domain rule, given facts read in the write."""

    conv_id: int
    sender_id: int
    client_id: str
    kind: str
    body: str
    search_text: str
    reply_to: int | None
    media: str | None
    mentions_all: bool
    now_ms: int
    authorize: Callable[[SendFacts], None]
    mentions: tuple[int, ...] = ()
    sms: SmsPlan | None = None
    """What the sender may spend on SMS (a shared object): the daily quota for a message to a
    number not on Wanglai and, when set there, the time after which it falls back to SMS."""


def append(item: NewMessage) -> Op[Appended]:
    """Store one message; see :func:`append_many`. Raises the domain error that refused it."""
    [outcome] = yield from append_many([item])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def append_many(items: list[NewMessage]) -> Op[list[Appended | WanglaiError]]:
    """Store messages and append a reference to each to every member's log, set-wise.

    The group-commit writer hands a whole batch of sends to this function, so the cost in
    statements is per batch, not per message. Each item gets its own outcome: the stored
    message (or, for a repeated ``(sender_id, client_id)``, the first one, marked duplicate), or
    the error its ``authorize`` rule raised — one refused message does not fail the others.
    Sequence numbers are taken with row locks on PostgreSQL (``FOR UPDATE``, in id order);
    SQLite has a single writer.
    """
    outcomes: list[Appended | WanglaiError | None] = [None] * len(items)
    # 1. retries: a client id seen before answers with the first message
    wanted = sorted({(it.sender_id, it.client_id) for it in items})
    known = yield from _by_client_ids(wanted)
    first: dict[tuple[int, str], Row] = {(int(r[2]), str(r[3])): r for r in known}
    # 2. conversations, members and, for direct chats, what lies between the two people
    conv_ids = sorted({it.conv_id for it in items})
    member_rows = yield from all_rows(
        "SELECT c.id, c.kind, m.user_id, m.role FROM conversations c"
        " JOIN members m ON m.conv_id = c.id WHERE c.id = ANY(?)",
        Values(conv_ids),
    )
    kinds: dict[int, str] = {}
    roles: dict[int, dict[int, str]] = {}
    for conv_id, kind, user_id, role in member_rows:
        kinds[int(conv_id)] = str(kind)
        roles.setdefault(int(conv_id), {})[int(user_id)] = str(role)
    pairs = {
        (it.sender_id, other)
        for it in items
        if kinds.get(it.conv_id) == "direct" and it.sender_id in roles[it.conv_id]
        for other in roles[it.conv_id]
        if other != it.sender_id
    }
    peers = yield from peer_facts(pairs)
    # messages to numbers not on Wanglai (placeholders) go out as SMS: their facts, if any
    texting = {pair for pair, facts in peers.items() if facts.placeholder}
    relay = (yield from interworking.relay(texting, items[0].now_ms)) if texting else None
    replies = {(it.conv_id, it.reply_to) for it in items if it.reply_to is not None}
    found_replies: set[tuple[int, int]] = set()
    if replies:
        rows = yield from all_rows(
            "SELECT conv_id, seq FROM messages WHERE conv_id = ANY(?) AND seq = ANY(?)",
            Values(sorted({c for c, _ in replies})),
            Values(sorted({s for _, s in replies if s is not None})),
        )
        found_replies = {(int(r[0]), int(r[1])) for r in rows}
    # 3. decide each message in order, numbering the accepted ones (a reply may point at a
    #    message earlier in this same batch)
    conv_before = yield from sequences.read("conversations", [c for c in conv_ids if c in kinds])
    conv_seq = dict(conv_before)
    assigned: dict[int, int] = {}
    accepted: list[int] = []
    in_batch: dict[tuple[int, str], int] = {}
    sms_to: dict[int, tuple[int, bool]] = {}  # index -> (recipient, as a fallback)
    for index, it in enumerate(items):
        key = (it.sender_id, it.client_id)
        if key in first:
            outcomes[index] = Appended(first[key], [], True)
            continue
        if key in in_batch:
            continue  # answered below with the first of the two
        members = roles.get(it.conv_id, {})
        role = members.get(it.sender_id)
        peer = None
        other: list[int] = []
        if kinds.get(it.conv_id) == "direct":
            other = [u for u in members if u != it.sender_id]
            peer = peers.get((it.sender_id, other[0])) if other else None
        try:
            outsiders = bool(it.mentions) and not roles.get(it.conv_id, {}).keys() >= set(
                it.mentions
            )
            facts = SendFacts(kinds.get(it.conv_id, "none"), role, peer, it.mentions_all, outsiders)
            it.authorize(facts)
            if it.reply_to is not None and (it.conv_id, it.reply_to) not in found_replies:
                raise NotFound("reply_target_not_found", "The message you reply to does not exist.")
            if peer is not None and peer.placeholder:
                assert relay is not None
                relay.admit(it.sender_id, other[0], it.sms)
                sms_to[index] = (other[0], False)
            elif it.sms is not None and it.sms.fallback_after_ms:
                check_fallback(kinds.get(it.conv_id, "none"))
                if other:
                    sms_to[index] = (other[0], True)
        except WanglaiError as exc:
            outcomes[index] = exc
            continue
        in_batch[key] = index
        accepted.append(index)
        conv_seq[it.conv_id] += 1
        assigned[index] = conv_seq[it.conv_id]
        found_replies.add((it.conv_id, conv_seq[it.conv_id]))
    if accepted:
        # 4. sequence numbers: conversations, then every member's log
        yield from sequences.write(
            "conversations", {c: n for c, n in conv_seq.items() if n != conv_before[c]}
        )
        per_user: dict[int, int] = {}
        for index in accepted:
            for user_id in roles[items[index].conv_id]:
                per_user[user_id] = per_user.get(user_id, 0) + 1
        user_seq = yield from sequences.take("users", per_user)
        message_rows: list[tuple[object, ...]] = []
        event_rows: list[tuple[object, ...]] = []
        fallbacks: list[tuple[int, int, int, int, int]] = []
        media_rows: dict[tuple[str, int], int] = {}
        for index in accepted:
            it = items[index]
            seq = assigned[index]
            message_rows.append(
                (
                    it.conv_id,
                    seq,
                    it.sender_id,
                    it.client_id,
                    it.kind,
                    it.body,
                    it.search_text,
                    it.reply_to,
                    it.now_ms,
                )
            )
            deliveries = []
            for user_id in roles[it.conv_id]:
                user_seq[user_id] += 1
                deliveries.append((user_id, user_seq[user_id]))
                event_rows.append(
                    (user_id, user_seq[user_id], "message", it.conv_id, seq, None, it.now_ms)
                )
            if it.media is not None:
                media_rows[(it.media, it.conv_id)] = seq
            outcomes[index] = Appended(_row(it, seq), deliveries, False, index in sms_to)
            if index in sms_to:
                recipient, fallback = sms_to[index]
                if not fallback:
                    assert relay is not None
                    relay.add(it.conv_id, seq, it.sender_id, recipient, it.kind, it.body)
                else:
                    assert it.sms is not None
                    due = it.now_ms + it.sms.fallback_after_ms
                    fallbacks.append((it.conv_id, seq, it.sender_id, recipient, due))
        yield from many(
            "INSERT INTO messages (conv_id, seq, sender_id, client_id, kind, body, search_text,"
            " reply_to, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            message_rows,
        )
        yield from many(
            "INSERT INTO events (user_id, seq, kind, conv_id, ref, payload, created_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            event_rows,
        )
        yield from many(
            "INSERT INTO media_refs (hash, conv_id, seq) VALUES (?, ?, ?)"
            " ON CONFLICT (hash, conv_id) DO UPDATE SET seq = excluded.seq",
            [(digest, conv, seq) for (digest, conv), seq in sorted(media_rows.items())],
        )
        if relay is not None:
            yield from interworking.write_relay(relay, items[0].now_ms)
        if fallbacks:
            yield from interworking.add_fallbacks(fallbacks, items[0].now_ms)
    for index, it in enumerate(items):
        if outcomes[index] is None:  # the second of two identical sends in one batch
            stored = outcomes[in_batch[(it.sender_id, it.client_id)]]
            assert isinstance(stored, Appended)
            outcomes[index] = Appended(stored.message, [], True)
    return [o for o in outcomes if o is not None]


def _row(it: NewMessage, seq: int) -> Row:
    """The stored row of a new message, as ``MESSAGE_COLUMNS`` reads it back."""
    return (
        it.conv_id,
        seq,
        it.sender_id,
        it.client_id,
        it.kind,
        it.body,
        it.reply_to,
        it.now_ms,
        None,
        None,
    )


_fields = attrgetter(*(f.name for f in fields(NewMessage)))


def _pack_result(appended: Appended) -> object:
    """A new message goes back as its seq and deliveries (the sender has the rest); a
    duplicate as itself."""
    if appended.duplicate:
        return appended
    return (int(appended.message[1]), appended.deliveries, appended.texted)


def _unpack_result(args: tuple[Any, ...], packed: Any) -> Appended:
    if isinstance(packed, Appended):
        return packed
    seq, deliveries, texted = packed
    return Appended(_row(args[0], seq), deliveries, False, texted)


batched(
    append,
    append_many,
    Wire(
        pack_args=lambda args: _fields(args[0]),
        unpack_args=lambda data: (NewMessage(*data),),
        pack_result=_pack_result,
        unpack_result=_unpack_result,
    ),
)


@dataclass(frozen=True)
class Card:
    """A card the server writes for a use case, and the notices that go before its own
    event in the logs (a transfer's movements before the transfer's card)."""

    conv_id: int
    sender_id: int
    kind: str
    body: str
    members: Sequence[int]
    before: Sequence[events.Notice]
    at: int


def append_cards(cards: Sequence[Card], now_ms: int) -> Op[list[tuple[Appended, events.Sent]]]:
    """``append_card`` set-wise for a batch: one seq per card in its conversation, every message
    in one ``executemany``, and every event in one ``events.append_many`` — each card's notices
    first, then its message event. Returns each card's message and its notices' deliveries."""
    per_conv: dict[int, int] = {}
    for card in cards:
        per_conv[card.conv_id] = per_conv.get(card.conv_id, 0) + 1
    conv_seq = yield from sequences.take("conversations", per_conv)
    rows: list[tuple[object, ...]] = []
    specs: list[events.Spec] = []
    for card in cards:
        conv_seq[card.conv_id] += 1
        seq = conv_seq[card.conv_id]
        rows.append(
            (
                card.conv_id,
                seq,
                card.sender_id,
                f"sys-{card.conv_id}-{seq}",
                card.kind,
                card.body,
                card.at,
            )
        )
        specs.extend(events.spec_of(n) for n in card.before)
        specs.append(events.Spec(card.members, "message", card.conv_id, seq, None))
    yield from many(
        "INSERT INTO messages (conv_id, seq, sender_id, client_id, kind, body, search_text,"
        " created_ms) VALUES (?, ?, ?, ?, ?, ?, '', ?)",
        rows,
    )
    deliveries = yield from events.append_many(specs, now_ms)
    out: list[tuple[Appended, events.Sent]] = []
    at = 0
    for card, row in zip(cards, rows, strict=True):
        sent: events.Sent = []
        for notice in card.before:
            sent.append((notice, deliveries[at]))
            at += 1
        message = (*row[:6], None, row[6], None, None)
        out.append((Appended(message, deliveries[at], False), sent))
        at += 1
    return out


def append_system(conv_id: int, body: str, now_ms: int) -> Op[Appended]:
    """A system notice (join, rename …) from the server; sender id 0."""
    appended = yield from append_card(conv_id, 0, "system", body, now_ms)
    return appended


def append_card(conv_id: int, sender_id: int, kind: str, body: str, now_ms: int) -> Op[Appended]:
    """A message the server writes on someone's behalf: a system notice (sender 0), or the card
    of a transfer or red packet a use case has just made (kinds users cannot send)."""
    seq_row = yield from one(
        "UPDATE conversations SET seq = seq + 1 WHERE id = ? RETURNING seq", conv_id
    )
    assert seq_row is not None
    seq = int(seq_row[0])
    client_id = f"sys-{conv_id}-{seq}"
    yield from execute(
        "INSERT INTO messages (conv_id, seq, sender_id, client_id, kind, body, search_text,"
        " created_ms) VALUES (?, ?, ?, ?, ?, ?, '', ?)",
        conv_id,
        seq,
        sender_id,
        client_id,
        kind,
        body,
        now_ms,
    )
    member_rows = yield from all_rows("SELECT user_id FROM members WHERE conv_id = ?", conv_id)
    deliveries = yield from events.append(
        [int(r[0]) for r in member_rows], "message", conv_id, seq, None, now_ms
    )
    message = (conv_id, seq, sender_id, client_id, kind, body, None, now_ms, None, None)
    return Appended(message, deliveries, False)


def change(
    conv_id: int,
    seq: int,
    actor_id: int,
    kind: str,
    body: str | None,
    search_text: str | None,
    now_ms: int,
    authorize: Callable[[Row, str | None], None],
) -> Op[Appended]:
    """Edit (``kind='message.edit'``) or recall (``'message.recall'``) a stored message.

    ``authorize(message, actor_role)`` is the domain rule and raises to refuse; the actor's role
    is None when they are not a member. Every member gets an event pointing at the message.
    """
    role = yield from one(
        "SELECT role FROM members WHERE conv_id = ? AND user_id = ?", conv_id, actor_id
    )
    message = None
    if role is not None:
        message = yield from get(conv_id, seq)
    if message is None:
        raise NotFound("message_not_found", "No such message.")
    authorize(message, str(role[0]) if role is not None else None)
    if kind == "message.edit":
        yield from execute(
            "UPDATE messages SET body = ?, search_text = ?, edited_ms = ? WHERE conv_id = ?"
            " AND seq = ?",
            body,
            search_text,
            now_ms,
            conv_id,
            seq,
        )
    else:
        yield from execute(
            "UPDATE messages SET body = '{}', search_text = '', recalled_ms = ?"
            " WHERE conv_id = ? AND seq = ?",
            now_ms,
            conv_id,
            seq,
        )
    member_rows = yield from all_rows("SELECT user_id FROM members WHERE conv_id = ?", conv_id)
    deliveries = yield from events.append(
        [int(r[0]) for r in member_rows], kind, conv_id, seq, None, now_ms
    )
    updated = yield from get(conv_id, seq)
    assert updated is not None
    return Appended(updated, deliveries, False)


def history(conv_id: int, before: int, limit: int, from_seq: int) -> Op[list[Row]]:
    """Up to ``limit`` messages with seq < ``before`` (newest first), none before ``from_seq``."""
    rows = yield from all_rows(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv_id = ? AND seq < ? AND seq > ?"
        " ORDER BY seq DESC LIMIT ?",
        conv_id,
        before,
        from_seq,
        limit,
    )
    return rows


SEARCH_INDEX_MIN = 3
"""Needles this long use the trigram index; shorter ones (1-2 characters) scan with LIKE."""

_SEARCH_COLUMNS = (
    "m.conv_id, m.seq, m.sender_id, m.client_id, m.kind, m.body, m.reply_to,"
    " m.created_ms, m.edited_ms, m.recalled_ms"
)


def search(user_id: int, needle: str, conv_ids: list[int] | None, limit: int) -> Op[list[Row]]:
    """Messages in the user's conversations whose current text contains ``needle``, newest first.

    Case-insensitive substring matching, so it works for Chinese, which has no spaces between
    words; ``%`` and ``_`` are literal. Only messages after the member's ``from_seq``; recalls
    empty ``search_text`` and edits replace it, so neither old text is found. Needles of
    ``SEARCH_INDEX_MIN`` characters or more use the index: SQLite's FTS5 table ``messages_fts``
    (trigram tokenizer, kept in sync by triggers; see the migration) and, on PostgreSQL, the
    pg_trgm GIN index under the same ILIKE that shorter needles use.
    """
    tail: list[object] = []
    scope = ""
    if conv_ids is not None:
        scope = " AND m.conv_id = ANY(?)"
        tail.append(Values(conv_ids))
    tail.append(limit)
    rest = " AND m.recalled_ms IS NULL" + scope + " ORDER BY m.created_ms DESC, m.id DESC LIMIT ?"
    in_my_conversations = (
        f"SELECT {_SEARCH_COLUMNS} FROM members me"
        " JOIN messages m ON m.conv_id = me.conv_id AND m.seq > me.from_seq WHERE me.user_id = ?"
    )
    if len(needle) >= SEARCH_INDEX_MIN:
        # The needle is quoted in SQL for each dialect: an FTS5 phrase (a quoted string, in
        # which nothing is an operator) or an escaped ILIKE pattern. SQLite reads the index, plus
        # the newest messages the background job has not indexed yet (driven from messages by
        # id, so that part costs what is unindexed, not the user's whole history).
        pattern = _like_pattern(needle)
        filters = " AND m.recalled_ms IS NULL AND m.seq > me.from_seq" + scope
        sqlite = (
            f"SELECT * FROM (SELECT {_SEARCH_COLUMNS}, m.id AS mid FROM messages_fts"
            " JOIN messages m ON m.id = messages_fts.rowid"
            " JOIN members me ON me.conv_id = m.conv_id AND me.user_id = ?"
            " WHERE messages_fts MATCH '\"' || replace(?, '\"', '\"\"') || '\"'"
            + filters
            + f" UNION ALL SELECT {_SEARCH_COLUMNS}, m.id FROM messages m"
            " CROSS JOIN members me ON me.conv_id = m.conv_id AND me.user_id = ?"
            " WHERE m.id > (SELECT indexed_id FROM messages_fts_progress)"
            " AND m.search_text LIKE ? ESCAPE '\\'"
            + filters
            + ") ORDER BY created_ms DESC, mid DESC LIMIT ?"
        )
        postgres = (
            in_my_conversations + " AND m.search_text ILIKE '%' ||"
            " replace(replace(replace(?, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'" + rest
        )
        scoped = tail[:-1]
        rows = yield from all_rows(
            sqlite,
            user_id,
            needle,
            *scoped,
            user_id,
            pattern,
            *scoped,
            limit,
            pg_sql=postgres,
            pg_params=[user_id, needle, *tail],
        )
        return rows
    pattern = _like_pattern(needle)
    like = in_my_conversations + " AND m.search_text {op} ? ESCAPE '\\'" + rest
    rows = yield from all_rows(
        like.format(op="LIKE"), user_id, pattern, *tail, pg_sql=like.format(op="ILIKE")
    )
    return rows


def _like_pattern(needle: str) -> str:
    """``needle`` as a LIKE pattern matching it anywhere, with ``\\`` escaping ``%`` and ``_``."""
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def index_search(limit: int) -> Op[int]:
    """SQLite only: add up to ``limit`` not yet indexed messages to the search index, in one
    statement; returns how many. The app runs it in the background, so sends never wait on it.
    """
    done = yield from scalar("SELECT indexed_id FROM messages_fts_progress WHERE id = 1")
    top = yield from scalar(
        "SELECT MAX(id) FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)",
        done,
        limit,
    )
    if top is None:
        return 0
    count = yield from execute(
        "INSERT INTO messages_fts (rowid, search_text)"
        " SELECT id, search_text FROM messages WHERE id > ? AND id <= ?",
        done,
        top,
    )
    yield from execute("UPDATE messages_fts_progress SET indexed_id = ? WHERE id = 1", top)
    return count


portable(index_search)
