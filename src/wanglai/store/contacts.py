"""Friendships (stored in both directions), friend requests, blocks and phone-book matching.

Every change here is one transaction that also appends its events to the users' logs. The rules
come from ``domain/contacts.py`` as callbacks; what each event says comes from ``announce``, a
callback of the service, so the store holds the SQL and nothing about how views look.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from wanglai.domain.contacts import ACCEPTED, CANCELLED, PENDING, PairFacts, RequestAction
from wanglai.domain.errors import NotFound
from wanglai.store import events
from wanglai.store.accounts import hits_since, record_hits, users_by_ids
from wanglai.store.events import Notice
from wanglai.store.sql import Op, Row, Values, all_rows, execute, one, scalar

REQUEST_COLUMNS = "id, from_id, to_id, note, state, created_ms, updated_ms"
_USER = "u.id, u.phone, u.name, u.about, u.dm_policy, u.created_ms"
_NOT_BLOCKING = "NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = u.id AND b.blocked_id = ?)"
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Change:
    """What a write did between ``me`` and ``other``.

    ``what`` is one of: requested, existing, accepted, declined, unchanged, removed, blocked,
    unblocked. ``users`` holds both user rows (store.accounts.USER_COLUMNS) by id.
    """

    what: str
    me: int
    other: int
    users: dict[int, Row]
    request: Row | None = None
    since: int | None = None
    """When the block began (``blocked`` and a repeated block)."""


@dataclass
class Outcome:
    change: Change
    sent: list[tuple[Notice, list[tuple[int, int]]]] = field(default_factory=list)
    """Each notice with its (user_id, seq) deliveries, for the frames sent after commit."""


Announce = Callable[[Change], list[Notice]]


def _announce(change: Change, announce: Announce, now_ms: int) -> Op[Outcome]:
    outcome = Outcome(change)
    outcome.sent = yield from events.notify(announce(change), now_ms)
    return outcome


# ---------------------------------------------------------------- facts


def lock_pair(a: int, b: int) -> Op[dict[int, Row]]:
    """Both users' rows, locked in id order on PostgreSQL so that two writes about the same pair
    run one after the other (SQLite has a single writer already)."""
    ids = Values(sorted({a, b}))
    yield from all_rows(
        "SELECT id FROM users WHERE id = ANY(?) ORDER BY id",
        ids,
        pg_sql="SELECT id FROM users WHERE id = ANY(?) ORDER BY id FOR UPDATE",
    )
    rows = yield from users_by_ids(list(ids))
    return {int(r[0]): r for r in rows}


def pair_facts(me: int, other: int) -> Op[PairFacts]:
    row = yield from one(
        "SELECT"
        " (SELECT COUNT(*) FROM users WHERE id = ? AND placeholder = 0),"
        " (SELECT COUNT(*) FROM blocks WHERE user_id = ? AND blocked_id = ?),"
        " (SELECT COUNT(*) FROM blocks WHERE user_id = ? AND blocked_id = ?),"
        " (SELECT COUNT(*) FROM friendships WHERE user_id = ? AND friend_id = ?),"
        " (SELECT MIN(id) FROM friend_requests WHERE from_id = ? AND to_id = ? AND state = ?),"
        " (SELECT MIN(id) FROM friend_requests WHERE from_id = ? AND to_id = ? AND state = ?)",
        other,
        me,
        other,
        other,
        me,
        me,
        other,
        me,
        other,
        PENDING,
        other,
        me,
        PENDING,
    )
    assert row is not None
    return PairFacts(
        exists=bool(row[0]),
        blocked_by_me=bool(row[1]),
        blocked_by_them=bool(row[2]),
        friends=bool(row[3]),
        outgoing=None if row[4] is None else int(row[4]),
        incoming=None if row[5] is None else int(row[5]),
    )


def request_by_id(request_id: int) -> Op[Row | None]:
    row = yield from one(f"SELECT {REQUEST_COLUMNS} FROM friend_requests WHERE id = ?", request_id)
    return row


# ---------------------------------------------------------------- friend requests


def befriend(a: int, b: int, now_ms: int) -> Op[None]:
    """Make ``a`` and ``b`` friends (both directions) and settle requests between them. No
    events: the callers that announce the friendship do so themselves."""
    for x, y in ((a, b), (b, a)):
        yield from execute(
            "INSERT INTO friendships (user_id, friend_id, created_ms) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            x,
            y,
            now_ms,
        )
    # Whatever else was pending between the two is settled by the friendship.
    yield from execute(
        "UPDATE friend_requests SET state = ?, updated_ms = ? WHERE state = ?"
        " AND ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?))",
        ACCEPTED,
        now_ms,
        PENDING,
        a,
        b,
        b,
        a,
    )


def send_request(
    me: int,
    other: int,
    note: str,
    now_ms: int,
    decide: Callable[[PairFacts], RequestAction],
    announce: Announce,
) -> Op[Outcome]:
    """Ask ``other`` to be friends; ``decide`` says whether that creates a request, answers
    with the pending one, or accepts the request ``other`` already sent."""
    users = yield from lock_pair(me, other)
    facts = yield from pair_facts(me, other)
    action = decide(facts)
    if action is RequestAction.EXISTING:
        assert facts.outgoing is not None
        existing = yield from request_by_id(facts.outgoing)
        return Outcome(Change("existing", me, other, users, existing))
    if action is RequestAction.ACCEPT_INCOMING:
        assert facts.incoming is not None
        yield from befriend(me, other, now_ms)
        accepted = yield from request_by_id(facts.incoming)
        change = Change("accepted", me, other, users, accepted)
    else:
        created = yield from one(
            "INSERT INTO friend_requests (from_id, to_id, note, state, created_ms, updated_ms)"
            f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {REQUEST_COLUMNS}",
            me,
            other,
            note,
            PENDING,
            now_ms,
            now_ms,
        )
        change = Change("requested", me, other, users, created)
    outcome = yield from _announce(change, announce, now_ms)
    return outcome


def answer_request(
    me: int,
    request_id: int,
    answer: str,
    now_ms: int,
    decide: Callable[[int | None, str | None], bool],
    announce: Announce,
) -> Op[Outcome]:
    """Accept (``answer='accepted'``) or decline (``'declined'``) a request sent to ``me``.

    ``decide(to_id, state)`` refuses what ``me`` may not answer and says whether anything
    changes; a repeated answer returns the request with ``what='unchanged'`` and no events.
    """
    row = yield from request_by_id(request_id)
    if row is None:
        decide(None, None)
    assert row is not None
    sender = int(row[1])
    users = yield from lock_pair(me, sender)
    row = yield from request_by_id(request_id)  # again, now that the pair is locked
    assert row is not None
    if not decide(int(row[2]), str(row[4])):
        return Outcome(Change("unchanged", me, sender, users, row))
    if answer == ACCEPTED:
        yield from befriend(me, sender, now_ms)
    else:
        yield from execute(
            "UPDATE friend_requests SET state = ?, updated_ms = ? WHERE id = ?",
            answer,
            now_ms,
            request_id,
        )
    updated = yield from request_by_id(request_id)
    outcome = yield from _announce(Change(answer, me, sender, users, updated), announce, now_ms)
    return outcome


def pending_requests(me: int) -> Op[list[Row]]:
    """Pending requests to or from ``me``, oldest first: request columns, then the sender's and
    the recipient's user columns."""
    rows = yield from all_rows(
        "SELECT r.id, r.from_id, r.to_id, r.note, r.state, r.created_ms, r.updated_ms,"
        " s.id, s.phone, s.name, s.about, s.dm_policy, s.created_ms,"
        " t.id, t.phone, t.name, t.about, t.dm_policy, t.created_ms"
        " FROM friend_requests r JOIN users s ON s.id = r.from_id JOIN users t ON t.id = r.to_id"
        " WHERE r.state = ? AND (r.from_id = ? OR r.to_id = ?) ORDER BY r.id",
        PENDING,
        me,
        me,
    )
    return rows


