"""Contacts on both databases: phone books, friend requests, friends, blocks and their events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from wanglai.domain.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, TooLarge
from wanglai.gateway import routes_accounts, routes_contacts
from wanglai.gateway.endpoint import APP_KEY
from wanglai.gateway.errors import error_middleware
from wanglai.services.accounts import Session
from wanglai.services.contacts import ContactService, FriendRequests

from .conftest import World

HOUR = 3600


def contacts(world: World) -> ContactService:
    return world.container.contacts


async def log_of(world: World, user_id: int) -> list[tuple[str, dict[str, Any]]]:
    """Every event in the user's log: (type, data)."""
    page = await world.container.sync.since(user_id, 0)
    return [(e.type, e.data or {}) for e in page.events]


def pushed(world: World, user_id: int) -> list[dict[str, Any]]:
    return [msgspec.json.decode(f) for f in world.delivered.for_user(user_id)]


async def phone_of(world: World, session: Session) -> str:
    return (await world.container.accounts.me(session)).phone


async def make_friends(world: World, a: Session, b: Session) -> None:
    request = await contacts(world).request(a.user_id, b.user_id)
    await contacts(world).accept(b.user_id, request.id)


async def friend_ids(world: World, user_id: int) -> list[int]:
    return [f.user.id for f in await contacts(world).friends(user_id)]


# ---------------------------------------------------------------- friend requests


async def test_request_and_accept_reach_both_logs_and_nobody_else(world: World) -> None:
    alice, bob, eve = await world.user("alice"), await world.user("bob"), await world.user("eve")
    c = contacts(world)
    request = await c.request(alice.user_id, bob.user_id, "  hi, it's alice  ")
    assert (request.sender.id, request.recipient.id) == (alice.user_id, bob.user_id)
    assert (request.note, request.state) == ("hi, it's alice", "pending")
    assert request.sender.name == "alice"

    for uid in (alice.user_id, bob.user_id):
        log = await log_of(world, uid)
        assert [t for t, _ in log] == ["friend.request"]
        assert log[0][1]["request"]["id"] == request.id
        assert log[0][1]["request"]["note"] == "hi, it's alice"
        frames = pushed(world, uid)
        assert [(f["type"], f["data"]["request"]["id"]) for f in frames] == [
            ("friend.request", request.id)
        ]
        assert frames[0]["seq"] == (await world.container.sync.head(uid))

    listed_bob = await c.requests(bob.user_id)
    assert [r.id for r in listed_bob.incoming] == [request.id] and listed_bob.outgoing == []
    listed_alice = await c.requests(alice.user_id)
    assert [r.id for r in listed_alice.outgoing] == [request.id] and listed_alice.incoming == []
    assert await c.requests(eve.user_id) == FriendRequests(incoming=[], outgoing=[])

    accepted = await c.accept(bob.user_id, request.id)
    assert accepted.state == "accepted" and accepted.id == request.id
    assert await friend_ids(world, alice.user_id) == [bob.user_id]
    assert await friend_ids(world, bob.user_id) == [alice.user_id]
    friends = await c.friends(alice.user_id)
    assert friends[0].user.name == "bob" and friends[0].since == world.clock.now_ms()
    assert (await c.requests(bob.user_id)).incoming == []

    alice_log, bob_log = await log_of(world, alice.user_id), await log_of(world, bob.user_id)
    assert alice_log[-1][0] == bob_log[-1][0] == "friend.accepted"
    assert alice_log[-1][1]["user"]["id"] == bob.user_id
    assert bob_log[-1][1]["user"]["id"] == alice.user_id
    assert alice_log[-1][1]["request"]["state"] == "accepted"
    assert [f["type"] for f in pushed(world, alice.user_id)] == [
        "friend.request",
        "friend.accepted",
    ]
    assert await log_of(world, eve.user_id) == [] and pushed(world, eve.user_id) == []

    # Friends may write to each other (bob allows friends only, the default).
    conv = await world.container.messaging.open_direct(alice.user_id, bob.user_id)
    await world.container.messaging.send(alice.user_id, conv, "c1", "text", {"text": "hi"})


