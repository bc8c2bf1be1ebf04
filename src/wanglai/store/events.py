"""Each user's event log: append events under the user's next sequence numbers, read them back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from wanglai.store import sequences
from wanglai.store.sql import Op, Row, Values, all_rows, many, scalar

_encode = msgspec.json.Encoder().encode

MESSAGE_KINDS = ("message", "message.edit", "message.recall")


def append(
    user_ids: Sequence[int],
    kind: str,
    conv_id: int | None,
    ref: int | None,
    payload: str | None,
    now_ms: int,
) -> Op[list[tuple[int, int]]]:
    """Append one event to each user's log; returns ``(user_id, seq)`` for each."""
    unique = sorted(set(user_ids))
    if not unique:
        return []
    rows = yield from all_rows(
        "UPDATE users SET seq = seq + 1 WHERE id = ANY(?) RETURNING id, seq", Values(unique)
    )
    seqs = [(int(r[0]), int(r[1])) for r in rows]
    yield from many(
        "INSERT INTO events (user_id, seq, kind, conv_id, ref, payload, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(uid, seq, kind, conv_id, ref, payload, now_ms) for uid, seq in seqs],
    )
    return seqs


@dataclass(frozen=True)
class Notice:
    """One event for the logs of ``user_ids``; ``data`` is stored as the event's JSON payload."""

    user_ids: list[int]
    kind: str
    data: dict[str, Any]
    conv_id: int | None = None


Sent = list[tuple[Notice, list[tuple[int, int]]]]
"""Each notice with its (user_id, seq) deliveries, for the frames sent after the commit."""


def notify(notices: Sequence[Notice], now_ms: int) -> Op[Sent]:
    """Append each notice to its users' logs (set-wise, see ``append_many``)."""
    sent = yield from notify_many(notices, now_ms)
    return sent


@dataclass(frozen=True)
class Spec:
    """One event for the logs of ``user_ids`` (``ref``: the message seq of a message event)."""

    user_ids: Sequence[int]
    kind: str
    conv_id: int | None
    ref: int | None
    payload: str | None


def append_many(specs: Sequence[Spec], now_ms: int) -> Op[list[list[tuple[int, int]]]]:
    """Like ``append`` for many events at once: each user's sequence numbers for all of them
    are taken together (rows locked in id order on PostgreSQL) and the events written in one
    ``executemany``, in the order given. Returns each spec's (user_id, seq) deliveries."""
    counts: dict[int, int] = {}
    for spec in specs:
        for uid in set(spec.user_ids):
            counts[uid] = counts.get(uid, 0) + 1
    seqs = (yield from sequences.take("users", counts)) if counts else {}
    out: list[list[tuple[int, int]]] = []
    rows: list[tuple[object, ...]] = []
    for spec in specs:
        deliveries = []
        for uid in sorted(set(spec.user_ids)):
            if uid not in seqs:
                continue
            seqs[uid] += 1
            deliveries.append((uid, seqs[uid]))
            rows.append((uid, seqs[uid], spec.kind, spec.conv_id, spec.ref, spec.payload, now_ms))
        out.append(deliveries)
    yield from many(
        "INSERT INTO events (user_id, seq, kind, conv_id, ref, payload, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return out


def spec_of(notice: Notice) -> Spec:
    return Spec(notice.user_ids, notice.kind, notice.conv_id, None, _encode(notice.data).decode())


def notify_many(notices: Sequence[Notice], now_ms: int) -> Op[Sent]:
    """``notify`` set-wise (see ``append_many``)."""
    specs = [spec_of(n) for n in notices]
    deliveries = yield from append_many(specs, now_ms)
    return list(zip(notices, deliveries, strict=True))


def head(user_id: int) -> Op[int]:
    """The user's newest sequence number (0 when the log is empty)."""
    value = yield from scalar("SELECT seq FROM users WHERE id = ?", user_id)
    return int(value or 0)


def since(user_id: int, after: int, limit: int) -> Op[list[Row]]:
    """Events after ``after``, oldest first, joined to the message they refer to (if any).

    Columns: seq, kind, conv_id, ref, payload, created_ms, then the message's
    sender_id, client_id, kind, body, reply_to, created_ms, edited_ms, recalled_ms.
    """
    rows = yield from all_rows(
        "SELECT e.seq, e.kind, e.conv_id, e.ref, e.payload, e.created_ms,"
        " m.sender_id, m.client_id, m.kind, m.body, m.reply_to, m.created_ms, m.edited_ms,"
        " m.recalled_ms"
        " FROM events e LEFT JOIN messages m ON e.ref IS NOT NULL"
        " AND m.conv_id = e.conv_id AND m.seq = e.ref"
        " WHERE e.user_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?",
        user_id,
        after,
        limit,
    )
    return rows


def page(user_id: int, after: int, limit: int) -> Op[tuple[list[Row], int]]:
    """A page of events and the log's head, read from one snapshot."""
    rows = yield from since(user_id, after, limit)
    newest = yield from head(user_id)
    return rows, newest
