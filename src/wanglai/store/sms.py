"""The SMS outbox: each SMS is stored (``queued``) in the caller's transaction, claimed for a
while by the sender (``sending``, the claim is a lease in ``next_ms``), marked ``submitted``
with the SMSC's message ids once the SMSC accepted it, and finished (``delivered``/``failed``)
by the delivery receipts matched on those ids; ``rejected`` when the SMSC refused it.

A claim whose lease ran out (the process that held it died) is claimed again: that SMS is
submitted again, which is the only way one SMS can reach the SMSC twice (docs/decisions.md,
Issue 4: the carrier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wanglai.domain import sms_text
from wanglai.store.sql import Op, Row, Values, all_rows, execute, many, one, scalar

QUEUED = "queued"
SENDING = "sending"
SUBMITTED = "submitted"
DELIVERED = "delivered"
FAILED = "failed"
REJECTED = "rejected"
FINAL = (DELIVERED, FAILED, REJECTED)

COLUMNS = (
    "id, msisdn, text, purpose, ref, sender_id, state, smsc_id, parts, attempts, next_ms,"
    " created_ms, submitted_ms, done_ms, error"
)


@dataclass(frozen=True)
class Sms:
    id: int
    msisdn: str
    text: str
    purpose: str
    ref: int | None
    sender_id: int | None
    state: str
    smsc_id: str | None
    parts: int
    attempts: int
    next_ms: int
    created_ms: int
    submitted_ms: int | None
    done_ms: int | None
    error: str | None


def _sms(r: Row) -> Sms:
    return Sms(
        int(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        None if r[4] is None else int(r[4]),
        None if r[5] is None else int(r[5]),
        str(r[6]),
        None if r[7] is None else str(r[7]),
        int(r[8]),
        int(r[9]),
        int(r[10]),
        int(r[11]),
        None if r[12] is None else int(r[12]),
        None if r[13] is None else int(r[13]),
        None if r[14] is None else str(r[14]),
    )


@dataclass(frozen=True)
class Claimed:
    """An SMS handed to the sender: what the channel needs to submit it."""

    id: int
    msisdn: str
    text: str
    attempts: int
    """Including this one; above 1 the SMS may have reached the SMSC before."""


@dataclass(frozen=True)
class Finished:
    """An SMS that reached a final state in this transaction (for ``on_outcome``)."""

    id: int
    purpose: str
    ref: int | None
    msisdn: str
    state: str


def enqueue(
    msisdn: str,
    text: str,
    purpose: str,
    now: int,
    ref: int | None = None,
    sender_id: int | None = None,
) -> Op[int]:
    """Store one SMS to ``msisdn`` (E.164) in the caller's transaction; returns its id.
    After the commit, wake the sender (``SmsService.wake``)."""
    parts = sms_text.count_parts(text)
    new_id = yield from scalar(
        "INSERT INTO sms_outbox (msisdn, text, purpose, ref, sender_id, state, parts, attempts,"
        " next_ms, created_ms) VALUES (?, ?, ?, ?, ?, 'queued', ?, 0, ?, ?) RETURNING id",
        msisdn,
        text,
        purpose,
        ref,
        sender_id,
        parts,
        now,
        now,
    )
    return int(new_id)


def get(sms_id: int) -> Op[Sms | None]:
    row = yield from one(f"SELECT {COLUMNS} FROM sms_outbox WHERE id = ?", sms_id)
    return None if row is None else _sms(row)


def by_ids(ids: Sequence[int]) -> Op[list[Sms]]:
    rows = yield from all_rows(
        f"SELECT {COLUMNS} FROM sms_outbox WHERE id = ANY(?) ORDER BY id", Values(ids)
    )
    return [_sms(r) for r in rows]


def parts_of(sms_id: int) -> Op[list[Row]]:
    """(part, smsc_id, state) of each submitted part, in order."""
    return (
        yield from all_rows(
            "SELECT part, smsc_id, state FROM sms_parts WHERE outbox_id = ? ORDER BY part", sms_id
        )
    )


def count_by_state() -> Op[dict[str, int]]:
    rows = yield from all_rows("SELECT state, COUNT(*) FROM sms_outbox GROUP BY state")
    return {str(r[0]): int(r[1]) for r in rows}


def claim(now: int, lease_ms: int, limit: int) -> Op[list[Claimed]]:
    """Take up to ``limit`` due SMS (queued, or sending with a lapsed lease) for ``lease_ms``.
    On PostgreSQL rows another server is claiming are skipped, not waited for."""
    due = (
        "SELECT id, msisdn, text, attempts FROM sms_outbox"
        " WHERE state IN ('queued', 'sending') AND next_ms <= ? ORDER BY next_ms, id LIMIT ?"
    )
    rows = yield from all_rows(
        due,
        now,
        limit,
        pg_sql=due + " FOR UPDATE SKIP LOCKED",
    )
    if not rows:
        return []
    ids = [int(r[0]) for r in rows]
    yield from execute(
        "UPDATE sms_outbox SET state = 'sending', attempts = attempts + 1, next_ms = ?"
        " WHERE id = ANY(?)",
        now + lease_ms,
        Values(ids),
    )
    return [Claimed(int(r[0]), str(r[1]), str(r[2]), int(r[3]) + 1) for r in rows]


def mark_submitted(results: Sequence[tuple[int, Sequence[str]]], now: int) -> Op[None]:
    """The SMSC accepted each (id, message ids of its parts)."""
    yield from many(
        "UPDATE sms_outbox SET state = 'submitted', smsc_id = ?, parts = ?, submitted_ms = ?,"
        " error = NULL WHERE id = ? AND state = 'sending'",
        [(ids[0], len(ids), now, sms_id) for sms_id, ids in results],
    )
    yield from many(
        "INSERT INTO sms_parts (outbox_id, part, smsc_id, state) VALUES (?, ?, ?, 'submitted')"
        " ON CONFLICT (outbox_id, part) DO UPDATE SET smsc_id = excluded.smsc_id,"
        " state = 'submitted'",
        [(sms_id, i + 1, smsc_id) for sms_id, ids in results for i, smsc_id in enumerate(ids)],
    )


def requeue(items: Sequence[tuple[int, str]], next_ms: int) -> Op[None]:
    """Put claimed SMS back in the queue, due at ``next_ms``, with why (``in_doubt`` when the
    SMSC may have it: the connection was lost before its answer)."""
    yield from many(
        "UPDATE sms_outbox SET state = 'queued', next_ms = ?, error = ?"
        " WHERE id = ? AND state = 'sending'",
        [(next_ms, error, sms_id) for sms_id, error in items],
    )


def finish(items: Sequence[tuple[int, str, str]], now: int) -> Op[list[Finished]]:
    """Give claimed SMS a final state (``rejected`` by the SMSC, ``failed`` after too many
    attempts): each (id, state, error). Returns those that changed."""
    done: list[Finished] = []
    for sms_id, state, error in items:
        row = yield from one(
            "UPDATE sms_outbox SET state = ?, done_ms = ?, error = ?"
            " WHERE id = ? AND state = 'sending' RETURNING id, purpose, ref, msisdn",
            state,
            now,
            error[:64],
            sms_id,
        )
        if row is not None:
            done.append(_finished(row, state))
    return done


def _finished(row: Row, state: str) -> Finished:
    return Finished(
        int(row[0]), str(row[1]), None if row[2] is None else int(row[2]), str(row[3]), state
    )


def apply_receipt(smsc_id: str, delivered: bool, error: str, now: int) -> Op[Finished | None]:
    """A delivery receipt for the part the SMSC knows as ``smsc_id``. The SMS is delivered
    when every part is, failed when one part failed; returns it when it changed state.
    A receipt for an unknown id, or a repeated one, changes nothing."""
    part = yield from one(
        "SELECT outbox_id, part, state FROM sms_parts WHERE smsc_id = ?"
        " ORDER BY outbox_id DESC LIMIT 1",
        smsc_id,
    )
    if part is None:
        return None
    outbox_id, part_no = int(part[0]), int(part[1])
    sms = yield from one(
        "SELECT state, parts FROM sms_outbox WHERE id = ?",
        outbox_id,
        pg_sql="SELECT state, parts FROM sms_outbox WHERE id = ? FOR UPDATE",
    )
    part_now = yield from scalar(  # again, now that the SMS is locked
        "SELECT state FROM sms_parts WHERE outbox_id = ? AND part = ?", outbox_id, part_no
    )
    if sms is None or part_now != SUBMITTED:
        return None
    part_state = DELIVERED if delivered else FAILED
    yield from execute(
        "UPDATE sms_parts SET state = ? WHERE outbox_id = ? AND part = ?",
        part_state,
        outbox_id,
        part_no,
    )
    if str(sms[0]) != SUBMITTED:
        return None
    if delivered:
        done_parts = yield from scalar(
            "SELECT COUNT(*) FROM sms_parts WHERE outbox_id = ? AND state = 'delivered'",
            outbox_id,
        )
        if int(done_parts) < int(sms[1]):
            return None
    row = yield from one(
        "UPDATE sms_outbox SET state = ?, done_ms = ?, error = ? WHERE id = ?"
        " RETURNING id, purpose, ref, msisdn",
        part_state,
        now,
        None if delivered else error[:64],
        outbox_id,
    )
    return None if row is None else _finished(row, part_state)


@dataclass(frozen=True)
class Recorded:
    finished: list[Finished]
    unmatched: list[str]
    """Receipts whose message id is not (yet) known, by that id."""


def record(
    submitted: Sequence[tuple[int, Sequence[str]]],
    requeued: Sequence[tuple[int, str]],
    finished: Sequence[tuple[int, str, str]],
    receipts: Sequence[tuple[str, bool, str]],
    now: int,
) -> Op[Recorded]:
    """What the sender learnt since its last write, in one transaction: accepted submits first,
    so that a receipt that came right behind its submit's answer finds its part."""
    yield from mark_submitted(submitted, now)
    yield from requeue(requeued, now)
    done = yield from finish(finished, now)
    unmatched: list[str] = []
    for smsc_id, delivered, error in receipts:
        known = yield from scalar("SELECT COUNT(*) FROM sms_parts WHERE smsc_id = ?", smsc_id)
        if not int(known):
            unmatched.append(smsc_id)
            continue
        outcome = yield from apply_receipt(smsc_id, delivered, error, now)
        if outcome is not None:
            done.append(outcome)
    return Recorded(done, unmatched)


def has_due(now: int) -> Op[bool]:
    row = yield from one(
        "SELECT 1 FROM sms_outbox WHERE state IN ('queued', 'sending') AND next_ms <= ? LIMIT 1",
        now,
    )
    return row is not None
