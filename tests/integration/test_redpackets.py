"""Red packets on both databases: sending (limits, escrow, the card, idempotency), claiming
(once each, members only, in order), a claim storm, and expiry on the manual clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from wanglai.app import Container
from wanglai.bus.local import LocalBus
from wanglai.domain import redpacket as rules
from wanglai.domain.clock import ManualClock
from wanglai.domain.errors import WanglaiError
from wanglai.services.redpackets import ClaimResult, PacketView, RedPacketService
from wanglai.settings import Settings
from wanglai.store import accounts as account_store
from wanglai.store import events as event_store
from wanglai.store import ledger
from wanglai.store import redpackets as packet_store
from wanglai.store.sql import Op, all_rows, scalar

from .conftest import Delivered, RecordingSms, World

DAY_S = 24 * 3600


def service(world: World) -> RedPacketService:
    return world.container.redpackets


async def payer(world: World, amount: int = 100_000) -> int:
    """A funded user who may pay up to 200.00 without a PIN."""
    user = (await world.user("payer")).user_id
    await world.fund(user, amount)
    await world.container.wallet.update_settings(user, None, 20_000)
    return user


async def balance(world: World, user_id: int) -> int:
    return (await world.container.wallet.balance(user_id)).balance


async def escrow(world: World) -> int:
    account = world.container.wallet.system_account(ledger.REDPACKET_ESCROW)
    found = await world.container.db.read(ledger.accounts, [account])
    return found[account].balance


async def group_with(world: World, owner: int, count: int) -> tuple[int, list[int]]:
    """A group of the owner and ``count`` others (made in the store: no login codes)."""

    def op(now: int) -> Op[list[int]]:
        ids = []
        for i in range(count):
            row, _ = yield from account_store.ensure_user(f"+86198{owner:04d}{i:04d}", "", now)
            ids.append(int(row[0]))
        return ids

    others = await world.container.db.write(op, world.clock.now_ms())
    await world.befriend(owner, *others)
    group = await world.container.groups.create(owner, "red", others)
    return group.id, others


async def direct_with(world: World, a: int, b: int) -> int:
    await world.befriend(a, b)
    return await world.container.messaging.open_direct(a, b)


async def send(
    world: World,
    sender: int,
    conv: int,
    kind: str,
    amount: Any,
    shares: int | None = None,
    key: str | None = None,
    **extra: Any,
) -> PacketView:
    key = key or f"k-{sender}-{conv}-{kind}-{amount}-{shares}-{world.clock.now_ms()}"
    return await service(world).send(sender, key, conv, kind, amount, shares, **extra)


async def claim(world: World, user_id: int, packet_id: int) -> ClaimResult:
    return await service(world).claim(user_id, packet_id)


async def counts(world: World) -> tuple[int, int, int]:
    """Packets, claims and ledger transfers stored."""

    def op() -> Op[tuple[int, int, int]]:
        packets = yield from scalar("SELECT COUNT(*) FROM red_packets")
        claims = yield from scalar("SELECT COUNT(*) FROM red_packet_claims")
        transfers = yield from scalar("SELECT COUNT(*) FROM ledger_transfers")
        return int(packets), int(claims), int(transfers)

    return await world.container.db.read(op)


def events_of(world: World, user_id: int, kind: str) -> list[dict[str, Any]]:
    out = []
    for frame in world.delivered.for_user(user_id):
        decoded = msgspec.json.decode(frame)
        if decoded.get("type") == kind:
            out.append(decoded)
    return out


async def refused(code: str, call: Any) -> WanglaiError:
    with pytest.raises(WanglaiError) as caught:
        await call
    assert caught.value.code == code, caught.value
    return caught.value


# ---------------------------------------------------------------- sending


async def test_lucky_packet_goes_to_escrow_and_every_share_once(world: World) -> None:
    sender = await payer(world, 50_000)
    conv, members = await group_with(world, sender, 5)
    packet = await send(world, sender, conv, "lucky", 1_000, 5, greeting="新年好")
    assert (packet.kind, packet.amount, packet.shares, packet.state) == ("lucky", 1_000, 5, "open")
    assert await balance(world, sender) == 49_000
    assert await escrow(world) == 1_000
    # the card is in the chat, pointing at the packet
    history = await world.container.messaging.history(members[0], conv, None, 50)
    cards = [m for m in history if m.kind == "redpacket"]
    assert len(cards) == 1 and cards[0].body["packet"] == packet.id
    assert cards[0].seq == packet.msg_seq and cards[0].body["greeting"] == "新年好"
    assert any(b'"redpacket"' in f for f in world.delivered.for_user(members[0]))

    results = [await claim(world, m, packet.id) for m in members]
    amounts = [r.claim.amount for r in results]
    assert sum(amounts) == 1_000 and min(amounts) >= 1
    assert [r.claimed_count for r in results] == [1, 2, 3, 4, 5]
    assert results[-1].state == "finished" and {r.new for r in results} == {True}
    for member, amount in zip(members, amounts, strict=True):
        assert await balance(world, member) == amount
    assert await escrow(world) == 0
    # everyone taken: the sender (who may claim in a group) finds it empty
    await refused("packet_empty", claim(world, sender, packet.id))
    view = await service(world).get(sender, packet.id)
    assert view.state == "finished" and view.claimed_amount == 1_000
    assert [(c.user, c.amount) for c in view.claims] == list(zip(members, amounts, strict=True))
    assert view.luckiest == members[amounts.index(max(amounts))]
    assert view.mine is None
    mine = await service(world).get(members[2], packet.id)
    assert mine.mine is not None and mine.mine.amount == amounts[2]
    # the claimer and the sender heard of each claim; the claimer of the money
    heard = events_of(world, sender, "redpacket.claimed")
    assert sorted(e["data"]["user"] for e in heard) == sorted(members)
    assert len(events_of(world, members[0], "redpacket.claimed")) == 1
    movement = events_of(world, members[0], "wallet.movement")
    assert [e["data"]["transfer"]["amount"] for e in movement] == [amounts[0]]


async def test_equal_split_gives_the_leftover_fen_to_the_first(world: World) -> None:
    sender = await payer(world)
    conv, members = await group_with(world, sender, 3)
    packet = await send(world, sender, conv, "equal", 1_001, 3)
    got = [(await claim(world, m, packet.id)).claim.amount for m in members]
    assert got == [334, 334, 333]
    view = await service(world).get(sender, packet.id)
    assert view.luckiest is None  # only lucky packets name one


async def test_single_packet_is_for_the_other_person(world: World) -> None:
    sender = await payer(world)
    peer = (await world.user("peer")).user_id
    conv = await direct_with(world, sender, peer)
    before = await balance(world, sender)
    await refused("invalid_packet_kind", send(world, sender, conv, "lucky", 500, 1))
    await refused("invalid_shares", send(world, sender, conv, "single", 500, 2))
    assert await counts(world) == (0, 0, 1)
    packet = await send(world, sender, conv, "single", 500)
    assert packet.shares == 1
    await refused("own_packet", claim(world, sender, packet.id))
    got = await claim(world, peer, packet.id)
    assert (got.claim.amount, got.state) == (500, "finished")
    assert await balance(world, peer) == 500
    assert await balance(world, sender) == before - 500


async def test_sender_may_claim_in_a_group(world: World) -> None:
    sender = await payer(world)
    conv, _ = await group_with(world, sender, 1)
    packet = await send(world, sender, conv, "equal", 300, 2)
    got = await claim(world, sender, packet.id)
    assert got.claim.amount == 150 and got.new
    assert await balance(world, sender) == 100_000 - 300 + 150


async def test_a_second_claim_returns_the_first(world: World) -> None:
    sender = await payer(world)
    conv, (member, _other) = await group_with(world, sender, 2)
    packet = await send(world, sender, conv, "lucky", 900, 2)
    first = await claim(world, member, packet.id)
    again = await claim(world, member, packet.id)
    assert again.claim == first.claim and not again.new and first.new
    assert await balance(world, member) == first.claim.amount
    view = await service(world).get(member, packet.id)
    assert view.claimed_count == 1


async def test_outsiders_get_404_and_learn_nothing(world: World) -> None:
    sender = await payer(world)
    conv, _ = await group_with(world, sender, 2)
    eve = (await world.user("eve")).user_id
    packet = await send(world, sender, conv, "lucky", 900, 2)
    await refused("packet_not_found", claim(world, eve, packet.id))
    await refused("packet_not_found", service(world).get(eve, packet.id))
    await refused("packet_not_found", claim(world, eve, packet.id + 1000))
    assert await balance(world, eve) == 0
    assert (await service(world).get(sender, packet.id)).claimed_count == 0
    # nor can anyone send into a chat they are not in
    await world.fund(eve, 10_000)
    await world.container.wallet.update_settings(eve, None, 20_000)
    await refused("conversation_not_found", send(world, eve, conv, "lucky", 100, 1))
    assert await balance(world, eve) == 10_000


@pytest.mark.parametrize(
    ("kind", "amount", "shares", "greeting", "code"),
    [
        ("lucky", 20_001, 2, None, "packet_too_large"),
        ("lucky", 1_000, 101, None, "too_many_shares"),
        ("lucky", 1_000, 4, None, "too_many_shares"),  # the group has 3 members
        ("lucky", 2, 3, None, "packet_too_small"),
        ("lucky", 0, 2, None, "invalid_amount"),
        ("lucky", -5, 2, None, "invalid_amount"),
        ("lucky", 1.5, 2, None, "invalid_amount"),
        ("lucky", "100", 2, None, "invalid_amount"),
        ("lucky", 10**20, 2, None, "invalid_amount"),
        ("lucky", 1_000, 0, None, "invalid_shares"),
        ("lucky", 1_000, None, None, "invalid_shares"),
        ("single", 1_000, 1, None, "invalid_packet_kind"),
        ("jackpot", 1_000, 2, None, "invalid_packet_kind"),
        ("equal", 1_000, 2, "x" * 65, "invalid_greeting"),
        ("equal", 20_000, 2, None, "insufficient_funds"),
    ],
)
async def test_each_broken_limit_is_refused_and_moves_nothing(
    world: World, kind: str, amount: Any, shares: int | None, greeting: str | None, code: str
) -> None:
    sender = await payer(world, 10_000)
    conv, others = await group_with(world, sender, 2)
    before = await counts(world)
    await refused(code, send(world, sender, conv, kind, amount, shares, greeting=greeting))
    assert await balance(world, sender) == 10_000
    assert await escrow(world) == 0
    assert await counts(world) == before
    history = await world.container.messaging.history(others[0], conv, None, 50)
    assert [m for m in history if m.kind == "redpacket"] == []


async def test_pin_and_key_are_checked_before_money_moves(world: World) -> None:
    sender = (await world.user("pinned")).user_id
    await world.fund(sender, 10_000)
    await world.container.wallet.set_pin(sender, "135790")
    conv, _ = await group_with(world, sender, 2)
    await refused("pin_required", send(world, sender, conv, "lucky", 100, 2))
    await refused("wrong_pin", send(world, sender, conv, "lucky", 100, 2, pin="000000"))
    with pytest.raises(WanglaiError) as caught:
        await service(world).send(sender, None, conv, "lucky", 100, 2, pin="135790")
    assert caught.value.code == "idempotency_key_required"
    assert await balance(world, sender) == 10_000
    packet = await send(world, sender, conv, "lucky", 100, 2, pin="135790")
    assert packet.amount == 100 and await balance(world, sender) == 9_900


async def test_send_is_idempotent(world: World) -> None:
    sender = await payer(world)
    conv, members = await group_with(world, sender, 2)
    first = await send(world, sender, conv, "lucky", 800, 2, key="same")
    again = await send(world, sender, conv, "lucky", 800, 2, key="same")
    assert again == first
    assert await balance(world, sender) == 100_000 - 800
    assert (await counts(world))[0] == 1
    history = await world.container.messaging.history(members[0], conv, None, 50)
    assert len([m for m in history if m.kind == "redpacket"]) == 1
    await refused("idempotency_key_reused", send(world, sender, conv, "lucky", 801, 2, key="same"))
    assert await balance(world, sender) == 100_000 - 800


# ---------------------------------------------------------------- expiry


async def test_expiry_returns_the_rest_to_the_sender_once(world: World) -> None:
    sender = await payer(world, 10_000)
    conv, members = await group_with(world, sender, 4)
    packet = await send(world, sender, conv, "equal", 1_000, 4)
    got = await claim(world, members[0], packet.id)
    assert got.claim.amount == 250
    world.clock.advance(DAY_S - 1)
    assert await service(world).expire() == 0
    assert await balance(world, sender) == 9_000
    world.clock.advance(1)
    # due but not yet swept: no claim gets through
    await refused("packet_expired", claim(world, members[1], packet.id))
    assert await service(world).expire() == 1
    assert await balance(world, sender) == 9_750
    assert await escrow(world) == 0
    view = await service(world).get(members[0], packet.id)
    assert (view.state, view.claimed_amount, view.mine is not None) == ("expired", 250, True)
    expired = events_of(world, sender, "redpacket.expired")
    assert [e["data"]["refunded"] for e in expired] == [750]
    assert await service(world).expire() == 0
    assert await balance(world, sender) == 9_750
    await refused("packet_expired", claim(world, members[2], packet.id))
    # the one who claimed still gets their claim back, not an error
    again = await claim(world, members[0], packet.id)
    assert again.claim == got.claim and not again.new


async def test_finished_packets_do_not_expire(world: World) -> None:
    sender = await payer(world, 10_000)
    conv, members = await group_with(world, sender, 1)
    packet = await send(world, sender, conv, "equal", 100, 1)
    await claim(world, members[0], packet.id)
    world.clock.advance(DAY_S * 2)
    assert await service(world).expire() == 0
    assert (await service(world).get(sender, packet.id)).state == "finished"
    assert await balance(world, sender) == 9_900


# ---------------------------------------------------------------- the storm


async def test_ten_thousand_concurrent_claims_on_one_packet(world: World) -> None:
    sender = await payer(world)
    conv, others = await group_with(world, sender, 499)
    everyone = [sender, *others]
    packet = await send(world, sender, conv, "lucky", 20_000, 100)
    ledger_before = (await counts(world))[2]
    attempts = [u for u in everyone for _ in range(20)]
    results = await asyncio.gather(
        *(claim(world, u, packet.id) for u in attempts), return_exceptions=True
    )
    assert len(results) == 10_000
    won = [r for r in results if isinstance(r, ClaimResult)]
    lost = [r for r in results if not isinstance(r, ClaimResult)]
    assert all(isinstance(r, WanglaiError) and r.code == "packet_empty" for r in lost), lost[:3]
    winners = {r.claim.user: r.claim for r in won}
    assert len(winners) == 100
    # every attempt of a winner got the same share; nobody got two
    assert all(r.claim == winners[r.claim.user] for r in won)
    assert sum(c.amount for c in winners.values()) == 20_000
    assert Counter(r.new for r in won)[True] == 100
    assert await escrow(world) == 0
    # one ledger transfer per share, not per attempt
    packets, claims, transfers = await counts(world)
    assert packets == 1
    assert (claims, transfers - ledger_before) == (100, 100)
    view = await service(world).get(sender, packet.id)
    assert view.state == "finished" and view.claimed_count == 100
    assert {c.user for c in view.claims} == set(winners)
    for user, made in list(winners.items())[:5]:
        assert await balance(world, user) == made.amount + (100_000 - 20_000) * (user == sender)
    # the packet is known to be finished: a late claimer is refused without a write
    writes: list[Any] = []
    db = world.container.db
    real_write = db.write

    async def counting(fn: Any, *args: Any) -> Any:
        writes.append(fn)
        return await real_write(fn, *args)

    db.write = counting  # type: ignore[method-assign]
    try:
        loser = next(u for u in everyone if u not in winners)
        await refused("packet_empty", claim(world, loser, packet.id))
        winner = next(iter(winners))
        assert (await claim(world, winner, packet.id)).claim == winners[winner]
    finally:
        db.write = real_write  # type: ignore[method-assign]
    assert writes == []


async def test_escrow_always_equals_what_open_packets_hold(world: World) -> None:
    sender = await payer(world)
    conv, members = await group_with(world, sender, 3)
    a = await send(world, sender, conv, "lucky", 600, 3)
    b = await send(world, sender, conv, "equal", 900, 3)
    await claim(world, members[0], a.id)
    await claim(world, members[1], b.id)
    held = await world.container.db.read(packet_store.open_escrow, "CNY")
    view_a = await service(world).get(sender, a.id)
    view_b = await service(world).get(sender, b.id)
    assert held == (600 - view_a.claimed_amount) + (900 - view_b.claimed_amount)
    assert await escrow(world) == held

    def claim_rows() -> Op[list[Any]]:
        rows = yield from all_rows("SELECT packet_id, user_id FROM red_packet_claims")
        return rows

    assert len(await world.container.db.read(claim_rows)) == 2
    assert view_a.state == view_b.state == rules.OPEN


@pytest.fixture
async def process_world(tmp_path: Path) -> AsyncIterator[World]:
    """SQLite with the second write process, which commits batched (portable) queries."""
    settings = Settings(
        data_dir=tmp_path, code_pepper=b"p", write_process=True, otp_sends_per_address=1000
    )
    container = Container(settings, clock=ManualClock(), bus=LocalBus(), sms=RecordingSms())
    await container.start()
    delivered = Delivered()
    container.bus.subscribe(delivered)
    try:
        yield World(container, container.clock, container.sms_channel, delivered)  # type: ignore[arg-type]
    finally:
        await container.close()


async def test_claims_through_the_write_process(process_world: World) -> None:
    world = process_world
    sender = await payer(world)
    conv, others = await group_with(world, sender, 49)
    packet = await send(world, sender, conv, "equal", 2_000, 20)
    attempts = [u for u in others for _ in range(4)]
    results = await asyncio.gather(
        *(claim(world, u, packet.id) for u in attempts), return_exceptions=True
    )
    won = {r.claim.user: r.claim.amount for r in results if isinstance(r, ClaimResult)}
    assert len(won) == 20 and set(won.values()) == {100}
    assert all(
        isinstance(r, ClaimResult) or getattr(r, "code", "") == "packet_empty" for r in results
    )
    assert await escrow(world) == 0
    assert sorted(e["data"]["user"] for e in events_of(world, sender, "redpacket.claimed")) == (
        sorted(won)
    )


# ---------------------------------------------------------------- sends in one batch


async def test_concurrent_sends_are_made_set_wise(world: World) -> None:
    """Sends that arrive together are made in one set-wise batch: retries of one key make one
    packet, a reused key with another body is refused, an overdraft or a daily cap refuses
    only itself (two packets of one payer add up), and every event seq stays gapless."""
    alice = await payer(world, 1_000)
    conv, others = await group_with(world, alice, 4)
    bob, carol = others[0], others[1]
    await world.fund(bob, 1_000)
    await world.fund(carol, 150_000)
    for user in (bob, carol):
        await world.container.wallet.update_settings(user, None, 20_000)
    daily = world.container.wallet.limits.daily_unverified
    calls = [send(world, alice, conv, "lucky", 100, 2, key="same") for _ in range(5)]
    # another body (the same amount): the sends read before they write, so on PostgreSQL's pool
    # either body may reach the writer first; whichever does makes the one packet of the key
    calls.append(send(world, alice, conv, "lucky", 100, 4, key="same"))
    calls += [send(world, alice, conv, "lucky", 300, 3, key=f"a{i}") for i in range(4)]
    calls += [send(world, bob, conv, "equal", 50, 2, key=f"b{i}") for i in range(3)]
    cap = daily // 20_000 + 1  # one more 200.00 packet than the daily cap allows
    calls += [send(world, carol, conv, "lucky", 20_000, 4, key=f"c{i}") for i in range(cap)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    same_key = outcomes[:6]
    won = [o for o in same_key if isinstance(o, PacketView)]
    lost = [o for o in same_key if not isinstance(o, PacketView)]
    assert len({o.id for o in won}) == 1, same_key
    assert [getattr(o, "code", None) for o in lost] == ["idempotency_key_reused"] * len(lost)
    # the five retries all win (the other body is refused) or all lose to the other body
    assert won == outcomes[:5] or won == [outcomes[5]], same_key
    winner = won[0]
    overdraft = outcomes[6:10]  # 1,000 - 100: three fit
    assert sum(isinstance(o, PacketView) for o in overdraft) == 3
    assert [getattr(o, "code", None) for o in overdraft].count("insufficient_funds") == 1
    assert all(isinstance(o, PacketView) for o in outcomes[10:13]), outcomes[10:13]
    capped = outcomes[13:]
    assert sum(isinstance(o, PacketView) for o in capped) == cap - 1
    assert [getattr(o, "code", None) for o in capped].count("over_daily_limit") == 1
    made = [o for o in outcomes if isinstance(o, PacketView)]
    packets = {o.id: o for o in made}
    assert len(packets) == 1 + 3 + 3 + cap - 1
    # the money is exact: out of the wallets, all of it in escrow
    assert await balance(world, alice) == 0
    assert await balance(world, bob) == 1_000 - 150
    assert await balance(world, carol) == 150_000 - daily
    assert await escrow(world) == 1_000 + 150 + daily
    assert (await counts(world))[0] == len(packets)
    # one card per packet, each pointing at its packet, as the packet says
    history = await world.container.messaging.history(others[2], conv, None, 100)
    cards = {m.body["packet"]: m for m in history if m.kind == "redpacket"}
    assert set(cards) == set(packets)
    for packet_id, packet in packets.items():
        assert cards[packet_id].seq == packet.msg_seq and cards[packet_id].sender == packet.sender
        assert await service(world).get(others[3], packet_id) == packet
    # a retry later is answered from the record, unchanged, and moves nothing
    again = await send(world, alice, conv, "lucky", 100, winner.shares, key="same")
    assert again == winner
    assert await balance(world, alice) == 0
    # every log: the sender's movement then the card, seqs gapless
    for user in (alice, bob, carol, *others[2:]):
        rows = await world.container.db.read(event_store.since, user, 0, 10_000)
        assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    alice_log = await world.container.db.read(event_store.since, alice, 0, 10_000)
    kinds = [str(r[1]) for r in alice_log if str(r[1]) in ("wallet.movement", "message")]
    sent_by_alice = sum(1 for p in packets.values() if p.sender == alice)
    assert kinds.count("wallet.movement") == sent_by_alice
    assert kinds.count("message") >= len(packets)
    # each of her packets: the money left, then its card
    after = [kinds[i + 1] for i, k in enumerate(kinds) if k == "wallet.movement"]
    assert after == ["message"] * sent_by_alice


async def test_one_batch_answers_each_send_on_its_own(world: World) -> None:
    """``send_many`` given a batch directly: a key repeated inside it makes one packet, the
    same key with another body and a stranger's packet are refused, the rest are sent."""
    alice = await payer(world, 10_000)
    conv, others = await group_with(world, alice, 2)
    outsider = await payer(world, 10_000)
    escrow_id = world.container.wallet.system_account(ledger.REDPACKET_ESCROW)
    limits = world.container.wallet.limits

    def item(sender: int, amount: int, key: str) -> packet_store.NewPacket:
        return packet_store.NewPacket(
            sender,
            conv,
            "equal",
            amount,
            "CNY",
            (amount // 2, amount - amount // 2),
            "",
            escrow_id,
            rules.PacketLimits(),
            limits,
            world.clock.now_ms(),
            key,
            f"print-{amount}",
        )

    batch = [
        item(alice, 100, "k1"),
        item(alice, 100, "k1"),
        item(alice, 300, "k1"),
        item(outsider, 100, "k1"),
        item(alice, 200, "k2"),
    ]
    done = await world.container.db.write(packet_store.send_many, batch)
    first, retry, reused, stranger, second = done
    assert isinstance(first, packet_store.SentPacket)
    assert isinstance(retry, packet_store.Replayed) and retry.packet == first.packet
    assert isinstance(reused, WanglaiError) and reused.code == "idempotency_key_reused"
    assert isinstance(stranger, WanglaiError) and stranger.code == "conversation_not_found"
    assert isinstance(second, packet_store.SentPacket)
    assert second.packet.msg_seq == first.packet.msg_seq + 1
    assert second.packet.id > first.packet.id
    assert await balance(world, alice) == 10_000 - 300
    assert await balance(world, outsider) == 10_000
    assert await escrow(world) == 300
    # the card's event reached every member, after the sender's movement event
    assert [u for u, _ in first.card.deliveries] == sorted([alice, *others])
    assert [n.kind for n, _ in first.sent] == ["wallet.movement"]
    assert first.sent[0][1][0][1] + 1 == dict(first.card.deliveries)[alice]


async def test_sends_through_the_write_process(process_world: World) -> None:
    world = process_world
    sender = await payer(world, 10_000)
    conv, others = await group_with(world, sender, 3)
    calls = [send(world, sender, conv, "lucky", 500, 3, key="same") for _ in range(3)]
    calls += [send(world, sender, conv, "equal", 400, 2, key=f"k{i}") for i in range(5)]
    outcomes = await asyncio.gather(*calls)
    assert len({o.id for o in outcomes[:3]}) == 1
    assert len({o.id for o in outcomes}) == 6
    assert await balance(world, sender) == 10_000 - 500 - 5 * 400
    assert await escrow(world) == 500 + 5 * 400
    frames = events_of(world, others[0], "message")
    cards = [f["message"]["body"]["packet"] for f in frames if f["message"]["kind"] == "redpacket"]
    assert sorted(cards) == sorted({o.id for o in outcomes})
