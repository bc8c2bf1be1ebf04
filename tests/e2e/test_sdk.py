"""The Python SDK against a real server process over real sockets."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from wanglai.client import ApiError, Client, DeviceRevoked, Disconnected, EventView, MessageView

from .conftest import Server, Users

WAIT_S = 20.0


class Follower:
    """Iterates a client's events in a task and collects them."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.events: list[EventView] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for event in self.client.events():
                self.events.append(event)
                self._changed.set()
        except Exception as exc:
            self.error = exc
            self._changed.set()

    def texts(self, conv: int | None = None) -> list[str]:
        return [
            str(e.message.body.get("text"))
            for e in self.events
            if e.type == "message" and e.message is not None and conv in (None, e.conv)
        ]

    async def until(self, predicate: object, within: float = WAIT_S) -> None:
        async with asyncio.timeout(within):
            while not predicate():  # type: ignore[operator]
                if self.error is not None:
                    raise self.error
                self._changed.clear()
                await self._changed.wait()

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def followers() -> AsyncIterator[list[Follower]]:
    started: list[Follower] = []
    yield started
    for follower in started:
        if not follower.task.done():
            await follower.stop()


def follow(followers: list[Follower], client: Client) -> Follower:
    follower = Follower(client)
    followers.append(follower)
    return follower


def assert_in_order_once(events: list[EventView]) -> None:
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs)), seqs
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True


async def test_two_clients_chat_live_both_ways(users: Users, followers: list[Follower]) -> None:
    alice = await users.open_to_anyone()
    bob = await users.open_to_anyone()
    assert bob.user_id is not None and alice.user_id is not None
    conv = await alice.open_direct(bob.user_id)
    assert await bob.open_direct(alice.user_id) == conv
    a, b = follow(followers, alice), follow(followers, bob)
    await alice.connect()
    await bob.connect()

    sent = await alice.send(conv, "hi bob")
    await b.until(lambda: b.texts() == ["hi bob"])
    reply = await bob.send(conv, "hi alice")
    await a.until(lambda: a.texts() == ["hi bob", "hi alice"])
    await b.until(lambda: len(b.texts()) == 2)

    assert isinstance(sent, MessageView) and sent.sender == alice.user_id
    assert (sent.conv, sent.seq, reply.seq) == (conv, 1, 2)
    got = b.events[0].message
    assert got is not None and (got.sender, got.seq, got.client_id) == (
        alice.user_id,
        1,
        sent.client_id,
    )
    assert_in_order_once(a.events)
    assert_in_order_once(b.events)
    history = await bob.history(conv)
    assert [m.body["text"] for m in history] == ["hi alice", "hi bob"]
    listed = {c.id: c for c in await bob.conversations()}
    assert listed[conv].unread == 1 and listed[conv].peer == alice.user_id
    assert await bob.mark_read(conv, 2) == 2
    assert [m.seq for m in await alice.search("alice")] == [2]


@pytest.mark.parametrize(("compact", "msgpack"), [(False, True), (True, False), (True, True)])
async def test_a_messagepack_or_compact_client_chats_with_a_json_client(
    users: Users, followers: list[Follower], compact: bool, msgpack: bool
) -> None:
    """The other dialects are invisible to the SDK's user: the same events, in order, once —
    with the compact one, the sender's own copy is rebuilt from its short ack."""
    alice = await users.login(compact=compact, msgpack=msgpack)
    await alice.update_me(dm_policy="anyone")
    bob = await users.open_to_anyone()
    assert bob.user_id is not None and alice.user_id is not None
    conv = await alice.open_direct(bob.user_id)
    a, b = follow(followers, alice), follow(followers, bob)
    await alice.connect()
    await bob.connect()
    assert alice.connection is not None and alice.connection.short == compact
    assert alice.connection.binary == msgpack
    assert bob.connection is not None and not bob.connection.binary
    sent = await alice.send(conv, "short 你好")
    await b.until(lambda: b.texts() == ["short 你好"])
    await bob.send(conv, "plain")
    await alice.send(conv, "again")
    await a.until(lambda: a.texts() == ["short 你好", "plain", "again"])
    own = a.events[0].message
    assert own is not None and (own.sender, own.client_id) == (alice.user_id, sent.client_id)
    assert own.seq == sent.seq == 1 and own.at == sent.at
    assert_in_order_once(a.events)


async def test_send_without_socket_uses_rest_and_retry_is_not_duplicated(users: Users) -> None:
    alice = await users.open_to_anyone()
    bob = await users.open_to_anyone()
    assert bob.user_id is not None
    conv = await alice.open_direct(bob.user_id)
    first = await alice.send(conv, "once", client_id="fixed-id")
    again = await alice.send(conv, "once", client_id="fixed-id")
    assert first.seq == again.seq == 1
    await alice.connect()
    over_ws = await alice.send(conv, "once", client_id="fixed-id")
    assert over_ws.seq == 1
    assert [m.body["text"] for m in await bob.history(conv)] == ["once"]
    with pytest.raises(ApiError) as refused:
        await alice.send(conv, "another text", client_id="fixed-id")
    assert refused.value.code == "client_id_reused"


