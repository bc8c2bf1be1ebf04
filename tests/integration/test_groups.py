"""Group conversations on both databases: members, roles, settings, approval, notices, mute."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application

from wanglai.domain.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from wanglai.domain.groups import MAX_MEMBERS
from wanglai.gateway.endpoint import APP_KEY
from wanglai.gateway.errors import error_middleware
from wanglai.services.groups import GroupService
from wanglai.store import accounts as account_store
from wanglai.store import conversations as conv_store
from wanglai.store.sql import Op

from .conftest import World


async def many_users(world: World, count: int, start: int = 0) -> list[int]:
    """Users made in the store directly (no login codes): enough to fill a group."""

    def op(now: int) -> Op[list[int]]:
        ids = []
        for i in range(start, start + count):
            row, _ = yield from account_store.ensure_user(f"+86199{i:08d}", f"u{i}", now)
            ids.append(int(row[0]))
        return ids

    return await world.container.db.write(op, world.clock.now_ms())


def groups(world: World) -> GroupService:
    return world.container.groups


async def notices(world: World, user_id: int, conv: int) -> list[dict[str, Any]]:
    """The system notices this member can see in the group's history, oldest first."""
    history = await world.container.messaging.history(user_id, conv, None, 200)
    return [m.body for m in reversed(history) if m.kind == "system"]


async def log_kinds(world: World, user_id: int) -> list[tuple[str, Any]]:
    """(event type, notice or data) for every event in the user's log."""
    page = await world.container.sync.since(user_id, 0, 5000)
    return [
        (e.type, e.message.body.get("notice") if e.message is not None else e.data)
        for e in page.events
    ]


async def trio(world: World) -> tuple[int, int, int, int]:
    """owner, admin, member in one group (all friends of the owner); returns them and the id."""
    o, a, m = [(await world.user(n)).user_id for n in ("olga", "adam", "mia")]
    await world.befriend(o, a, m)
    view = await groups(world).create(o, "Team", [a, m])
    await groups(world).set_admin(o, view.id, a, True)
    return o, a, m, view.id


# ---------------------------------------------------------------- create and read


async def test_create_makes_owner_and_tells_everyone(world: World) -> None:
    alice, bob, carol = await world.user("alice"), await world.user("bob"), await world.user()
    await world.befriend(alice.user_id, bob.user_id, carol.user_id)
    view = await groups(world).create(alice.user_id, "  Hikers ", [bob.user_id, carol.user_id])
    assert view.title == "Hikers" and view.owner == alice.user_id and view.role == "owner"
    roles = {m.user: m.role for m in view.members}
    assert roles == {alice.user_id: "owner", bob.user_id: "member", carol.user_id: "member"}
    assert [m.name for m in view.members if m.user == bob.user_id] == ["bob"]
    for uid in (alice.user_id, bob.user_id, carol.user_id):
        [created] = await notices(world, uid, view.id)
        assert created == {
            "notice": "created",
            "title": "Hikers",
            "users": [alice.user_id, bob.user_id, carol.user_id],
            "by": alice.user_id,
        }
        frames = [msgspec.json.decode(f) for f in world.delivered.for_user(uid)]
        assert [f["message"]["body"]["notice"] for f in frames] == ["created"]
    listed = await world.container.messaging.conversations(bob.user_id)
    assert [(c.id, c.kind, c.title, c.role) for c in listed] == [
        (view.id, "group", "Hikers", "member")
    ]
    # members send, and everybody gets it
    sent = await world.container.messaging.send(bob.user_id, view.id, "b1", "text", {"text": "hi"})
    assert sent.seq == 2
    assert [k for k, _ in await log_kinds(world, carol.user_id)] == ["message", "message"]