# ---------------------------------------------------------------- friends


def friends(me: int) -> Op[list[Row]]:
    """The user columns of each friend, then the friendship's created_ms; oldest first."""
    rows = yield from all_rows(
        f"SELECT {_USER}, f.created_ms FROM friendships f JOIN users u ON u.id = f.friend_id"
        " WHERE f.user_id = ? ORDER BY f.created_ms, u.id",
        me,
    )
    return rows


def remove_friend(me: int, other: int, now_ms: int, announce: Announce) -> Op[Outcome]:
    users = yield from lock_pair(me, other)
    removed = yield from execute(
        "DELETE FROM friendships WHERE (user_id = ? AND friend_id = ?)"
        " OR (user_id = ? AND friend_id = ?)",
        me,
        other,
        other,
        me,
    )
    if not removed:
        raise NotFound("friend_not_found", "This person is not your friend.")
    outcome = yield from _announce(Change("removed", me, other, users), announce, now_ms)
    return outcome


# ---------------------------------------------------------------- blocks


def block(me: int, other: int, now_ms: int, announce: Announce) -> Op[Outcome]:
    """Block ``other``: their friendship with ``me`` and requests either way end too.

    Blocking someone already blocked changes nothing and announces nothing.
    """
    users = yield from lock_pair(me, other)
    if other not in users:
        raise NotFound("user_not_found", "No such user.")
    added = yield from execute(
        "INSERT INTO blocks (user_id, blocked_id, created_ms) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        me,
        other,
        now_ms,
    )
    if not added:
        since = yield from scalar(
            "SELECT created_ms FROM blocks WHERE user_id = ? AND blocked_id = ?", me, other
        )
        return Outcome(Change("unchanged", me, other, users, since=int(since)))
    yield from execute(
        "DELETE FROM friendships WHERE (user_id = ? AND friend_id = ?)"
        " OR (user_id = ? AND friend_id = ?)",
        me,
        other,
        other,
        me,
    )
    yield from execute(
        "UPDATE friend_requests SET state = ?, updated_ms = ? WHERE state = ?"
        " AND ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?))",
        CANCELLED,
        now_ms,
        PENDING,
        me,
        other,
        other,
        me,
    )
    change = Change("blocked", me, other, users, since=now_ms)
    outcome = yield from _announce(change, announce, now_ms)
    return outcome


