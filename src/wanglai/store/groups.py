"""Group conversations: members and roles, settings, join requests, and their notices.

Each change is one write transaction that first locks the group's row, so concurrent changes to
one group run one after the other (the member limit holds under concurrent invites on both
databases). The transaction also appends the system notice and any data events; what it appended
comes back in an :class:`Outcome` for the service to publish once it is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from wanglai.domain import groups as rules
from wanglai.domain.errors import Conflict, NotFound
from wanglai.store import events, messages
from wanglai.store.messages import Appended
from wanglai.store.sql import Op, Row, Values, all_rows, execute, many, one, scalar

_encode = msgspec.json.Encoder().encode

GROUP_COLUMNS = "id, kind, title, announcement, owner_id, approval_required, seq, created_ms"
REQUEST_COLUMNS = "id, conv_id, user_id, inviter_id, state, created_ms"
UPDATED = "conversation.updated"
REQUEST_EVENT = "group.request"


@dataclass(frozen=True)
class DataEvent:
    kind: str
    conv_id: int
    data: dict[str, Any]
    deliveries: list[tuple[int, int]]


@dataclass
class Outcome:
    """What a committed change appended: notices (messages) and data events, plus a result.

    Made fresh inside each transaction: the writer may run a function twice (alone, after a
    failed batch), and only the committed run's outcome reaches the caller.
    """

    notices: list[Appended] = field(default_factory=list)
    events: list[DataEvent] = field(default_factory=list)
    value: Any = None


# ---------------------------------------------------------------- building blocks


def _notice(out: Outcome, conv_id: int, body: dict[str, Any], now_ms: int) -> Op[None]:
    appended = yield from messages.append_system(conv_id, _encode(body).decode(), now_ms)
    out.notices.append(appended)


def _event(
    out: Outcome, user_ids: list[int], kind: str, conv_id: int, data: dict[str, Any], now_ms: int
) -> Op[None]:
    deliveries = yield from events.append(
        user_ids, kind, conv_id, None, _encode(data).decode(), now_ms
    )
    out.events.append(DataEvent(kind, conv_id, data, deliveries))


def _lock(conv_id: int) -> Op[Row | None]:
    """The group's row, locked until commit on PostgreSQL (SQLite has one writer anyway)."""
    sql = f"SELECT {GROUP_COLUMNS} FROM conversations WHERE id = ? AND kind = 'group'"
    row = yield from one(sql, conv_id, pg_sql=sql + " FOR UPDATE")
    return row


def _role(conv_id: int, user_id: int) -> Op[str | None]:
    value = yield from scalar(
        "SELECT role FROM members WHERE conv_id = ? AND user_id = ?", conv_id, user_id
    )
    return None if value is None else str(value)


def _enter(conv_id: int, actor_id: int) -> Op[tuple[Row, str]]:
    """Lock the group and return it with the actor's role; outsiders learn nothing (404)."""
    conv = yield from _lock(conv_id)
    role = None if conv is None else (yield from _role(conv_id, actor_id))
    if conv is None or role is None:
        raise NotFound("group_not_found", "No such group.")
    return conv, role


def _target_role(conv_id: int, user_id: int) -> Op[str]:
    role = yield from _role(conv_id, user_id)
    if role is None:
        raise NotFound("member_not_found", "This user is not a member of the group.")
    return role


def _count(conv_id: int) -> Op[int]:
    value = yield from scalar("SELECT COUNT(*) FROM members WHERE conv_id = ?", conv_id)
    return int(value)


def _seq(conv_id: int) -> Op[int]:
    value = yield from scalar("SELECT seq FROM conversations WHERE id = ?", conv_id)
    return int(value)


def _friends_among(user_id: int, candidates: list[int]) -> Op[set[int]]:
    if not candidates:
        return set()
    rows = yield from all_rows(
        "SELECT friend_id FROM friendships WHERE user_id = ? AND friend_id = ANY(?)",
        user_id,
        Values(candidates),
    )
    return {int(r[0]) for r in rows}


def _members_among(conv_id: int, candidates: list[int]) -> Op[set[int]]:
    rows = yield from all_rows(
        "SELECT user_id FROM members WHERE conv_id = ? AND user_id = ANY(?)",
        conv_id,
        Values(candidates),
    )
    return {int(r[0]) for r in rows}


