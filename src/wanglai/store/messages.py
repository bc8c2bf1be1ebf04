"""Messages, stored once per conversation under the conversation's sequence numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from wanglai.domain.errors import NotFound
from wanglai.domain.policy import PeerFacts, SendFacts
from wanglai.store import events
from wanglai.store.conversations import peer_facts
from wanglai.store.sql import Op, Row, Values, all_rows, execute, one

MESSAGE_COLUMNS = (
    "conv_id, seq, sender_id, client_id, kind, body, reply_to, created_ms, edited_ms, recalled_ms"
)


@dataclass(frozen=True)
class Appended:
    """A stored message and where it went: ``deliveries`` is (user_id, event seq) per member."""

    message: Row
    deliveries: list[tuple[int, int]]
    duplicate: bool


def by_client_id(sender_id: int, client_id: str) -> Op[Row | None]:
    row = yield from one(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = ? AND client_id = ?",
        sender_id,
        client_id,
    )
    return row


def get(conv_id: int, seq: int) -> Op[Row | None]:
    row = yield from one(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv_id = ? AND seq = ?", conv_id, seq
    )
    return row


def append(
    conv_id: int,
    sender_id: int,
    client_id: str,
    kind: str,
    body: str,
    search_text: str,
    reply_to: int | None,
    media: str | None,
    mentions_all: bool,
    now_ms: int,
    authorize: Callable[[SendFacts], None],
) -> Op[Appended]:
    """Store a message and append a reference to it to every member's log.

    ``authorize`` is the domain rule; it sees the facts read inside this transaction and raises
    to refuse. A second call with the same ``(sender_id, client_id)`` returns the first message.
    """
    existing = yield from by_client_id(sender_id, client_id)
    if existing is not None:
        return Appended(existing, [], True)
    member_rows = yield from all_rows(
        "SELECT c.kind, m.user_id, m.role FROM conversations c"
        " JOIN members m ON m.conv_id = c.id WHERE c.id = ?",
        conv_id,
    )
    role = next((str(r[2]) for r in member_rows if int(r[1]) == sender_id), None)
    conv_kind = str(member_rows[0][0]) if member_rows else "none"
    peer: PeerFacts | None = None
    if role is not None and conv_kind == "direct":
        others = [int(r[1]) for r in member_rows if int(r[1]) != sender_id]
        if others:
            facts = yield from peer_facts(sender_id, others[0])
            if facts is not None:
                peer = PeerFacts(bool(facts[0]), bool(facts[1]), bool(facts[2]), str(facts[3]))
    authorize(SendFacts(conv_kind, role, peer, mentions_all))
    if reply_to is not None:
        target = yield from one(
            "SELECT 1 FROM messages WHERE conv_id = ? AND seq = ?", conv_id, reply_to
        )
        if target is None:
            raise NotFound("reply_target_not_found", "The message you reply to does not exist.")
    seq_row = yield from one(
        "UPDATE conversations SET seq = seq + 1 WHERE id = ? RETURNING seq", conv_id
    )
    assert seq_row is not None
    seq = int(seq_row[0])
    yield from execute(
        "INSERT INTO messages (conv_id, seq, sender_id, client_id, kind, body, search_text,"
        " reply_to, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        conv_id,
        seq,
        sender_id,
        client_id,
        kind,
        body,
        search_text,
        reply_to,
        now_ms,
    )
    if media is not None:
        yield from execute(
            "INSERT INTO media_refs (hash, conv_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            media,
            conv_id,
        )
    recipients = [int(r[1]) for r in member_rows]
    deliveries = yield from events.append(recipients, "message", conv_id, seq, None, now_ms)
    message = (conv_id, seq, sender_id, client_id, kind, body, reply_to, now_ms, None, None)
    return Appended(message, deliveries, False)


def append_system(conv_id: int, body: str, now_ms: int) -> Op[Appended]:
    """A system notice (join, rename …) from the server; sender id 0."""
    seq_row = yield from one(
        "UPDATE conversations SET seq = seq + 1 WHERE id = ? RETURNING seq", conv_id
    )
    assert seq_row is not None
    seq = int(seq_row[0])
    client_id = f"sys-{conv_id}-{seq}"
    yield from execute(
        "INSERT INTO messages (conv_id, seq, sender_id, client_id, kind, body, search_text,"
        " created_ms) VALUES (?, ?, 0, ?, 'system', ?, '', ?)",
        conv_id,
        seq,
        client_id,
        body,
        now_ms,
    )
    member_rows = yield from all_rows("SELECT user_id FROM members WHERE conv_id = ?", conv_id)
    deliveries = yield from events.append(
        [int(r[0]) for r in member_rows], "message", conv_id, seq, None, now_ms
    )
    message = (conv_id, seq, 0, client_id, "system", body, None, now_ms, None, None)
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


def search(user_id: int, needle: str, conv_ids: list[int] | None, limit: int) -> Op[list[Row]]:
    """Messages in the user's conversations whose text contains ``needle`` (case-insensitive)."""
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    scope = " AND m.conv_id = ANY(?)" if conv_ids is not None else ""
    params: list[object] = [user_id, pattern]
    if conv_ids is not None:
        params.append(Values(conv_ids))
    params.append(limit)
    sql = (
        "SELECT m.conv_id, m.seq, m.sender_id, m.client_id, m.kind, m.body, m.reply_to,"
        " m.created_ms, m.edited_ms, m.recalled_ms"
        " FROM members me JOIN messages m ON m.conv_id = me.conv_id AND m.seq > me.from_seq"
        " WHERE me.user_id = ? AND m.recalled_ms IS NULL AND m.search_text {op} ? ESCAPE '\\'"
        + scope
        + " ORDER BY m.created_ms DESC LIMIT ?"
    )
    rows = yield from all_rows(sql.format(op="LIKE"), *params, pg_sql=sql.format(op="ILIKE"))
    return rows