async def test_errors_are_typed(users: Users) -> None:
    alice = await users.login()
    bob = await users.login()
    assert bob.user_id is not None
    with pytest.raises(ApiError) as stranger:
        await alice.open_direct(bob.user_id)
    assert stranger.value.status == 403
    with pytest.raises(ApiError) as missing:
        await alice.history(999_999)
    assert (missing.value.status, missing.value.code) == (404, "conversation_not_found")
    with pytest.raises(ApiError) as wrong:
        await Client(users.server.base_url).me()
    assert wrong.value.status == 401
    anonymous = Client(users.server.base_url, token="not-a-token")
    users.clients.append(anonymous)
    with pytest.raises(ApiError) as bad_token:
        await anonymous.me()
    assert (bad_token.value.status, bad_token.value.code) == (401, "invalid_token")
    with pytest.raises(ApiError) as refused_ws:
        await anonymous.connect()
    assert refused_ws.value.code == "invalid_token"


async def test_events_survive_restart_exactly_once_in_order(
    server: Server, users: Users, followers: list[Follower]
) -> None:
    alice = await users.open_to_anyone()
    bob = await users.open_to_anyone()
    assert bob.user_id is not None
    conv = await alice.open_direct(bob.user_id)
    b = follow(followers, bob)
    await bob.connect()
    for i in range(3):
        await alice.send(conv, f"before {i}")
    await b.until(lambda: len(b.texts()) == 3)
    connects = bob.connection.connects if bob.connection else 0

    await asyncio.to_thread(server.restart)  # graceful: sockets closed with 1001
    assert server.last_exit == 0  # SIGTERM with open sockets stops at once, not by force
    for i in range(3):  # bob's socket is still down (backing off) while these are stored
        await alice.send(conv, f"between {i}")
    await b.until(lambda: len(b.texts()) >= 6)
    assert bob.connection is not None and bob.connection.connects > connects
    connects = bob.connection.connects

    await asyncio.to_thread(server.restart, True)  # kill -9: no close frame at all
    assert server.last_exit == -9
    for i in range(3):
        await alice.send(conv, f"after {i}")
    await b.until(lambda: len(b.texts()) >= 9)
    await asyncio.sleep(0.3)  # anything extra (a duplicate) would arrive by now

    expected = [f"{w} {i}" for w in ("before", "between", "after") for i in range(3)]
    assert b.texts() == expected
    assert_in_order_once(b.events)
    assert bob.cursor == b.events[-1].seq
    assert bob.connection.connects > connects


async def test_a_reader_that_falls_behind_resyncs_instead_of_buffering(
    server: Server, users: Users
) -> None:
    alice = await users.open_to_anyone()
    phone = users.phone()
    await users.open_to_anyone(phone)
    bob = await users.login(phone, "small", inbox_limit=2)
    assert bob.user_id is not None
    conv = await alice.open_direct(bob.user_id)
    await bob.connect()
    for i in range(10):  # nobody iterates yet: the socket's queue holds 2, drops the rest
        await alice.send(conv, f"m{i}")
    assert bob.connection is not None
    for _ in range(int(WAIT_S * 100)):
        if bob.connection.overflowed:
            break
        await asyncio.sleep(0.01)
    assert bob.connection.overflowed
    seen: list[EventView] = []
    async with asyncio.timeout(WAIT_S):
        async for event in bob.events():
            seen.append(event)
            if len(seen) == 10:
                break
    assert [e.message.body["text"] for e in seen if e.message] == [f"m{i}" for i in range(10)]
    assert_in_order_once(seen)
    assert bob.connection.connects == 1


async def test_resume_from_saved_cursor(server: Server, users: Users) -> None:
    alice = await users.open_to_anyone()
    bob = await users.open_to_anyone()
    assert bob.user_id is not None and bob.token is not None
    conv = await alice.open_direct(bob.user_id)
    for i in range(5):
        await alice.send(conv, f"m{i}")
    resumed = Client(server.base_url, bob.token, cursor=2)
    users.clients.append(resumed)
    seen: list[EventView] = []
    async with asyncio.timeout(WAIT_S):
        async for event in resumed.events():
            seen.append(event)
            if len(seen) == 3:
                break
    assert [e.seq for e in seen] == [3, 4, 5]
    assert resumed.cursor == 5
    live = Client(server.base_url, bob.token, cursor=None)
    users.clients.append(live)
    await live.connect()
    later = asyncio.create_task(anext(aiter(live.events())))
    await asyncio.sleep(0.2)
    await alice.send(conv, "live only")
    event = await asyncio.wait_for(later, WAIT_S)
    assert event.seq == 6 and event.message is not None
    assert event.message.body["text"] == "live only"