def unblock(me: int, other: int, now_ms: int, announce: Announce) -> Op[Outcome]:
    users = yield from lock_pair(me, other)
    removed = yield from execute(
        "DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?", me, other
    )
    if not removed:
        raise NotFound("block_not_found", "You have not blocked this person.")
    outcome = yield from _announce(Change("unblocked", me, other, users), announce, now_ms)
    return outcome


def blocked(me: int) -> Op[list[Row]]:
    """The user columns of each user ``me`` blocked, then the block's created_ms."""
    rows = yield from all_rows(
        f"SELECT {_USER}, b.created_ms FROM blocks b JOIN users u ON u.id = b.blocked_id"
        " WHERE b.user_id = ? ORDER BY b.created_ms, u.id",
        me,
    )
    return rows


# ---------------------------------------------------------------- finding people


def visible(viewer: int, user_id: int) -> Op[bool]:
    """Whether ``user_id`` exists and has not blocked ``viewer``."""
    found = yield from scalar(
        f"SELECT COUNT(*) FROM users u WHERE u.id = ? AND u.placeholder = 0 AND {_NOT_BLOCKING}",
        user_id,
        viewer,
    )
    return bool(found)


def match_phones(viewer: int, phones: list[str]) -> Op[list[Row]]:
    """Users with these E.164 numbers, except ``viewer`` and anyone who blocked ``viewer``."""
    if not phones:
        return []
    rows = yield from all_rows(
        f"SELECT {_USER} FROM users u WHERE u.phone = ANY(?) AND u.id <> ? AND u.placeholder = 0"
        f" AND {_NOT_BLOCKING}"
        " ORDER BY u.id",
        Values(phones),
        viewer,
        viewer,
    )
    return rows


def spend_hit(
    bucket: str, now_ms: int, window_ms: int, check: Callable[[list[int]], None]
) -> Op[None]:
    """Record one hit in ``bucket`` unless ``check`` (seeing the hits in the window) refuses."""
    seen = yield from hits_since([bucket], now_ms - window_ms)
    check(seen[bucket])
    yield from record_hits([bucket], now_ms, now_ms - window_ms)