async def test_asking_twice_answers_with_the_pending_request(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    c = contacts(world)
    first = await c.request(alice.user_id, bob.user_id, "one")
    again = await c.request(alice.user_id, bob.user_id, "two")
    assert again.id == first.id and again.note == "one"
    assert [t for t, _ in await log_of(world, bob.user_id)] == ["friend.request"]
    assert len((await c.requests(bob.user_id)).incoming) == 1


async def test_asking_back_makes_friends(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    c = contacts(world)
    first = await c.request(alice.user_id, bob.user_id)
    back = await c.request(bob.user_id, alice.user_id, "yes!")
    assert back.id == first.id and back.state == "accepted"
    assert await friend_ids(world, alice.user_id) == [bob.user_id]
    assert await friend_ids(world, bob.user_id) == [alice.user_id]
    for uid in (alice.user_id, bob.user_id):
        assert [t for t, _ in await log_of(world, uid)] == ["friend.request", "friend.accepted"]
        assert await c.requests(uid) == FriendRequests(incoming=[], outgoing=[])
    with pytest.raises(Conflict) as info:
        await c.request(alice.user_id, bob.user_id)
    assert info.value.code == "already_friends"


async def test_concurrent_requests_between_two_people_make_one_friendship(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    c = contacts(world)
    results = await asyncio.gather(
        c.request(alice.user_id, bob.user_id),
        c.request(bob.user_id, alice.user_id),
        c.request(alice.user_id, bob.user_id),
        c.request(bob.user_id, alice.user_id),
        return_exceptions=True,
    )
    assert all(not isinstance(r, Exception) or isinstance(r, Conflict) for r in results)
    assert await friend_ids(world, alice.user_id) == [bob.user_id]
    assert await friend_ids(world, bob.user_id) == [alice.user_id]
    assert await c.requests(alice.user_id) == FriendRequests(incoming=[], outgoing=[])
    kinds = [t for t, _ in await log_of(world, alice.user_id)]
    assert kinds == ["friend.request", "friend.accepted"]


@pytest.mark.parametrize("bad", [0, -1, True, "2", 2**63, None])
async def test_request_with_bad_user_id_is_refused(world: World, bad: object) -> None:
    alice = await world.user()
    with pytest.raises(Invalid) as info:
        await contacts(world).request(alice.user_id, bad)
    assert info.value.code == "invalid_user_id"


async def test_request_refusals_change_nothing(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    c = contacts(world)
    with pytest.raises(Invalid) as self_info:
        await c.request(alice.user_id, alice.user_id)
    assert self_info.value.code == "cannot_befriend_self"
    with pytest.raises(TooLarge) as note_info:
        await c.request(alice.user_id, bob.user_id, "x" * 201)
    assert note_info.value.code == "note_too_long"
    with pytest.raises(Invalid):
        await c.request(alice.user_id, bob.user_id, ["not", "text"])
    with pytest.raises(NotFound) as missing:
        await c.request(alice.user_id, bob.user_id + 1000)
    assert missing.value.code == "user_not_found"
    assert (await c.requests(bob.user_id)).incoming == []
    assert (await c.requests(alice.user_id)).outgoing == []
    assert await log_of(world, alice.user_id) == []
    assert await log_of(world, bob.user_id) == []
    request = await c.request(alice.user_id, bob.user_id, "y" * 200)
    assert request.note == "y" * 200


async def test_only_the_recipient_may_answer(world: World) -> None:
    alice, bob, eve = await world.user(), await world.user(), await world.user()
    c = contacts(world)
    request = await c.request(alice.user_id, bob.user_id)
    eves = await c.request(eve.user_id, alice.user_id)
    attempts = [
        (eve.user_id, request.id),  # a stranger
        (alice.user_id, request.id),  # the sender
        (bob.user_id, eves.id),  # someone else's request
        (bob.user_id, request.id + 1000),  # no such request
        (bob.user_id, 0),
        (bob.user_id, 2**63),
    ]
    for who, rid in attempts:
        for answer in (c.accept, c.decline):
            with pytest.raises(NotFound) as info:
                await answer(who, rid)
            assert info.value.code == "friend_request_not_found"
    assert [r.id for r in (await c.requests(bob.user_id)).incoming] == [request.id]
    assert await c.friends(alice.user_id) == []
    assert [t for t, _ in await log_of(world, bob.user_id)] == ["friend.request"]


async def test_decline_tells_the_sender_and_closes_the_request(world: World) -> None:
    alice, bob, eve = await world.user(), await world.user(), await world.user()
    c = contacts(world)
    request = await c.request(alice.user_id, bob.user_id)
    declined = await c.decline(bob.user_id, request.id)
    assert declined.state == "declined"
    for uid in (alice.user_id, bob.user_id):
        log = await log_of(world, uid)
        assert [t for t, _ in log] == ["friend.request", "friend.declined"]
        assert log[-1][1]["request"] == msgspec.to_builtins(declined)
        assert pushed(world, uid)[-1]["type"] == "friend.declined"
    assert await log_of(world, eve.user_id) == []
    assert await c.requests(alice.user_id) == await c.requests(eve.user_id)

    again = await c.decline(bob.user_id, request.id)  # a retry: same answer, no new event
    assert again == declined
    assert len(await log_of(world, alice.user_id)) == 2
    with pytest.raises(Conflict) as info:
        await c.accept(bob.user_id, request.id)
    assert info.value.code == "friend_request_closed"
    assert await c.friends(bob.user_id) == []

    # Declined is not forever: alice may ask again, as a new request.
    second = await c.request(alice.user_id, bob.user_id)
    assert second.id != request.id and second.state == "pending"


async def test_accepting_twice_is_a_harmless_retry(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    c = contacts(world)
    request = await c.request(alice.user_id, bob.user_id)
    first = await c.accept(bob.user_id, request.id)
    again = await c.accept(bob.user_id, request.id)
    assert again == first
    assert [t for t, _ in await log_of(world, alice.user_id)] == [
        "friend.request",
        "friend.accepted",
    ]
    with pytest.raises(Conflict):
        await c.decline(bob.user_id, request.id)


# ---------------------------------------------------------------- friends


async def test_remove_friend_both_ways(world: World) -> None:
    alice, bob, eve = await world.user(), await world.user(), await world.user()
    c = contacts(world)
    await make_friends(world, alice, bob)
    await make_friends(world, alice, eve)
    with pytest.raises(NotFound) as info:
        await c.remove_friend(eve.user_id, bob.user_id)  # not eve's friend
    assert info.value.code == "friend_not_found"
    for bad in (0, eve.user_id, 2**63):
        with pytest.raises(NotFound):
            await c.remove_friend(eve.user_id, bad)
    assert await friend_ids(world, alice.user_id) == [bob.user_id, eve.user_id]
    eve_log_before = await log_of(world, eve.user_id)

    await c.remove_friend(bob.user_id, alice.user_id)
    assert await friend_ids(world, alice.user_id) == [eve.user_id]
    assert await friend_ids(world, bob.user_id) == []
    alice_log, bob_log = await log_of(world, alice.user_id), await log_of(world, bob.user_id)
    assert alice_log[-1] == ("friend.removed", {"user": alice_log[-1][1]["user"]})
    assert alice_log[-1][1]["user"]["id"] == bob.user_id
    assert bob_log[-1][0] == "friend.removed" and bob_log[-1][1]["user"]["id"] == alice.user_id
    assert pushed(world, alice.user_id)[-1]["type"] == "friend.removed"
    assert await log_of(world, eve.user_id) == eve_log_before
    with pytest.raises(NotFound):
        await c.remove_friend(bob.user_id, alice.user_id)
    # No longer friends: bob allows friends only, so alice may not write.
    with pytest.raises(Forbidden):
        await world.container.messaging.open_direct(alice.user_id, bob.user_id)


# ---------------------------------------------------------------- blocks


async def test_block_ends_friendship_and_requests_silently(world: World) -> None:
    alice, bob, carol, dave = [await world.user(n) for n in ("alice", "bob", "carol", "dave")]
    c = contacts(world)
    await make_friends(world, alice, bob)
    from_carol = await c.request(carol.user_id, alice.user_id)
    to_dave = await c.request(alice.user_id, dave.user_id)
    bob_log = await log_of(world, bob.user_id)
    bob_frames = len(world.delivered.for_user(bob.user_id))

    view = await c.block(alice.user_id, bob.user_id)
    assert view.user.id == bob.user_id and view.since == world.clock.now_ms()
    assert await c.friends(alice.user_id) == [] and await c.friends(bob.user_id) == []
    alice_log = await log_of(world, alice.user_id)
    assert alice_log[-1][0] == "block.changed"
    assert alice_log[-1][1]["blocked"] is True and alice_log[-1][1]["user"]["id"] == bob.user_id
    assert pushed(world, alice.user_id)[-1]["type"] == "block.changed"
    # Nothing tells bob.
    assert await log_of(world, bob.user_id) == bob_log
    assert len(world.delivered.for_user(bob.user_id)) == bob_frames

    # Bob can no longer add, message or see alice; alice is told to unblock first.
    with pytest.raises(NotFound) as add:
        await c.request(bob.user_id, alice.user_id)
    assert add.value.code == "user_not_found"
    with pytest.raises(Forbidden) as write:
        await world.container.messaging.open_direct(bob.user_id, alice.user_id)
    assert write.value.code == "peer_unreachable"
    assert await c.visible(bob.user_id, alice.user_id) is False
    assert await c.visible(alice.user_id, bob.user_id) is True
    assert await c.visible(carol.user_id, alice.user_id) is True
    assert await c.visible(carol.user_id, dave.user_id + 1000) is False
    with pytest.raises(Forbidden) as mine:
        await c.request(alice.user_id, bob.user_id)
    assert mine.value.code == "peer_blocked"

    # Pending requests either way end with a block.
    await c.block(alice.user_id, carol.user_id)
    await c.block(alice.user_id, dave.user_id)
    assert await c.requests(alice.user_id) == await c.requests(bob.user_id)
    assert (await c.requests(carol.user_id)).outgoing == []
    assert (await c.requests(dave.user_id)).incoming == []
    with pytest.raises(Conflict):
        await c.accept(alice.user_id, from_carol.id)
    with pytest.raises(Conflict):
        await c.accept(dave.user_id, to_dave.id)
    listed = await c.blocked(alice.user_id)
    assert [b.user.id for b in listed] == [bob.user_id, carol.user_id, dave.user_id]
    assert await c.blocked(bob.user_id) == []


async def test_block_again_changes_nothing_and_unblock(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    c = contacts(world)
    first = await c.block(alice.user_id, bob.user_id)
    events_after_block = await log_of(world, alice.user_id)
    world.clock.advance(5)
    again = await c.block(alice.user_id, bob.user_id)
    assert again == first
    assert await log_of(world, alice.user_id) == events_after_block

    await c.unblock(alice.user_id, bob.user_id)
    log = await log_of(world, alice.user_id)
    assert log[-1][0] == "block.changed" and log[-1][1]["blocked"] is False
    assert await log_of(world, bob.user_id) == []
    assert await c.blocked(alice.user_id) == []
    assert await c.visible(bob.user_id, alice.user_id) is True
    with pytest.raises(NotFound) as info:
        await c.unblock(alice.user_id, bob.user_id)
    assert info.value.code == "block_not_found"
    # Bob may ask again; unblocking restored no friendship.
    assert await c.friends(alice.user_id) == []
    request = await c.request(bob.user_id, alice.user_id)
    assert request.state == "pending"


async def test_block_refusals(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    c = contacts(world)
    with pytest.raises(Invalid) as self_info:
        await c.block(alice.user_id, alice.user_id)
    assert self_info.value.code == "cannot_block_self"
    with pytest.raises(NotFound) as missing:
        await c.block(alice.user_id, bob.user_id + 1000)
    assert missing.value.code == "user_not_found"
    for bad in (0, -5, "3", 2**63):
        with pytest.raises(Invalid):
            await c.block(alice.user_id, bad)
    with pytest.raises(NotFound):
        await c.unblock(alice.user_id, 0)
    with pytest.raises(NotFound):
        await c.unblock(bob.user_id, alice.user_id)
    assert await c.blocked(alice.user_id) == []
    assert await log_of(world, alice.user_id) == []


# ---------------------------------------------------------------- phone book


async def test_phonebook_matches_visible_users_and_reports_invalid(world: World) -> None:
    me, bob, carol, blocker = [await world.user(n) for n in ("me", "bob", "carol", "blocker")]
    c = contacts(world)
    await c.block(blocker.user_id, me.user_id)
    bob_phone, carol_phone = await phone_of(world, bob), await phone_of(world, carol)
    local_carol = carol_phone[3:]  # as written in a Chinese phone book, without +86
    entries = [
        bob_phone,
        local_carol,
        "+86 " + local_carol,
        "hello",
        "123",
        await phone_of(world, me),
        await phone_of(world, blocker),
        "+8613912345678",  # valid, nobody's
        "hello",
    ]
    result = await c.match_phonebook(me.user_id, entries)
    found = {(m.phone, m.given, m.user.id, m.user.name) for m in result.matches}
    assert found == {
        (bob_phone, bob_phone, bob.user_id, "bob"),
        (carol_phone, local_carol, carol.user_id, "carol"),
    }
    assert result.invalid == ["hello", "123"]
    # Anyone the blocker did not block still finds them.
    other = await c.match_phonebook(bob.user_id, [await phone_of(world, blocker)])
    assert [m.user.id for m in other.matches] == [blocker.user_id]
    empty = await c.match_phonebook(me.user_id, [])
    assert empty.matches == [] and empty.invalid == []


async def test_phonebook_size_limit(world: World) -> None:
    me = await world.user()
    c = contacts(world)
    numbers = [f"+86139{i:08d}" for i in range(5001)]
    with pytest.raises(TooLarge) as info:
        await c.match_phonebook(me.user_id, numbers)
    assert info.value.code == "phonebook_too_large"
    full = await c.match_phonebook(me.user_id, numbers[:5000])
    assert full.matches == [] and full.invalid == []


async def test_phonebook_uploads_are_rate_limited_per_user(world: World) -> None:
    me, other = await world.user(), await world.user()
    c = contacts(world)
    too_many = ["+8613900000000"] * 5001
    with pytest.raises(TooLarge):  # refused uploads do not count
        await c.match_phonebook(me.user_id, too_many)
    for _ in range(10):
        await c.match_phonebook(me.user_id, ["+8613900000000"])
        world.clock.advance(60)
    with pytest.raises(RateLimited) as info:
        await c.match_phonebook(me.user_id, ["+8613900000000"])
    assert info.value.code == "phonebook_rate_limited"
    # The first upload leaves the window in an hour minus the ten minutes gone by.
    assert info.value.retry_after == pytest.approx(HOUR - 600)
    await c.match_phonebook(other.user_id, ["+8613900000000"])
    world.clock.advance(HOUR - 600 + 1)
    await c.match_phonebook(me.user_id, ["+8613900000000"])
    with pytest.raises(RateLimited):
        await c.match_phonebook(me.user_id, ["+8613900000000"])


async def test_lookup_by_number(world: World) -> None:
    me, bob, blocker = await world.user(), await world.user("bob"), await world.user()
    c = contacts(world)
    await c.block(blocker.user_id, me.user_id)
    found = await c.lookup(me.user_id, (await phone_of(world, bob))[3:])
    assert (found.id, found.name) == (bob.user_id, "bob")
    for number in (await phone_of(world, blocker), "+8613912345678"):
        with pytest.raises(NotFound) as info:
            await c.lookup(me.user_id, number)
        assert info.value.code == "user_not_found"
    with pytest.raises(Invalid) as bad:
        await c.lookup(me.user_id, "not a phone")
    assert bad.value.code == "invalid_phone"
    for _ in range(97):
        with pytest.raises(NotFound):
            await c.lookup(me.user_id, "+8613912345678")
    with pytest.raises(RateLimited) as limited:
        await c.lookup(me.user_id, "+8613912345678")
    assert limited.value.code == "lookup_rate_limited"


# ---------------------------------------------------------------- over HTTP


async def login_token(world: World, session: Session) -> str:
    phone = await phone_of(world, session)
    accounts = world.container.accounts
    await accounts.request_code(phone, "10.9.9.9")
    result = await accounts.login(phone, world.sms.last_code(phone), "http")
    return result.token


@pytest.fixture
async def http(world: World) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[error_middleware])
    app[APP_KEY] = world.container
    for router in (routes_accounts.router, routes_contacts.router):
        router.install(app, world.container)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def call(
    client: TestClient[web.Request, web.Application],
    token: str,
    method: str,
    path: str,
    body: object = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    data = raw if raw is not None else None if body is None else msgspec.json.encode(body)
    async with client.request(method, path, data=data, headers=headers) as response:
        return response.status, await response.json()


async def test_http_friend_flow_and_errors(
    world: World, http: TestClient[web.Request, web.Application]
) -> None:
    alice, bob, eve = await world.user("alice"), await world.user("bob"), await world.user("eve")
    ta, tb, te = [await login_token(world, s) for s in (alice, bob, eve)]

    status, sent = await call(http, ta, "POST", "/v1/friends/requests", {"user_id": bob.user_id})
    assert status == 200 and sent["state"] == "pending" and sent["sender"]["name"] == "alice"
    status, err = await call(http, ta, "POST", "/v1/friends/requests", {"user_id": "x"})
    assert status == 400 and err["error"]["code"] == "invalid_body"
    status, err = await call(http, ta, "POST", "/v1/friends/requests", raw=b"{nope")
    assert status == 400 and err["error"]["code"] == "malformed_json"
    long_note = {"user_id": bob.user_id + 1000, "note": "n" * 201}
    status, err = await call(http, ta, "POST", "/v1/friends/requests", long_note)
    assert status == 413 and err["error"]["code"] == "note_too_long"

    accept = f"/v1/friends/requests/{sent['id']}/accept"
    for token, path in ((te, accept), (ta, accept), (tb, "/v1/friends/requests/abc/accept")):
        status, err = await call(http, token, "POST", path)
        assert status == 404, err
    status, listed = await call(http, tb, "GET", "/v1/friends/requests")
    assert status == 200 and [r["id"] for r in listed["incoming"]] == [sent["id"]]
    status, done = await call(http, tb, "POST", accept)
    assert status == 200 and done["state"] == "accepted"
    status, again = await call(http, ta, "POST", "/v1/friends/requests", {"user_id": bob.user_id})
    assert status == 409 and again["error"]["code"] == "already_friends"
    status, friends = await call(http, ta, "GET", "/v1/friends")
    assert [f["user"]["id"] for f in friends] == [bob.user_id]

    status, err = await call(http, te, "DELETE", f"/v1/friends/{bob.user_id}")
    assert status == 404 and err["error"]["code"] == "friend_not_found"
    status, _ = await call(http, tb, "DELETE", f"/v1/friends/{alice.user_id}")
    assert status == 200
    status, friends = await call(http, ta, "GET", "/v1/friends")
    assert friends == []


async def test_http_blocks_and_phonebook(
    world: World, http: TestClient[web.Request, web.Application]
) -> None:
    alice, bob = await world.user("alice"), await world.user("bob")
    ta, tb = await login_token(world, alice), await login_token(world, bob)
    alice_phone = await phone_of(world, alice)

    status, found = await call(http, tb, "POST", "/v1/contacts/lookup", {"phone": alice_phone})
    assert status == 200 and found["id"] == alice.user_id
    status, blocked = await call(http, ta, "POST", "/v1/blocks", {"user_id": bob.user_id})
    assert status == 200 and blocked["user"]["id"] == bob.user_id
    status, err = await call(http, tb, "POST", "/v1/contacts/lookup", {"phone": alice_phone})
    assert status == 404 and err["error"]["code"] == "user_not_found"
    status, listed = await call(http, ta, "GET", "/v1/blocks")
    assert [b["user"]["id"] for b in listed] == [bob.user_id]
    status, err = await call(http, ta, "DELETE", "/v1/blocks/999999")
    assert status == 404 and err["error"]["code"] == "block_not_found"
    status, _ = await call(http, ta, "DELETE", f"/v1/blocks/{bob.user_id}")
    assert status == 200

    # 5,000 numbers fit although the body is larger than the usual 64 KiB limit.
    book = [f"+86139{i:08d}" for i in range(4999)] + [alice_phone, "junk"]
    status, err = await call(http, tb, "POST", "/v1/contacts/match", {"phones": book})
    assert status == 413 and err["error"]["code"] == "phonebook_too_large"
    status, result = await call(http, tb, "POST", "/v1/contacts/match", {"phones": book[1:]})
    assert status == 200, result
    assert [m["user"]["id"] for m in result["matches"]] == [alice.user_id]
    assert result["invalid"] == ["junk"]
    for _ in range(9):
        status, _ = await call(http, tb, "POST", "/v1/contacts/match", {"phones": []})
        assert status == 200
    async with http.post(
        "/v1/contacts/match",
        data=b'{"phones": []}',
        headers={"Authorization": f"Bearer {tb}"},
    ) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) > 0
        assert (await response.json())["error"]["code"] == "phonebook_rate_limited"
    status, err = await call(http, "wrong", "GET", "/v1/friends")
    assert status == 401