async def test_create_refuses_bad_input_and_changes_nothing(world: World) -> None:
    alice, bob, stranger = await world.user(), await world.user(), await world.user()
    await world.befriend(alice.user_id, bob.user_id)
    g = groups(world)
    for title in ("", "   ", "x" * 65):
        with pytest.raises(Invalid) as info:
            await g.create(alice.user_id, title, [bob.user_id])
        assert info.value.code == "invalid_title"
    with pytest.raises(Forbidden) as forbidden:
        await g.create(alice.user_id, "T", [bob.user_id, stranger.user_id])
    assert forbidden.value.code == "not_friends"
    with pytest.raises(Forbidden) as unknown:
        await g.create(alice.user_id, "T", [bob.user_id, 987654])
    assert unknown.value.code == "not_friends"  # says nothing about whether 987654 exists
    with pytest.raises(Invalid):
        await g.create(alice.user_id, "T", [0])
    crowd = await many_users(world, MAX_MEMBERS)
    await world.befriend(alice.user_id, *crowd)
    with pytest.raises(Conflict) as full:
        await g.create(alice.user_id, "T", crowd)  # 500 + the owner
    assert full.value.code == "group_full"
    for uid in (alice.user_id, bob.user_id, stranger.user_id):
        assert await world.container.messaging.conversations(uid) == []
        assert (await world.container.sync.since(uid, 0)).events == []


async def test_a_group_of_exactly_500_and_no_more_under_concurrent_invites(world: World) -> None:
    owner = (await world.user("owner")).user_id
    crowd = await many_users(world, MAX_MEMBERS + 9)
    await world.befriend(owner, *crowd)
    g = groups(world)
    view = await g.create(owner, "Big", crowd[: MAX_MEMBERS - 6])  # 495 members
    assert len(view.members) == MAX_MEMBERS - 5
    late = crowd[MAX_MEMBERS - 6 :]  # 15 friends, only 5 seats

    async def invite(uid: int, delay: float) -> Any:
        # Staggered so that both PostgreSQL writers get some of them (not one batch).
        await asyncio.sleep(delay)
        return await g.invite(owner, view.id, [uid])

    results = await asyncio.gather(
        *(invite(uid, i % 3 * 0.002) for i, uid in enumerate(late)), return_exceptions=True
    )
    joined = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(joined) == 5 and len(refused) == 10
    assert all(isinstance(r, Conflict) and r.code == "group_full" for r in refused)
    assert len((await g.get(owner, view.id)).members) == MAX_MEMBERS
    # one invite that would overflow adds nobody at all
    with pytest.raises(Conflict):
        await g.invite(owner, view.id, [uid for uid in late if uid not in _added(joined)])
    assert len((await g.get(owner, view.id)).members) == MAX_MEMBERS


def _added(results: list[Any]) -> set[int]:
    return {uid for r in results for uid in r.added}


async def test_an_invite_waits_for_a_concurrent_membership_change(world: World) -> None:
    """Another transaction that holds the group and fills it commits first: the invite that
    waited for it must count the members it added, not the ones it saw before."""
    owner = (await world.user("owner")).user_id
    crowd = await many_users(world, MAX_MEMBERS)
    await world.befriend(owner, *crowd)
    g = groups(world)
    view = await g.create(owner, "Big", crowd[: MAX_MEMBERS - 5])  # 496 members
    fillers, late = crowd[MAX_MEMBERS - 5 : -1], crowd[-1]
    now = world.clock.now_ms()
    insert = (
        "INSERT INTO members (conv_id, user_id, role, joined_ms, from_seq, read_seq, muted)"
        " VALUES ({}, {}, 'member', {}, 0, 0, 0)"
    )
    url = world.container.settings.database_url
    if url.startswith("sqlite:///"):
        raw = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        for uid in fillers:
            raw.execute(insert.format(view.id, uid, now))
        invite = asyncio.create_task(g.invite(owner, view.id, [late]))
        await asyncio.sleep(0.3)
        assert not invite.done()
        raw.execute("COMMIT")
        raw.close()
    else:
        import asyncpg

        conn = await asyncpg.connect(url)
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", view.id)
        for uid in fillers:
            await conn.execute(insert.format(view.id, uid, now))
        invite = asyncio.create_task(g.invite(owner, view.id, [late]))
        await asyncio.sleep(0.3)
        assert not invite.done()
        await tx.commit()
        await conn.close()
    with pytest.raises(Conflict) as info:
        await invite
    assert info.value.code == "group_full"
    assert len((await g.get(owner, view.id)).members) == MAX_MEMBERS