def _managers(conv_id: int) -> Op[list[int]]:
    rows = yield from all_rows(
        "SELECT user_id FROM members WHERE conv_id = ? AND role <> 'member'", conv_id
    )
    return [int(r[0]) for r in rows]


def _add(
    out: Outcome,
    conv_id: int,
    user_ids: list[int],
    by: int,
    now_ms: int,
    extra: dict[str, Any] | None = None,
) -> Op[None]:
    """Make users members from now on: they see history from their join notice on."""
    if not user_ids:
        return
    seq = yield from _seq(conv_id)
    yield from many(
        "INSERT INTO members (conv_id, user_id, role, joined_ms, from_seq, read_seq, muted)"
        " VALUES (?, ?, 'member', ?, ?, ?, 0)",
        [(conv_id, uid, now_ms, seq, seq) for uid in user_ids],
    )
    # A request for someone who is now in the group has nothing left to decide.
    yield from execute(
        "UPDATE join_requests SET state = 'approved' WHERE conv_id = ? AND state = 'pending'"
        " AND user_id = ANY(?)",
        conv_id,
        Values(user_ids),
    )
    body: dict[str, Any] = {"notice": "joined", "users": user_ids, "by": by}
    yield from _notice(out, conv_id, body | (extra or {}), now_ms)


def _drop(conv_id: int, user_id: int) -> Op[None]:
    yield from execute("DELETE FROM members WHERE conv_id = ? AND user_id = ?", conv_id, user_id)


def _set_role(conv_id: int, user_id: int, role: str) -> Op[None]:
    yield from execute(
        "UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?", role, conv_id, user_id
    )


# ---------------------------------------------------------------- reads


def details(conv_id: int, user_id: int) -> Op[tuple[Row, Row, list[Row]] | None]:
    """The group, the caller's (role, muted) and every member (user_id, name, role, joined_ms);
    None unless the caller is a member."""
    conv = yield from one(
        f"SELECT {GROUP_COLUMNS} FROM conversations WHERE id = ? AND kind = 'group'", conv_id
    )
    if conv is None:
        return None
    me = yield from one(
        "SELECT role, muted FROM members WHERE conv_id = ? AND user_id = ?", conv_id, user_id
    )
    if me is None:
        return None
    rows = yield from all_rows(
        "SELECT m.user_id, u.name, m.role, m.joined_ms FROM members m"
        " JOIN users u ON u.id = m.user_id WHERE m.conv_id = ?"
        " ORDER BY m.joined_ms, m.from_seq, m.user_id",
        conv_id,
    )
    return conv, me, rows


def pending_requests(conv_id: int, actor_id: int) -> Op[list[Row]]:
    """Join requests awaiting a decision, oldest first; for the owner and admins."""
    conv = yield from one("SELECT id FROM conversations WHERE id = ? AND kind = 'group'", conv_id)
    role = None if conv is None else (yield from _role(conv_id, actor_id))
    if role is None:
        raise NotFound("group_not_found", "No such group.")
    rules.check_manage(role)
    rows = yield from all_rows(
        f"SELECT {REQUEST_COLUMNS} FROM join_requests WHERE conv_id = ? AND state = 'pending'"
        " ORDER BY id",
        conv_id,
    )
    return rows


# ---------------------------------------------------------------- writes


def create(owner_id: int, title: str, member_ids: list[int], now_ms: int) -> Op[Outcome]:
    """A new group owned by ``owner_id`` with the owner's friends ``member_ids``;
    ``value`` is its id."""
    out = Outcome()
    others = [uid for uid in member_ids if uid != owner_id]
    rules.check_capacity(1, len(others))
    friends = yield from _friends_among(owner_id, others)
    rules.check_friends(others, friends)
    row = yield from one(
        "INSERT INTO conversations (kind, title, announcement, owner_id, approval_required,"
        " seq, created_ms) VALUES ('group', ?, '', ?, 0, 0, ?) RETURNING id",
        title,
        owner_id,
        now_ms,
    )
    assert row is not None
    conv_id = int(row[0])
    yield from many(
        "INSERT INTO members (conv_id, user_id, role, joined_ms, from_seq, read_seq, muted)"
        " VALUES (?, ?, ?, ?, 0, 0, 0)",
        [(conv_id, owner_id, "owner", now_ms)]
        + [(conv_id, uid, "member", now_ms) for uid in others],
    )
    body = {"notice": "created", "title": title, "users": [owner_id, *others], "by": owner_id}
    yield from _notice(out, conv_id, body, now_ms)
    out.value = conv_id
    return out


