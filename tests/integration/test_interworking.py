"""Messaging any phone number on both databases: texts to numbers not on Wanglai, the quota,
replies from phones, STOP/START, joining later, and SMS fallback for offline users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from wanglai.app import Container
from wanglai.bus.local import LocalBus
from wanglai.carrier.sms import Inbound
from wanglai.domain.clock import ManualClock
from wanglai.domain.errors import Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from wanglai.services.accounts import Session
from wanglai.settings import Settings
from wanglai.store import accounts, interworking
from wanglai.store.sql import Op, scalar

from .conftest import Delivered, RecordingSms, World, world_with

QUOTA = 3
FALLBACK_S = 120
NUMBER = "+8613912345678"
"""Not on Wanglai (the World's own users count up from +8613800138001)."""
PLATFORM = "10690000"


@pytest.fixture
async def iw(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A World with a small SMS quota and a short fallback delay."""
    async with world_with(
        db_url, tmp_path, sms_daily_quota=QUOTA, sms_fallback_after_s=FALLBACK_S
    ) as made:
        yield made


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy (the SMS service works in tasks)."""
    for _ in range(int(seconds / 0.01)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def texts_to(world: World, phone: str) -> list[str]:
    return [text for number, text in world.sms.sent if number == phone]


async def count(world: World, sql: str, *params: object) -> int:
    def op() -> Op[int]:
        value = yield from scalar(sql, *params)
        return int(value)

    return await world.container.db.read(op)


async def text_number(world: World, name: str = "Alice") -> tuple[Session, int, int]:
    """A user who opened a conversation with NUMBER: (session, conversation, stand-in id)."""
    me = await world.user(name)
    opened = await world.container.interworking.open_by_phone(me.user_id, NUMBER)
    assert opened.sms
    return me, opened.id, opened.peer


def reply(world: World, text: str, at: int = 0) -> None:
    world.sms.inbound(Inbound(NUMBER, PLATFORM, text, at or world.clock.now_ms()))


async def test_a_message_to_a_number_not_on_wanglai_goes_out_as_sms(iw: World) -> None:
    alice, conv, peer = await text_number(iw)
    m = iw.container.messaging
    sent = await m.send(alice.user_id, conv, "c1", "text", {"text": "dinner at 7?"})
    texts = await eventually(lambda: asyncio.sleep(0, texts_to(iw, NUMBER)))
    assert texts == [
        "Alice on Wanglai: dinner at 7?\nReply to this number to answer; STOP to opt out."
    ]
    [history] = await m.history(alice.user_id, conv, None, 50)
    assert (history.seq, history.sender, history.sms) == (sent.seq, alice.user_id, "sent")
    # opening again finds the same thread; the thread lists the number
    again = await iw.container.interworking.open_by_phone(alice.user_id, "139 1234 5678")
    assert (again.id, again.peer, again.sms) == (conv, peer, True)
    [thread] = await iw.container.interworking.threads(alice.user_id)
    assert (thread.conv, thread.phone, thread.joined, thread.opted_out) == (
        conv,
        NUMBER,
        False,
        False,
    )
    quota = await iw.container.interworking.quota(alice.user_id)
    assert (quota.limit, quota.used, quota.fallback_after_s) == (QUOTA, 1, FALLBACK_S)


async def test_the_sms_says_what_other_kinds_are(iw: World) -> None:
    alice, conv, _peer = await text_number(iw, "")
    await iw.container.messaging.send(
        alice.user_id, conv, "c1", "location", {"lat": 39.9, "lon": 116.4, "label": "Tiananmen"}
    )
    texts = await eventually(lambda: asyncio.sleep(0, texts_to(iw, NUMBER)))
    assert texts[0].startswith("Someone on Wanglai: [location: Tiananmen]\n")


async def test_the_stand_in_of_a_number_is_nobody_to_anyone_else(iw: World) -> None:
    alice, conv, peer = await text_number(iw)
    bob = await iw.user("Bob")
    c = iw.container
    with pytest.raises(NotFound):
        await c.contacts.lookup(bob.user_id, NUMBER)
    assert (await c.contacts.match_phonebook(bob.user_id, [NUMBER])).matches == []
    with pytest.raises(NotFound):
        await c.contacts.profile(bob.user_id, peer)
    with pytest.raises(NotFound):
        await c.contacts.request(bob.user_id, peer)
    with pytest.raises(NotFound):
        await c.contacts.block(alice.user_id, peer)
    with pytest.raises(NotFound) as info:
        await c.messaging.open_direct(bob.user_id, peer)
    assert info.value.code == "user_not_found"
    assert await c.db.read(accounts.count_users) == 2
    assert [int(r[0]) for r in await c.db.read(accounts.list_users, 100, 0)] == [
        alice.user_id,
        bob.user_id,
    ]
    # a contact card of the stand-in is refused; no session can be had without the code
    await iw.befriend(alice.user_id, bob.user_id)
    friends = await c.messaging.open_direct(alice.user_id, bob.user_id)
    with pytest.raises(NotFound) as card:
        await c.messaging.send(alice.user_id, friends, "k1", "contact", {"user_id": peer})
    assert card.value.code == "contact_not_found"
    with pytest.raises(Invalid):
        await c.accounts.login(NUMBER, "000000", "phone")  # no code asked for
    await c.accounts.request_code(NUMBER, "10.9.9.9")
    wrong = "000000" if iw.sms.last_code(NUMBER) != "000000" else "111111"
    with pytest.raises(Unauthorized):
        await c.accounts.login(NUMBER, wrong, "phone")
    assert await count(iw, "SELECT placeholder FROM users WHERE id = ?", peer) == 1
    assert conv


async def test_the_daily_quota_refuses_and_stores_nothing(iw: World) -> None:
    alice, conv, _peer = await text_number(iw)
    m = iw.container.messaging
    for n in range(QUOTA):
        await m.send(alice.user_id, conv, f"c{n}", "text", {"text": f"note {n}"})
    with pytest.raises(RateLimited) as info:
        await m.send(alice.user_id, conv, "over", "text", {"text": "one too many"})
    assert info.value.code == "sms_quota_exceeded"
    assert len(await m.history(alice.user_id, conv, None, 50)) == QUOTA
    assert await count(iw, "SELECT COUNT(*) FROM sms_outbox WHERE purpose = 'chat'") == QUOTA
    await eventually(lambda: asyncio.sleep(0, len(texts_to(iw, NUMBER)) == QUOTA))
    # a new day (China time) brings a new quota
    iw.clock.advance(24 * 3600)
    await m.send(alice.user_id, conv, "next-day", "text", {"text": "good morning"})
    await eventually(lambda: asyncio.sleep(0, len(texts_to(iw, NUMBER)) == QUOTA + 1))


async def test_a_reply_from_the_phone_lands_in_the_conversation(iw: World) -> None:
    alice, conv, peer = await text_number(iw)
    m = iw.container.messaging
    await m.send(alice.user_id, conv, "c1", "text", {"text": "are you coming?"})
    reply(iw, "yes, on my way", at=1)
    reply(iw, "yes, on my way", at=1)  # the SMSC delivered it twice: stored once

    async def arrived() -> Any:
        history = await m.history(alice.user_id, conv, None, 50)
        return history if len(history) == 2 else None

    history = await eventually(arrived)
    assert (history[0].sender, history[0].body) == (peer, {"text": "yes, on my way"})
    await asyncio.sleep(0.05)
    assert len(await m.history(alice.user_id, conv, None, 50)) == 2
    frames = [msgspec.json.decode(f) for f in iw.delivered.for_user(alice.user_id)]
    assert any(f.get("message", {}).get("sender") == peer for f in frames)
    # the reply is not texted back to the phone
    assert len(texts_to(iw, NUMBER)) == 1


async def test_a_number_texted_by_several_answers_the_latest(iw: World) -> None:
    alice, alice_conv, peer = await text_number(iw, "Alice")
    bob, bob_conv, bob_peer = await text_number(iw, "Bob")
    assert bob_peer == peer and bob_conv != alice_conv
    m = iw.container.messaging
    await m.send(alice.user_id, alice_conv, "a1", "text", {"text": "from alice"})
    iw.clock.advance(1)
    await m.send(bob.user_id, bob_conv, "b1", "text", {"text": "from bob"})
    reply(iw, "hi bob")

    async def in_bob() -> Any:
        return len(await m.history(bob.user_id, bob_conv, None, 50)) == 2

    await eventually(in_bob)
    iw.clock.advance(1)
    await m.send(alice.user_id, alice_conv, "a2", "text", {"text": "alice again"})
    reply(iw, "hi alice")

    async def in_alice() -> Any:
        return len(await m.history(alice.user_id, alice_conv, None, 50)) == 3

    await eventually(in_alice)
    assert len(await m.history(bob.user_id, bob_conv, None, 50)) == 2


async def test_stop_and_start(iw: World) -> None:
    alice, conv, _peer = await text_number(iw)
    m = iw.container.messaging
    await m.send(alice.user_id, conv, "c1", "text", {"text": "hello"})
    reply(iw, " Stop. ")
    await eventually(lambda: asyncio.sleep(0, len(texts_to(iw, NUMBER)) == 2))
    assert "no more texts" in texts_to(iw, NUMBER)[1]
    outbox = await count(iw, "SELECT COUNT(*) FROM sms_outbox")
    with pytest.raises(Forbidden) as info:
        await m.send(alice.user_id, conv, "c2", "text", {"text": "still there?"})
    assert info.value.code == "sms_opted_out"
    assert len(await m.history(alice.user_id, conv, None, 50)) == 1
    assert await count(iw, "SELECT COUNT(*) FROM sms_outbox") == outbox
    # a new thread to an opted-out number is refused; STOP again sends no second confirmation
    carol = await iw.user("Carol")
    with pytest.raises(Forbidden):
        await iw.container.interworking.open_by_phone(carol.user_id, NUMBER)
    assert await count(iw, "SELECT COUNT(*) FROM sms_threads") == 1
    reply(iw, "退订")
    [thread] = await iw.container.interworking.threads(alice.user_id)
    assert thread.opted_out
    reply(iw, "START")
    await eventually(lambda: asyncio.sleep(0, len(texts_to(iw, NUMBER)) == 3))
    assert "on again" in texts_to(iw, NUMBER)[2]
    await m.send(alice.user_id, conv, "c3", "text", {"text": "welcome back"})
    await eventually(lambda: asyncio.sleep(0, len(texts_to(iw, NUMBER)) == 4))
    assert len([t for t in texts_to(iw, NUMBER) if "no more texts" in t]) == 1


async def test_when_the_number_joins_the_conversation_is_there(iw: World) -> None:
    alice, conv, peer = await text_number(iw)
    m = iw.container.messaging
    await m.send(alice.user_id, conv, "c1", "text", {"text": "try Wanglai"})
    reply(iw, "ok, joining")

    async def replied() -> Any:
        return len(await m.history(alice.user_id, conv, None, 50)) == 2

    await eventually(replied)
    joined = await iw.login(NUMBER, "Dan")
    assert joined.user_id == peer
    assert await iw.container.db.read(accounts.count_users) == 2
    [view] = await m.conversations(joined.user_id)
    assert (view.id, view.peer) == (conv, alice.user_id)
    history = await m.history(joined.user_id, conv, None, 50)
    assert [h.body["text"] for h in history] == ["ok, joining", "try Wanglai"]
    page = await iw.container.sync.since(joined.user_id, 0)
    assert [e.message.seq for e in page.events if e.message] == [1, 2]
    # from now on it is an ordinary conversation: both write, nothing is texted
    sent_before = len(iw.sms.sent)
    await m.send(alice.user_id, conv, "c2", "text", {"text": "welcome!"})
    await m.send(joined.user_id, conv, "d1", "text", {"text": "thanks"})
    assert len(await m.history(alice.user_id, conv, None, 50)) == 4
    await asyncio.sleep(0.05)
    assert len(iw.sms.sent) == sent_before
    found = await iw.container.contacts.lookup(alice.user_id, NUMBER)
    assert found.id == peer
    [thread] = await iw.container.interworking.threads(alice.user_id)
    assert thread.joined


async def test_a_registered_number_opens_the_ordinary_conversation(iw: World) -> None:
    alice, bob = await iw.user("Alice"), await iw.user("Bob")
    bob_phone = str((await iw.container.accounts.me(bob)).phone)
    i = iw.container.interworking
    with pytest.raises(Forbidden) as info:
        await i.open_by_phone(alice.user_id, bob_phone)
    assert info.value.code == "not_friends"  # bob's DM policy applies
    await iw.befriend(alice.user_id, bob.user_id)
    opened = await i.open_by_phone(alice.user_id, bob_phone)
    assert (opened.peer, opened.sms) == (bob.user_id, False)
    assert opened.id == await iw.container.messaging.open_direct(alice.user_id, bob.user_id)
    with pytest.raises(Invalid) as own:
        await i.open_by_phone(alice.user_id, str((await iw.container.accounts.me(alice)).phone))
    assert own.value.code == "cannot_message_self"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("12345", "invalid_phone"),
        ("+19005551234", "sms_number_blocked"),  # US premium rate
        ("+864001234567", "sms_number_blocked"),  # CN 400 shared cost
        ("+868001234567", "sms_number_blocked"),  # CN 800 toll free (blocked prefix)
        ("+862161234567", "sms_number_not_mobile"),  # a Shanghai fixed line
    ],
)
async def test_numbers_that_may_not_be_texted(iw: World, raw: str, code: str) -> None:
    alice = await iw.user("Alice")
    users = await count(iw, "SELECT COUNT(*) FROM users")
    with pytest.raises(Invalid) as info:
        await iw.container.interworking.open_by_phone(alice.user_id, raw)
    assert info.value.code == code
    assert await count(iw, "SELECT COUNT(*) FROM users") == users
    assert await count(iw, "SELECT COUNT(*) FROM sms_threads") == 0
    assert await count(iw, "SELECT COUNT(*) FROM rate_hits WHERE bucket LIKE 'lookup:%'") == 0


async def offline_friends(world: World) -> tuple[Session, Session, int, str]:
    alice, bob = await world.user("Alice"), await world.user("Bob")
    await world.befriend(alice.user_id, bob.user_id)
    conv = await world.container.messaging.open_direct(alice.user_id, bob.user_id)
    bob_phone = str((await world.container.accounts.me(bob)).phone)
    return alice, bob, conv, bob_phone


async def test_a_message_nobody_received_falls_back_to_sms(iw: World) -> None:
    alice, _bob, conv, bob_phone = await offline_friends(iw)
    m = iw.container.messaging
    i = iw.container.interworking
    sent = await m.send(alice.user_id, conv, "c1", "text", {"text": "call me"}, sms_fallback=True)
    await m.send(alice.user_id, conv, "c2", "text", {"text": "no fallback for this one"})
    plain, waiting = await m.history(alice.user_id, conv, None, 50)
    assert (waiting.sms, plain.sms) == ("waiting", None)
    iw.clock.advance(FALLBACK_S - 1)
    assert await i.sweep() == 0
    iw.clock.advance(1)
    assert await i.sweep() == 1
    texts = await eventually(lambda: asyncio.sleep(0, texts_to(iw, bob_phone)[1:]))
    assert texts == ["Alice on Wanglai: call me\nOpen Wanglai to reply. STOP to opt out."]
    [first] = [h for h in await m.history(alice.user_id, conv, None, 50) if h.seq == sent.seq]
    assert first.sms == "sent"
    page = await iw.container.sync.since(alice.user_id, 0)
    [event] = [e for e in page.events if e.type == "message.sms"]
    assert event.data == {"conv": conv, "seq": sent.seq, "via": "fallback", "state": "sent"}
    # the receipt: "delivered as SMS", told to the sender
    outgoing = [o for o in iw.sms.submitted if o.msisdn == bob_phone][-1]
    index = iw.sms.submitted.index(outgoing) + 1
    iw.sms.receipt(f"rec-{outgoing.id}-{index}")

    async def delivered() -> Any:
        history = await m.history(alice.user_id, conv, None, 50)
        return next(h for h in history if h.seq == sent.seq).sms == "delivered"

    await eventually(delivered)
    page = await iw.container.sync.since(alice.user_id, 0)
    states = [e.data["state"] for e in page.events if e.type == "message.sms" and e.data]
    assert states == ["sent", "delivered"]
    frames = [msgspec.json.decode(f) for f in iw.delivered.for_user(alice.user_id)]
    assert [f["data"]["state"] for f in frames if f.get("type") == "message.sms"] == [
        "sent",
        "delivered",
    ]
    assert await i.sweep() == 0  # nothing is texted twice
    assert (await i.quota(alice.user_id)).used == 1


async def test_a_message_received_in_time_is_not_texted(iw: World) -> None:
    alice, bob, conv, bob_phone = await offline_friends(iw)
    m = iw.container.messaging
    sent = await m.send(alice.user_id, conv, "c1", "text", {"text": "hi"}, sms_fallback=True)
    await m.mark_delivered(bob.user_id, conv, sent.seq)
    iw.clock.advance(FALLBACK_S)
    assert await iw.container.interworking.sweep() == 1
    await asyncio.sleep(0.05)
    assert texts_to(iw, bob_phone)[1:] == []
    assert [h.sms for h in await m.history(alice.user_id, conv, None, 50)] == [None]
    assert await count(iw, "SELECT COUNT(*) FROM sms_outbox WHERE purpose = 'fallback'") == 0


async def test_a_fallback_that_may_not_go_is_skipped_and_told(iw: World) -> None:
    alice, _bob, conv, bob_phone = await offline_friends(iw)
    m = iw.container.messaging
    sent = await m.send(alice.user_id, conv, "c1", "text", {"text": "hi"}, sms_fallback=True)
    iw.sms.inbound(Inbound(bob_phone, PLATFORM, "STOP", iw.clock.now_ms()))
    await eventually(lambda: asyncio.sleep(0, len(texts_to(iw, bob_phone)) == 2))
    iw.clock.advance(FALLBACK_S)
    assert await iw.container.interworking.sweep() == 1
    page = await iw.container.sync.since(alice.user_id, 0)
    [event] = [e for e in page.events if e.type == "message.sms"]
    assert event.data == {
        "conv": conv,
        "seq": sent.seq,
        "via": "fallback",
        "reason": "sms_opted_out",
        "state": "skipped",
    }
    assert len(texts_to(iw, bob_phone)) == 2  # the code and the STOP confirmation only


async def test_bad_fallback_requests_change_nothing(iw: World) -> None:
    alice, _bob, conv, _phone = await offline_friends(iw)
    m = iw.container.messaging
    carol = await iw.user("Carol")
    await iw.befriend(alice.user_id, carol.user_id)
    group = await iw.container.groups.create(alice.user_id, "trip", [carol.user_id])
    with pytest.raises(Invalid) as info:
        await m.send(alice.user_id, group.id, "g1", "text", {"text": "hi"}, sms_fallback=True)
    assert info.value.code == "sms_fallback_direct_only"
    with pytest.raises(Invalid) as bad:
        await m.send(alice.user_id, conv, "c1", "text", {"text": "hi"}, sms_fallback="yes")
    assert bad.value.code == "invalid_sms_fallback"
    assert await count(iw, "SELECT COUNT(*) FROM sms_messages") == 0
    assert await count(iw, "SELECT COUNT(*) FROM messages WHERE conv_id = ?", conv) == 0


async def test_stand_in_rows_keep_their_states_in_the_store(iw: World) -> None:
    """The store's view of a thread: last texted time routes replies."""
    alice, conv, peer = await text_number(iw)
    assert await iw.container.db.read(interworking.route, NUMBER) is None  # never texted
    await iw.container.messaging.send(alice.user_id, conv, "c1", "text", {"text": "x"})
    assert await iw.container.db.read(interworking.route, NUMBER) == (conv, peer)


@pytest.fixture
async def process_iw(tmp_path: Path) -> AsyncIterator[World]:
    """SQLite with message batches committed by the second write process."""
    settings = Settings(
        data_dir=tmp_path,
        code_pepper=b"p",
        write_process=True,
        sms_daily_quota=1,
        sms_fallback_after_s=FALLBACK_S,
    )
    clock = ManualClock()
    sms = RecordingSms()
    container = Container(settings, clock=clock, bus=LocalBus(), sms=sms)
    await container.start()
    delivered = Delivered()
    container.bus.subscribe(delivered)
    try:
        yield World(container, clock, sms, delivered)
    finally:
        await container.close()


async def test_texting_from_the_write_process(process_iw: World) -> None:
    """The write process decides and queues the SMS as the in-process writer does."""
    world = process_iw
    alice, conv, _peer = await text_number(world)
    m = world.container.messaging
    await m.send(alice.user_id, conv, "c1", "text", {"text": "from the other process"})
    await eventually(lambda: asyncio.sleep(0, texts_to(world, NUMBER)))
    with pytest.raises(RateLimited):
        await m.send(alice.user_id, conv, "c2", "text", {"text": "over"})
    _, bob, direct, _bob_phone = await offline_friends(world)
    sent = await m.send(bob.user_id, direct, "b1", "text", {"text": "x"}, sms_fallback=True)
    [view] = await m.history(bob.user_id, direct, None, 50)
    assert (view.seq, view.sms) == (sent.seq, "waiting")