async def test_every_device_of_a_user_gets_the_events(
    users: Users, followers: list[Follower]
) -> None:
    alice = await users.open_to_anyone()
    phone = users.phone()
    laptop = await users.open_to_anyone(phone, "laptop")
    tablet = await users.login(phone, "tablet")
    phone_app = await users.login(phone, "phone")
    assert laptop.user_id == tablet.user_id == phone_app.user_id is not None
    conv = await alice.open_direct(laptop.user_id)
    devices = [follow(followers, c) for c in (laptop, tablet, phone_app)]
    for client in (laptop, tablet, phone_app):
        await client.connect()
    await alice.send(conv, "to all your devices")
    await tablet.send(conv, "sent from the tablet")
    for device in devices:
        await device.until(
            lambda d=device: d.texts() == ["to all your devices", "sent from the tablet"]
        )
    assert len({d.events[-1].seq for d in devices}) == 1
    assert sorted(d.name for d in await laptop.devices()) == ["laptop", "phone", "tablet"]


async def test_revoking_a_device_closes_its_socket_and_token(
    users: Users, followers: list[Follower]
) -> None:
    phone = users.phone()
    keeper = await users.login(phone, "keeper")
    lost = await users.login(phone, "lost")
    watcher = follow(followers, lost)
    await lost.connect()
    assert lost.device_id is not None
    await keeper.revoke(lost.device_id)
    await watcher.until(lambda: watcher.task.done())
    assert isinstance(watcher.error, DeviceRevoked)
    assert lost.connection is not None and lost.connection.close_code == 4003
    with pytest.raises(ApiError) as after:
        await lost.me()
    assert (after.value.status, after.value.code) == (401, "invalid_token")
    assert [d.name for d in await keeper.devices()] == ["keeper"]
    with pytest.raises(ApiError) as again:
        await keeper.revoke(lost.device_id)
    assert again.value.status == 404


async def test_closing_the_client_ends_its_event_iterator(
    users: Users, followers: list[Follower]
) -> None:
    alice = await users.login()
    watcher = follow(followers, alice)
    await alice.connect()
    await alice.close()
    await watcher.until(lambda: watcher.task.done())
    assert isinstance(watcher.error, Disconnected)


async def test_someone_elses_device_cannot_be_revoked(users: Users) -> None:
    alice = await users.login()
    mallory = await users.login()
    assert alice.device_id is not None
    with pytest.raises(ApiError) as refused:
        await mallory.revoke(alice.device_id)
    assert refused.value.status == 404
    assert (await alice.me()).id == alice.user_id


async def test_friends_then_a_group_through_the_sdk(
    users: Users, followers: list[Follower]
) -> None:
    alice, bob, carol = await users.login(), await users.login(), await users.login()
    assert alice.user_id and bob.user_id and carol.user_id
    for friend in (bob, carol):
        asked = await alice.request_friend(friend.user_id, "hi from alice")
        pending = await friend.friend_requests()
        assert [r["id"] for r in pending["incoming"]] == [asked["id"]]
        assert (await friend.accept_friend(asked["id"]))["state"] == "accepted"
    assert sorted(f["user"]["id"] for f in await alice.friends()) == [bob.user_id, carol.user_id]
    conv = await alice.open_direct(bob.user_id)  # friends: no dm_policy change needed
    assert (await alice.send(conv, "friends now")).seq == 1

    group = await alice.create_group("trio", [bob.user_id, carol.user_id])
    watchers = [follow(followers, c) for c in (bob, carol)]
    for client in (bob, carol):
        await client.connect()
    await bob.send(group["id"], "hello group")
    for w in watchers:
        await w.until(lambda w=w: "hello group" in w.texts(group["id"]))
    with pytest.raises(ApiError) as outsider:
        await (await users.login()).send(group["id"], "let me in")
    assert outsider.value.status in (403, 404)


async def test_pings_keep_an_idle_socket_open(fast_heartbeat_server: Server) -> None:
    pool = Users(fast_heartbeat_server)
    try:
        alice = await pool.login()
        hello = await alice.connect()
        assert hello.heartbeat == 1
        await asyncio.sleep(4.5)  # the server drops sockets silent for 3 s
        assert alice.connection is not None
        assert alice.connection.connected and alice.connection.connects == 1
    finally:
        await pool.close()


def test_importing_the_sdk_does_not_load_the_server() -> None:
    code = (
        "import sys, wanglai.client;"
        "heavy = ('sqlalchemy', 'alembic', 'asyncpg', 'wanglai.store.database',"
        " 'wanglai.services.messaging', 'wanglai.gateway.endpoint', 'aiohttp.web', 'wanglai.app');"
        "print([m for m in sys.modules if m.startswith(heavy)])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