def invite(conv_id: int, actor_id: int, user_ids: list[int], now_ms: int) -> Op[Outcome]:
    """Add the actor's friends, or ask the admins when the group wants approval.

    ``value`` is ``(added user ids, new join-request rows)``. People already in the group, or
    already waiting for approval, are skipped.
    """
    out = Outcome()
    conv, role = yield from _enter(conv_id, actor_id)
    present = yield from _members_among(conv_id, user_ids)
    newcomers = [uid for uid in user_ids if uid not in present]
    friends = yield from _friends_among(actor_id, newcomers)
    rules.check_friends(newcomers, friends)
    count = yield from _count(conv_id)
    if not rules.needs_approval(role, bool(conv[5])):
        rules.check_capacity(count, len(newcomers))
        yield from _add(out, conv_id, newcomers, actor_id, now_ms)
        out.value = (newcomers, [])
        return out
    waiting: set[int] = set()
    if newcomers:
        rows = yield from all_rows(
            "SELECT user_id FROM join_requests WHERE conv_id = ? AND state = 'pending'"
            " AND user_id = ANY(?)",
            conv_id,
            Values(newcomers),
        )
        waiting = {int(r[0]) for r in rows}
    asked = [uid for uid in newcomers if uid not in waiting]
    rules.check_capacity(count, len(asked))
    created: list[Row] = []
    managers = yield from _managers(conv_id)
    for uid in asked:
        row = yield from one(
            "INSERT INTO join_requests (conv_id, user_id, inviter_id, state, created_ms)"
            f" VALUES (?, ?, ?, 'pending', ?) RETURNING {REQUEST_COLUMNS}",
            conv_id,
            uid,
            actor_id,
            now_ms,
        )
        assert row is not None
        created.append(row)
        data = {
            "conv": conv_id,
            "request": int(row[0]),
            "user": uid,
            "inviter": actor_id,
            "state": "pending",
        }
        yield from _event(out, managers, REQUEST_EVENT, conv_id, data, now_ms)
    out.value = ([], created)
    return out


def decide(conv_id: int, actor_id: int, request_id: int, approve: bool, now_ms: int) -> Op[Outcome]:
    """Approve (the user joins) or reject a pending join request; ``value`` is its row."""
    out = Outcome()
    _conv, role = yield from _enter(conv_id, actor_id)
    rules.check_manage(role)
    request = yield from one(
        f"SELECT {REQUEST_COLUMNS} FROM join_requests WHERE id = ? AND conv_id = ?",
        request_id,
        conv_id,
    )
    if request is None:
        raise NotFound("request_not_found", "No such join request.")
    if str(request[4]) != "pending":
        raise Conflict("request_decided", f"This request was already {request[4]}.")
    user_id, inviter_id = int(request[2]), int(request[3])
    state = "approved" if approve else "rejected"
    if approve:
        present = yield from _role(conv_id, user_id)
        if present is None:
            rules.check_capacity((yield from _count(conv_id)), 1)
            yield from _add(out, conv_id, [user_id], actor_id, now_ms, {"invited_by": inviter_id})
    yield from execute("UPDATE join_requests SET state = ? WHERE id = ?", state, request_id)
    managers = yield from _managers(conv_id)
    data = {
        "conv": conv_id,
        "request": request_id,
        "user": user_id,
        "inviter": inviter_id,
        "state": state,
        "by": actor_id,
    }
    yield from _event(out, managers, REQUEST_EVENT, conv_id, data, now_ms)
    out.value = (request_id, conv_id, user_id, inviter_id, state, int(request[5]))
    return out


