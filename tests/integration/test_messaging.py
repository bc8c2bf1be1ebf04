"""Direct messaging on both databases: send, retry, history, recall, edit, read, sync."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from wanglai.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound, TooLarge
from wanglai.services.accounts import Session

from .conftest import World


async def friends_chat(world: World) -> tuple[Session, Session, int]:
    """Alice and Bob, friends, in their direct conversation."""
    alice, bob = await world.user(), await world.user()
    await world.befriend(alice.user_id, bob.user_id)
    conv = await world.container.messaging.open_direct(alice.user_id, bob.user_id)
    return alice, bob, conv


async def test_send_reaches_both_logs_once(world: World) -> None:
    alice, bob = await world.user("alice"), await world.user("bob")
    await world.befriend(alice.user_id, bob.user_id)
    m = world.container.messaging
    conv = await m.open_direct(alice.user_id, bob.user_id)
    sent = await m.send(alice.user_id, conv, "c1", "text", {"text": "hello bob"})
    again = await m.send(alice.user_id, conv, "c1", "text", {"text": "hello bob"})
    assert again.seq == sent.seq == 1
    page = await world.container.sync.since(bob.user_id, 0)
    kinds = [(e.type, e.message.seq if e.message else None) for e in page.events]
    assert kinds == [("message", 1)]
    assert page.events[0].message is not None
    assert page.events[0].message.body == {"text": "hello bob"}
    frames = world.delivered.for_user(bob.user_id)
    assert len(frames) == 1
    frame = msgspec.json.decode(frames[0])
    assert frame["t"] == "event" and frame["seq"] == page.events[0].seq
    assert frame["message"]["body"]["text"] == "hello bob"


async def test_client_id_reuse_with_other_body_is_refused(world: World) -> None:
    alice, _bob, conv = await friends_chat(world)
    m = world.container.messaging
    await m.send(alice.user_id, conv, "c1", "text", {"text": "one"})
    with pytest.raises(Conflict):
        await m.send(alice.user_id, conv, "c1", "text", {"text": "two"})
    history = await m.history(alice.user_id, conv, None, 50)
    assert [h.body["text"] for h in history] == ["one"]


async def test_strangers_need_permission(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    m = world.container.messaging
    with pytest.raises(Forbidden) as info:
        await m.open_direct(alice.user_id, bob.user_id)
    assert info.value.code == "not_friends"
    await world.container.accounts.update_profile(bob, dm_policy="anyone")
    conv = await m.open_direct(alice.user_id, bob.user_id)
    await m.send(alice.user_id, conv, "c1", "text", {"text": "hi"})
    await world.container.accounts.update_profile(bob, dm_policy="friends")
    with pytest.raises(Forbidden):
        await m.send(alice.user_id, conv, "c2", "text", {"text": "again"})
    assert len(await m.history(bob.user_id, conv, None, 50)) == 1


async def test_outsider_cannot_read_or_write(world: World) -> None:
    alice, bob, eve = await world.user(), await world.user(), await world.user()
    await world.befriend(alice.user_id, bob.user_id)
    m = world.container.messaging
    conv = await m.open_direct(alice.user_id, bob.user_id)
    sent = await m.send(alice.user_id, conv, "c1", "text", {"text": "secret"})
    with pytest.raises(NotFound):
        await m.history(eve.user_id, conv, None, 50)
    with pytest.raises(NotFound):
        await m.send(eve.user_id, conv, "e1", "text", {"text": "let me in"})
    with pytest.raises(NotFound):
        await m.recall(eve.user_id, conv, sent.seq)
    with pytest.raises(NotFound):
        await m.edit(eve.user_id, conv, sent.seq, {"text": "x"})
    with pytest.raises(NotFound):
        await m.mark_read(eve.user_id, conv, 1)
    assert await m.search(eve.user_id, "secret", None, 10) == []
    assert (await world.container.sync.since(eve.user_id, 0)).events == []


async def test_recall_and_edit_windows(world: World) -> None:
    alice, bob, conv = await friends_chat(world)
    m = world.container.messaging
    first = await m.send(alice.user_id, conv, "c1", "text", {"text": "typo"})
    edited = await m.edit(alice.user_id, conv, first.seq, {"text": "fixed"})
    assert edited.edited_at is not None and edited.body == {"text": "fixed"}
    with pytest.raises(Forbidden):
        await m.recall(bob.user_id, conv, first.seq)
    recalled = await m.recall(alice.user_id, conv, first.seq)
    assert recalled.recalled and recalled.body == {}
    late = await m.send(alice.user_id, conv, "c2", "text", {"text": "late"})
    world.clock.advance(121)
    with pytest.raises(Gone):
        await m.recall(alice.user_id, conv, late.seq)
    world.clock.advance(24 * 3600)
    with pytest.raises(Gone):
        await m.edit(alice.user_id, conv, late.seq, {"text": "too late"})
    page = await world.container.sync.since(bob.user_id, 0)
    assert [e.type for e in page.events] == [
        "message",
        "message.edit",
        "message.recall",
        "message",
    ]
    # sync shows the current state of a message: the recalled one is a tombstone
    assert page.events[0].message is not None and page.events[0].message.recalled


async def test_read_pointer_and_unread(world: World) -> None:
    alice, bob, conv = await friends_chat(world)
    m = world.container.messaging
    for i in range(3):
        await m.send(alice.user_id, conv, f"c{i}", "text", {"text": f"m{i}"})
    [view] = await m.conversations(bob.user_id)
    assert view.unread == 3 and view.last is not None and view.last.body == {"text": "m2"}
    assert await m.mark_read(bob.user_id, conv, 2) == 2
    assert await m.mark_read(bob.user_id, conv, 99) == 3
    [view] = await m.conversations(bob.user_id)
    assert view.unread == 0
    receipts = [
        e for e in (await world.container.sync.since(alice.user_id, 0)).events if e.type == "read"
    ]
    assert receipts and receipts[-1].data == {"conv": conv, "user": bob.user_id, "seq": 3}


async def test_bad_messages_change_nothing(world: World) -> None:
    alice, bob, conv = await friends_chat(world)
    m = world.container.messaging
    bad = [
        ("text", {"text": ""}),
        ("text", {"text": "x" * 4001}),
        ("text", {"text": 5}),
        ("nope", {"text": "x"}),
        ("image", {"media": "not-a-hash"}),
        ("location", {"lat": 91, "lon": 0}),
        ("text", {"text": "hi", "mentions": ["all"]}),
    ]
    for kind, body in bad:
        with pytest.raises((Invalid, Forbidden, TooLarge)):
            await m.send(alice.user_id, conv, "x", kind, body)
    with pytest.raises(NotFound):
        await m.send(alice.user_id, conv, "x", "text", {"text": "hi"}, reply_to=42)
    assert await m.history(alice.user_id, conv, None, 50) == []
    assert (await world.container.sync.since(bob.user_id, 0)).events == []


async def test_history_pages_backwards_and_search(world: World) -> None:
    alice, bob, conv = await friends_chat(world)
    m = world.container.messaging
    for i in range(1, 8):
        await m.send(alice.user_id, conv, f"c{i}", "text", {"text": f"note {i} Apple"})
    page1 = await m.history(bob.user_id, conv, None, 3)
    page2 = await m.history(bob.user_id, conv, page1[-1].seq, 3)
    assert [x.seq for x in page1] == [7, 6, 5] and [x.seq for x in page2] == [4, 3, 2]
    found = await m.search(bob.user_id, "apple", None, 10)
    assert len(found) == 7
    assert [x.seq for x in await m.search(bob.user_id, "note 3", conv, 10)] == [3]


async def test_sync_pages_without_gaps(world: World) -> None:
    alice, bob, conv = await friends_chat(world)
    m = world.container.messaging
    for i in range(25):
        await m.send(alice.user_id, conv, f"c{i}", "text", {"text": str(i)})
    cursor, seen = 0, []
    while True:
        page = await world.container.sync.since(bob.user_id, cursor, limit=10)
        seen.extend(e.seq for e in page.events)
        cursor = page.next
        if not page.more:
            break
    assert seen == list(range(1, 26))


async def test_concurrent_sends_batch_without_losing_or_doubling(world: World) -> None:
    """Sends issued together are committed together; each keeps its own outcome."""
    alice, bob, eve = await world.user(), await world.user(), await world.user()
    await world.befriend(alice.user_id, bob.user_id)
    m = world.container.messaging
    conv = await m.open_direct(alice.user_id, bob.user_id)
    sizes: list[int] = []
    world.container.db.on_batch(lambda size, _s: sizes.append(size))
    sends = [m.send(alice.user_id, conv, f"a{i}", "text", {"text": f"a{i}"}) for i in range(50)]
    sends += [m.send(bob.user_id, conv, f"b{i}", "text", {"text": f"b{i}"}) for i in range(50)]
    sends.append(m.send(eve.user_id, conv, "e", "text", {"text": "intruder"}))
    sends.append(m.send(alice.user_id, conv, "a7", "text", {"text": "a7"}))  # a retry
    sends.append(m.send(alice.user_id, conv, "x", "text", {"text": "x"}, reply_to=999))
    results = await asyncio.gather(*sends, return_exceptions=True)
    assert max(sizes) > 1, "the writer should have batched concurrent sends"
    assert isinstance(results[100], NotFound) and isinstance(results[102], NotFound)
    stored = [r for r in results[:100]]
    assert all(not isinstance(r, BaseException) for r in stored)
    assert sorted(r.seq for r in stored) == list(range(1, 101))  # type: ignore[union-attr]
    assert results[101].seq == results[7].seq  # type: ignore[union-attr]
    page = await world.container.sync.since(bob.user_id, 0, limit=500)
    assert [e.message.seq for e in page.events if e.message] == list(range(1, 101))
    assert [e.seq for e in page.events] == list(range(1, 101))
    # per-sender order is kept: a message sent later gets a later seq
    a_seqs = [r.seq for r in stored[:50]]  # type: ignore[union-attr]
    assert a_seqs == sorted(a_seqs)


async def test_reply_to_a_message_in_the_same_batch(world: World) -> None:
    alice, bob, conv = await friends_chat(world)
    m = world.container.messaging
    first, reply = await asyncio.gather(
        m.send(alice.user_id, conv, "q", "text", {"text": "question"}),
        m.send(bob.user_id, conv, "r", "text", {"text": "answer"}, reply_to=1),
    )
    assert first.seq == 1 and reply.reply_to == 1 and reply.seq == 2


async def test_delivered_receipts(world: World) -> None:
    alice, bob, conv = await friends_chat(world)
    m = world.container.messaging
    for i in range(3):
        await m.send(alice.user_id, conv, f"c{i}", "text", {"text": f"m{i}"})
    assert await m.mark_delivered(bob.user_id, conv, 2) == 2
    assert await m.mark_delivered(bob.user_id, conv, 1) == 2  # never backwards
    [view] = await m.conversations(alice.user_id)
    assert (view.peer_delivered_seq, view.peer_read_seq) == (2, 0)
    assert await m.mark_read(bob.user_id, conv, 3) == 3  # reading implies delivery
    [view] = await m.conversations(alice.user_id)
    assert (view.peer_delivered_seq, view.peer_read_seq) == (3, 3)
    alice_events = (await world.container.sync.since(alice.user_id, 0)).events
    receipts = [(e.type, e.data) for e in alice_events if e.type in ("delivered", "read")]
    assert receipts == [
        ("delivered", {"conv": conv, "user": bob.user_id, "seq": 2}),
        ("read", {"conv": conv, "user": bob.user_id, "seq": 3}),
    ]
    bob_events = (await world.container.sync.since(bob.user_id, 0)).events
    assert [e.type for e in bob_events if e.type in ("delivered", "read")] == ["read"]
    eve = await world.user()
    with pytest.raises(NotFound):
        await m.mark_delivered(eve.user_id, conv, 1)
    with pytest.raises(Invalid):
        await m.mark_delivered(bob.user_id, conv, 0)


async def test_mentions_cards_and_edits_are_checked(world: World) -> None:
    alice, bob, eve = await world.user(), await world.user(), await world.user()
    await world.befriend(alice.user_id, bob.user_id)
    m = world.container.messaging
    conv = await m.open_direct(alice.user_id, bob.user_id)
    ok = await m.send(
        alice.user_id, conv, "m1", "text", {"text": "hi @bob", "mentions": [bob.user_id]}
    )
    assert ok.body["mentions"] == [bob.user_id]
    with pytest.raises(Invalid) as info:
        await m.send(alice.user_id, conv, "m2", "text", {"text": "@eve", "mentions": [eve.user_id]})
    assert info.value.code == "mention_not_member"
    with pytest.raises(Forbidden):
        await m.edit(alice.user_id, conv, ok.seq, {"text": "@all", "mentions": ["all"]})
    card = await m.send(alice.user_id, conv, "c1", "contact", {"user_id": eve.user_id})
    assert card.body == {"user_id": eve.user_id}
    with pytest.raises(NotFound) as info:
        await m.send(alice.user_id, conv, "c2", "contact", {"user_id": 424242})
    assert info.value.code == "contact_not_found"
    assert [x.seq for x in await m.history(bob.user_id, conv, None, 10)] == [2, 1]