async def test_outsiders_get_404_everywhere(world: World) -> None:
    o, _a, m, conv = await trio(world)
    eve = (await world.user("eve")).user_id
    await world.befriend(eve, o)
    g = groups(world)
    attempts = [
        g.get(eve, conv),
        g.update(eve, conv, title="mine"),
        g.invite(eve, conv, [o]),
        g.requests(eve, conv),
        g.decide(eve, conv, 1, True),
        g.leave(eve, conv),
        g.remove(eve, conv, m),
        g.set_admin(eve, conv, m, True),
        g.transfer(eve, conv, eve),
        g.mute(eve, conv, True),
        world.container.messaging.history(eve, conv, None, 10),
        g.get(o, conv + 1000),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            await attempt
    assert len((await g.get(o, conv)).members) == 3
    assert (await world.container.sync.since(eve, 0)).events == []


async def test_group_endpoints_do_not_apply_to_direct_chats(world: World) -> None:
    alice, bob = (await world.user()).user_id, (await world.user()).user_id
    await world.befriend(alice, bob)
    direct = await world.container.messaging.open_direct(alice, bob)
    g = groups(world)
    for attempt in (
        g.get(alice, direct),
        g.update(alice, direct, title="x"),
        g.invite(alice, direct, [bob]),
        g.leave(alice, direct),
    ):
        with pytest.raises(NotFound):
            await attempt


# ---------------------------------------------------------------- settings


async def test_owner_and_admins_change_settings_members_may_not(world: World) -> None:
    o, a, m, conv = await trio(world)
    g = groups(world)
    view = await g.update(a, conv, title="Renamed", announcement="Meet at 9")
    assert (view.title, view.announcement) == ("Renamed", "Meet at 9")
    view = await g.update(o, conv, approval_required=True)
    assert view.approval_required
    with pytest.raises(Forbidden) as info:
        await g.update(m, conv, title="Mine")
    assert info.value.code == "not_group_admin"
    with pytest.raises(TooLarge):
        await g.update(o, conv, announcement="x" * 2001)
    with pytest.raises(Invalid):
        await g.update(o, conv, title="")
    with pytest.raises(Invalid):
        await g.update(o, conv)
    await g.update(o, conv, title="Renamed")  # no change, no notice
    kinds = [n["notice"] for n in await notices(world, m, conv)]
    assert kinds == ["created", "role", "renamed", "announcement", "approval"]
    last = (await notices(world, m, conv))[-3:]
    assert last == [
        {"notice": "renamed", "title": "Renamed", "by": a},
        {"notice": "announcement", "text": "Meet at 9", "by": a},
        {"notice": "approval", "required": True, "by": o},
    ]
    view = await g.get(m, conv)
    assert (view.title, view.announcement, view.role) == ("Renamed", "Meet at 9", "member")


# ---------------------------------------------------------------- invitations


async def test_members_invite_friends_who_see_history_from_their_join(world: World) -> None:
    o, a, m, conv = await trio(world)
    newcomer, stranger = (await world.user("nina")).user_id, (await world.user()).user_id
    await world.befriend(m, newcomer)
    messaging = world.container.messaging
    await messaging.send(o, conv, "before", "text", {"text": "before you came"})
    g = groups(world)
    result = await g.invite(m, conv, [newcomer, o])  # o is already in: skipped
    assert result.added == [newcomer] and result.requested == []
    await messaging.send(o, conv, "after", "text", {"text": "welcome"})
    history = await messaging.history(newcomer, conv, None, 50)
    assert [h.kind for h in reversed(history)] == ["system", "text"]
    assert history[-1].body == {"notice": "joined", "users": [newcomer], "by": m}
    assert await messaging.search(newcomer, "before", None, 10) == []
    [view] = await messaging.conversations(newcomer)
    assert view.unread == 2  # their join notice and the welcome, not what came before
    with pytest.raises(Forbidden) as info:
        await g.invite(m, conv, [stranger])
    assert info.value.code == "not_friends"
    with pytest.raises(Forbidden):
        await g.invite(m, conv, [424242])
    with pytest.raises(Invalid):
        await g.invite(m, conv, [])
    again = await g.invite(m, conv, [newcomer])
    assert again.added == [] and again.requested == []
    members = {x.user for x in (await g.get(o, conv)).members}
    assert members == {o, a, m, newcomer}


async def test_approval_turns_member_invites_into_requests_for_admins(world: World) -> None:
    o, a, m, conv = await trio(world)
    x, y, z = [(await world.user(n)).user_id for n in ("x", "y", "z")]
    await world.befriend(m, x, y)
    await world.befriend(a, z)
    g = groups(world)
    await g.update(o, conv, approval_required=True)
    result = await g.invite(m, conv, [x, y])
    assert result.added == []
    assert [(r.user, r.inviter, r.state) for r in result.requested] == [
        (x, m, "pending"),
        (y, m, "pending"),
    ]
    assert (await g.invite(m, conv, [x])).requested == []  # already waiting
    assert {u.user for u in (await g.get(o, conv)).members} == {o, a, m}
    pending = await g.requests(a, conv)
    assert [r.user for r in pending] == [x, y]
    with pytest.raises(Forbidden):
        await g.requests(m, conv)
    with pytest.raises(Forbidden):
        await g.decide(m, conv, pending[0].id, True)
    admin_log = await log_kinds(world, a)
    assert [d["user"] for k, d in admin_log if k == "group.request"] == [x, y]
    assert not [k for k, _ in await log_kinds(world, m) if k == "group.request"]
    approved = await g.decide(a, conv, pending[0].id, True)
    assert approved.state == "approved"
    rejected = await g.decide(o, conv, pending[1].id, False)
    assert rejected.state == "rejected"
    with pytest.raises(Conflict):
        await g.decide(o, conv, pending[1].id, True)
    with pytest.raises(NotFound):
        await g.decide(o, conv, 999_999, True)
    assert await g.requests(o, conv) == []
    assert {u.user for u in (await g.get(o, conv)).members} == {o, a, m, x}
    joined = (await notices(world, x, conv))[0]
    assert joined == {"notice": "joined", "users": [x], "by": a, "invited_by": m}
    with pytest.raises(NotFound):
        await world.container.messaging.history(y, conv, None, 10)
    # admins skip the queue
    assert (await g.invite(a, conv, [z])).added == [z]


# ---------------------------------------------------------------- leaving and removal


async def test_leaving_hands_ownership_on(world: World) -> None:
    o, a, m, conv = await trio(world)
    g = groups(world)
    messaging = world.container.messaging
    await g.leave(o, conv)
    view = await g.get(m, conv)
    assert view.owner == a
    assert {u.user: u.role for u in view.members} == {a: "owner", m: "member"}
    assert (await notices(world, m, conv))[-2:] == [
        {"notice": "left", "users": [o], "by": o},
        {"notice": "owner", "users": [a], "by": o},
    ]
    with pytest.raises(NotFound):
        await messaging.send(o, conv, "o1", "text", {"text": "still here?"})
    with pytest.raises(NotFound):
        await messaging.history(o, conv, None, 10)
    assert (await log_kinds(world, o))[-1] == (
        "conversation.updated",
        {"conv": conv, "change": "left"},
    )
    assert await messaging.conversations(o) == []
    # no admin left: the longest-standing member inherits
    late = (await world.user()).user_id
    await world.befriend(a, late)
    await g.invite(a, conv, [late])
    await g.leave(a, conv)
    assert (await g.get(m, conv)).owner == m
    await g.leave(late, conv)
    await g.leave(m, conv)  # the last one out leaves an empty group
    for uid in (o, a, m, late):
        with pytest.raises(NotFound):
            await g.get(uid, conv)
    row = await world.container.db.read(conv_store.conversation, conv)
    assert row is not None and row[4] is None
    assert await world.container.db.read(conv_store.member_ids, conv) == []


async def test_who_may_remove_whom(world: World) -> None:
    o, a, m, conv = await trio(world)
    other = (await world.user()).user_id
    await world.befriend(o, other)
    g = groups(world)
    await g.invite(o, conv, [other])
    with pytest.raises(Forbidden):
        await g.remove(m, conv, other)
    with pytest.raises(Forbidden):
        await g.remove(a, conv, o)
    with pytest.raises(Invalid):
        await g.remove(o, conv, o)
    with pytest.raises(NotFound) as info:
        await g.remove(o, conv, 999_999)
    assert info.value.code == "member_not_found"
    await g.set_admin(o, conv, other, True)
    with pytest.raises(Forbidden) as admin_on_admin:
        await g.remove(a, conv, other)
    assert admin_on_admin.value.code == "cannot_remove_admin"
    view = await g.remove(a, conv, m)
    assert {u.user for u in view.members} == {o, a, other}
    view = await g.remove(o, conv, other)  # the owner removes admins too
    assert {u.user for u in view.members} == {o, a}
    assert (await notices(world, a, conv))[-2:] == [
        {"notice": "removed", "users": [m], "by": a},
        {"notice": "removed", "users": [other], "by": o},
    ]


async def test_a_removed_member_can_no_longer_send_or_read(world: World) -> None:
    o, _a, m, conv = await trio(world)
    messaging = world.container.messaging
    await messaging.send(m, conv, "m1", "text", {"text": "I am here"})
    await groups(world).remove(o, conv, m)
    with pytest.raises(NotFound):
        await messaging.send(m, conv, "m2", "text", {"text": "let me back"})
    with pytest.raises(NotFound):
        await messaging.history(m, conv, None, 10)
    assert await messaging.search(m, "here", None, 10) == []
    assert await messaging.conversations(m) == []
    log = await log_kinds(world, m)
    assert log[-1] == ("conversation.updated", {"conv": conv, "change": "removed", "by": o})
    assert ("message", "removed") not in log  # the notice went to those who remain
    frames = [msgspec.json.decode(f) for f in world.delivered.for_user(m)]
    assert frames[-1]["type"] == "conversation.updated"
    # invited back, they start again from the new join
    await groups(world).invite(o, conv, [m])
    history = await messaging.history(m, conv, None, 50)
    assert [h.body.get("notice") for h in history] == ["joined"]


# ---------------------------------------------------------------- roles and ownership


async def test_roles_and_ownership_are_the_owners_to_give(world: World) -> None:
    o, a, m, conv = await trio(world)
    g = groups(world)
    with pytest.raises(Forbidden) as info:
        await g.set_admin(a, conv, m, True)
    assert info.value.code == "not_group_owner"
    with pytest.raises(Forbidden):
        await g.set_admin(m, conv, m, True)
    with pytest.raises(Forbidden):
        await g.transfer(a, conv, a)
    with pytest.raises(NotFound):
        await g.set_admin(o, conv, 999_999, True)
    with pytest.raises(NotFound):
        await g.transfer(o, conv, 999_999)
    with pytest.raises(Invalid):
        await g.transfer(o, conv, o)
    view = await g.set_admin(o, conv, a, False)
    assert {u.user: u.role for u in view.members}[a] == "member"
    await g.set_admin(o, conv, a, False)  # already a member: no notice
    view = await g.transfer(o, conv, m)
    assert view.owner == m and view.role == "admin"
    assert {u.user: u.role for u in view.members} == {o: "admin", a: "member", m: "owner"}
    assert [n for n in await notices(world, a, conv) if n["notice"] in ("role", "owner")] == [
        {"notice": "role", "users": [a], "role": "admin", "by": o},
        {"notice": "role", "users": [a], "role": "member", "by": o},
        {"notice": "owner", "users": [m], "by": o},
    ]
    # the new owner can do what owners do; the old one no longer can
    await g.set_admin(m, conv, a, True)
    with pytest.raises(Forbidden):
        await g.transfer(o, conv, a)


async def test_roles_govern_recall_and_mention_all(world: World) -> None:
    _o, a, m, conv = await trio(world)
    messaging = world.container.messaging
    sent = await messaging.send(m, conv, "m1", "text", {"text": "oops"})
    with pytest.raises(Forbidden):
        await messaging.send(m, conv, "m2", "text", {"text": "hey", "mentions": ["all"]})
    await messaging.send(a, conv, "a1", "text", {"text": "hey", "mentions": ["all"]})
    world.clock.advance(3600)
    assert (await messaging.recall(a, conv, sent.seq)).recalled


# ---------------------------------------------------------------- mute


async def test_mute_is_per_member_for_groups_and_direct_chats(world: World) -> None:
    o, a, m, conv = await trio(world)
    g = groups(world)
    assert (await g.mute(m, conv, True)).muted
    assert (await g.get(m, conv)).muted and not (await g.get(o, conv)).muted
    assert (await log_kinds(world, m))[-1] == (
        "conversation.updated",
        {"conv": conv, "change": "muted", "muted": True},
    )
    assert not [k for k, _ in await log_kinds(world, o) if k == "conversation.updated"]
    direct = await world.container.messaging.open_direct(o, a)
    await g.mute(o, direct, True)
    muted = {c.id: c.muted for c in await world.container.messaging.conversations(o)}
    assert muted == {conv: False, direct: True}
    assert not (await g.mute(o, direct, False)).muted
    with pytest.raises(NotFound):
        await g.mute(m, direct, True)


# ---------------------------------------------------------------- over HTTP


class Api:
    def __init__(self, client: TestClient[Any, Any], token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else msgspec.json.encode(body)
        async with self.client.request(method, path, data=data, headers=self.headers) as response:
            raw = await response.read()
            return response.status, msgspec.json.decode(raw) if raw else None


async def test_rest_routes_answer_with_the_right_statuses(world: World) -> None:
    from wanglai.gateway import routes_groups, routes_messaging

    tokens = []
    for phone in ("+8613900000001", "+8613900000002", "+8613900000003"):
        await world.container.accounts.request_code(phone, "10.1.0.1")
        result = await world.container.accounts.login(phone, world.sms.last_code(phone), "t")
        tokens.append((result.user.id, result.token))
    (owner, owner_token), (friend, friend_token), (eve, eve_token) = tokens
    await world.befriend(owner, friend)
    app = Application(middlewares=[error_middleware])
    app[APP_KEY] = world.container
    routes_groups.router.install(app, world.container)
    routes_messaging.router.install(app, world.container)
    async with TestClient(TestServer(app)) as client:
        boss, pal, outsider = (Api(client, t) for t in (owner_token, friend_token, eve_token))
        status, body = await boss.call("POST", "/v1/groups", {"title": "Den", "members": [friend]})
        assert status == 201 and body["role"] == "owner"
        conv = body["id"]
        status, body = await boss.call("POST", "/v1/groups", {"title": "", "members": []})
        assert (status, body["error"]["code"]) == (400, "invalid_title")
        status, body = await boss.call("POST", "/v1/groups", {"title": "X", "members": [eve]})
        assert (status, body["error"]["code"]) == (403, "not_friends")
        status, body = await boss.call("POST", "/v1/groups", {"title": "X", "members": ["1"]})
        assert (status, body["error"]["code"]) == (400, "invalid_body")
        status, body = await outsider.call("GET", f"/v1/groups/{conv}")
        assert (status, body["error"]["code"]) == (404, "group_not_found")
        status, body = await pal.call("PATCH", f"/v1/groups/{conv}", {"title": "Mine"})
        assert (status, body["error"]["code"]) == (403, "not_group_admin")
        status, body = await boss.call(
            "PATCH", f"/v1/groups/{conv}", {"announcement": "hi", "approval_required": True}
        )
        assert status == 200 and body["approval_required"] and body["announcement"] == "hi"
        status, body = await pal.call("PUT", f"/v1/groups/{conv}/admins/{owner}")
        assert (status, body["error"]["code"]) == (403, "not_group_owner")
        status, body = await boss.call("PUT", f"/v1/groups/{conv}/admins/{friend}")
        assert status == 200
        status, body = await boss.call("GET", f"/v1/groups/{conv}/requests")
        assert (status, body) == (200, [])
        status, body = await boss.call("POST", f"/v1/groups/{conv}/requests/77/approve")
        assert (status, body["error"]["code"]) == (404, "request_not_found")
        status, body = await pal.call("POST", f"/v1/groups/{conv}/members", {"user_ids": [eve]})
        assert (status, body["error"]["code"]) == (403, "not_friends")
        status, body = await boss.call("POST", f"/v1/groups/{conv}/owner", {"user_id": friend})
        assert status == 200 and body["owner"] == friend and body["role"] == "admin"
        status, body = await boss.call("PUT", f"/v1/conversations/{conv}/mute", {"muted": True})
        assert (status, body) == (200, {"muted": True})
        status, body = await outsider.call("PUT", f"/v1/conversations/{conv}/mute", {"muted": True})
        assert status == 404
        status, body = await pal.call("DELETE", f"/v1/groups/{conv}/members/{owner}")
        assert status == 200 and [m["user"] for m in body["members"]] == [friend]
        status, body = await boss.call("GET", f"/v1/conversations/{conv}/messages")
        assert status == 404
        status, body = await pal.call("POST", f"/v1/groups/{conv}/leave")
        assert (status, body) == (204, None)
        status, body = await pal.call("GET", f"/v1/groups/{conv}")
        assert status == 404