def update(
    conv_id: int,
    actor_id: int,
    title: str | None,
    announcement: str | None,
    approval_required: bool | None,
    now_ms: int,
) -> Op[Outcome]:
    """Change the title, announcement or approval setting; one notice per real change."""
    out = Outcome()
    conv, role = yield from _enter(conv_id, actor_id)
    rules.check_manage(role)
    if title is not None and title != str(conv[2]):
        yield from execute("UPDATE conversations SET title = ? WHERE id = ?", title, conv_id)
        body = {"notice": "renamed", "title": title, "by": actor_id}
        yield from _notice(out, conv_id, body, now_ms)
    if announcement is not None and announcement != str(conv[3]):
        yield from execute(
            "UPDATE conversations SET announcement = ? WHERE id = ?", announcement, conv_id
        )
        body = {"notice": "announcement", "text": announcement, "by": actor_id}
        yield from _notice(out, conv_id, body, now_ms)
    if approval_required is not None and approval_required != bool(conv[5]):
        yield from execute(
            "UPDATE conversations SET approval_required = ? WHERE id = ?",
            int(approval_required),
            conv_id,
        )
        body = {"notice": "approval", "required": approval_required, "by": actor_id}
        yield from _notice(out, conv_id, body, now_ms)
    return out


def leave(conv_id: int, user_id: int, now_ms: int) -> Op[Outcome]:
    """The user leaves; an owner hands the group to their successor first."""
    out = Outcome()
    _conv, role = yield from _enter(conv_id, user_id)
    heir = None
    if role == "owner":
        rows = yield from all_rows(
            "SELECT user_id, role, joined_ms, from_seq FROM members WHERE conv_id = ?", conv_id
        )
        members = [rules.Member(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
        heir = rules.successor(members, user_id)
        if heir is not None:
            yield from _set_role(conv_id, heir, "owner")
        yield from execute("UPDATE conversations SET owner_id = ? WHERE id = ?", heir, conv_id)
    yield from _drop(conv_id, user_id)
    yield from _notice(out, conv_id, {"notice": "left", "users": [user_id], "by": user_id}, now_ms)
    if heir is not None:
        body = {"notice": "owner", "users": [heir], "by": user_id}
        yield from _notice(out, conv_id, body, now_ms)
    data = {"conv": conv_id, "change": "left"}
    yield from _event(out, [user_id], UPDATED, conv_id, data, now_ms)
    return out


def remove(conv_id: int, actor_id: int, target_id: int, now_ms: int) -> Op[Outcome]:
    """Take a member out of the group; they hear of it in their own log."""
    out = Outcome()
    _conv, role = yield from _enter(conv_id, actor_id)
    rules.check_manage(role)
    target_role = yield from _target_role(conv_id, target_id)
    rules.check_remove(actor_id, role, target_id, target_role)
    yield from _drop(conv_id, target_id)
    body = {"notice": "removed", "users": [target_id], "by": actor_id}
    yield from _notice(out, conv_id, body, now_ms)
    data = {"conv": conv_id, "change": "removed", "by": actor_id}
    yield from _event(out, [target_id], UPDATED, conv_id, data, now_ms)
    return out


def set_admin(conv_id: int, actor_id: int, target_id: int, admin: bool, now_ms: int) -> Op[Outcome]:
    """The owner makes a member an admin, or an admin a member again."""
    out = Outcome()
    _conv, role = yield from _enter(conv_id, actor_id)
    rules.check_owner(role)
    target_role = yield from _target_role(conv_id, target_id)
    rules.check_role_change(actor_id, role, target_id)
    new_role = "admin" if admin else "member"
    if target_role != new_role:
        yield from _set_role(conv_id, target_id, new_role)
        body = {"notice": "role", "users": [target_id], "role": new_role, "by": actor_id}
        yield from _notice(out, conv_id, body, now_ms)
    return out


def transfer(conv_id: int, actor_id: int, target_id: int, now_ms: int) -> Op[Outcome]:
    """The owner hands the group to another member and stays on as an admin."""
    out = Outcome()
    _conv, role = yield from _enter(conv_id, actor_id)
    rules.check_owner(role)
    yield from _target_role(conv_id, target_id)
    rules.check_transfer(actor_id, role, target_id)
    yield from _set_role(conv_id, target_id, "owner")
    yield from _set_role(conv_id, actor_id, "admin")
    yield from execute("UPDATE conversations SET owner_id = ? WHERE id = ?", target_id, conv_id)
    body = {"notice": "owner", "users": [target_id], "by": actor_id}
    yield from _notice(out, conv_id, body, now_ms)
    return out
