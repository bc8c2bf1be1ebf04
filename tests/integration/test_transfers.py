"""The wallet core and transfers in chat, on both databases: balances, statements, the PIN and
its lock, limits, transfers accepted, declined and returned, and idempotent retries."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from wanglai.app import Container
from wanglai.bus.local import LocalBus
from wanglai.cli.admin import admin_app
from wanglai.domain.clock import ManualClock
from wanglai.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound, RateLimited
from wanglai.domain.ledger import InsufficientFunds
from wanglai.services.transfers import ChatTransferView, TransferService
from wanglai.services.wallet import WalletService
from wanglai.settings import Settings
from wanglai.store import accounts, events
from wanglai.store import transfers as transfer_store

from ..conftest import run_async
from .conftest import RecordingSms, World

PIN = "246810"
HOUR = 3600
_keys = itertools.count(1)


def wallet(world: World) -> WalletService:
    return world.container.wallet


def transfers(world: World) -> TransferService:
    return world.container.transfers


def key() -> str:
    return f"key-{next(_keys)}"


async def balance(world: World, user_id: int) -> tuple[int, int]:
    view = await wallet(world).balance(user_id)
    return view.balance, view.available


async def log_of(world: World, user_id: int) -> list[tuple[str, Any]]:
    page = await world.container.sync.since(user_id, 0)
    return [(e.type, e.data if e.message is None else e.message) for e in page.events]


async def payer(world: World, amount: int = 10_000) -> int:
    """A user with ``amount`` in their wallet and the PIN set."""
    user = await world.user()
    await world.fund(user.user_id, amount)
    await wallet(world).set_pin(user.user_id, PIN)
    return user.user_id


async def friends(world: World, amount: int = 10_000) -> tuple[int, int]:
    alice = await payer(world, amount)
    bob = (await world.user()).user_id
    await world.befriend(alice, bob)
    return alice, bob


async def send(world: World, sender: int, to: int, amount: int, **kw: Any) -> ChatTransferView:
    kw.setdefault("pin", PIN)
    kw.setdefault("key", key())
    return await transfers(world).send(sender, to, amount, **kw)


# ------------------------------------------------------------------ balance and statement


async def test_a_new_user_has_an_empty_wallet(world: World) -> None:
    user = await world.user()
    view = await wallet(world).balance(user.user_id)
    assert (view.balance, view.available, view.pin_set, view.verified) == (0, 0, False, False)
    assert view.limits["per_payment"] == wallet(world).limits.per_payment_unverified
    assert (await wallet(world).statement(user.user_id)).transfers == []


async def test_statement_pages_newest_first_and_filters(world: World) -> None:
    alice, bob = await friends(world, 1_000)
    world.clock.advance(10)
    t1 = world.clock.now_ms()
    await world.fund(alice, 2_000)
    world.clock.advance(10)
    t2 = world.clock.now_ms()
    sent = await send(world, alice, bob, 300)
    await transfers(world).accept(bob, sent.id, key())
    page = await wallet(world).statement(alice, limit=2)
    assert [(t.kind, t.state, t.direction) for t in page.transfers] == [
        ("chat_transfer", "posted", "out"),
        ("chat_transfer", "pending", "out"),
    ]
    assert page.transfers[0].pending_id == sent.id == page.transfers[1].id
    assert page.next_before == page.transfers[1].id
    rest = await wallet(world).statement(alice, before=page.next_before, limit=2)
    assert [(t.kind, t.amount, t.direction) for t in rest.transfers] == [
        ("topup", 2_000, "in"),
        ("topup", 1_000, "in"),
    ]
    last = await wallet(world).statement(alice, before=rest.next_before, limit=2)
    assert last.transfers == [] and last.next_before is None
    topups = await wallet(world).statement(alice, kinds=["topup"])
    assert [t.amount for t in topups.transfers] == [2_000, 1_000]
    assert topups.next_before is None
    between = await wallet(world).statement(alice, since_ms=t1, until_ms=t2)
    assert [(t.kind, t.amount) for t in between.transfers] == [("topup", 2_000)]
    received = await wallet(world).statement(bob)
    assert [(t.state, t.direction) for t in received.transfers] == [
        ("posted", "in"),
        ("pending", "in"),
    ]
    assert await balance(world, alice) == (2_700, 2_700)
    assert await balance(world, bob) == (300, 300)
    with pytest.raises(Invalid):
        await wallet(world).statement(alice, limit=0)


# ------------------------------------------------------------------ PIN and limits


async def test_pin_set_change_and_wrong_pin_lock(world: World) -> None:
    alice, bob = await friends(world, 5_000)
    with pytest.raises(Invalid) as refused:
        await wallet(world).set_pin(alice, "135790")  # changing needs the current one
    assert refused.value.code == "pin_required"
    await wallet(world).set_pin(alice, "135790", current=PIN)
    with pytest.raises(Forbidden) as wrong:
        await send(world, alice, bob, 100, pin=PIN)  # the old PIN no longer works
    assert wrong.value.code == "wrong_pin"
    for _ in range(3):
        with pytest.raises(Forbidden):
            await send(world, alice, bob, 100, pin="000001")
    with pytest.raises(RateLimited) as locked:
        await send(world, alice, bob, 100, pin="000001")  # the fifth wrong try locks
    assert locked.value.code == "payments_locked"
    with pytest.raises(RateLimited) as still:
        await send(world, alice, bob, 100, pin="135790")  # even with the right PIN
    assert still.value.code == "payments_locked"
    with pytest.raises(RateLimited):
        await wallet(world).set_pin(alice, "975310", current="135790")
    assert await balance(world, alice) == (5_000, 5_000)
    world.clock.advance(3 * HOUR - 1)
    with pytest.raises(RateLimited):
        await send(world, alice, bob, 100, pin="135790")
    world.clock.advance(1)
    sent = await send(world, alice, bob, 100, pin="135790")
    assert sent.state == "pending"
    assert await balance(world, alice) == (5_000, 4_900)


async def test_payments_need_a_pin_above_the_pin_free_amount(world: World) -> None:
    alice, bob = await friends(world, 5_000)
    with pytest.raises(Invalid) as refused:
        await send(world, alice, bob, 1, pin=None)
    assert refused.value.code == "pin_required"
    view = await wallet(world).update_settings(alice, None, 500)
    assert view.pin_free_limit == 500
    await send(world, alice, bob, 500, pin=None)
    with pytest.raises(Invalid) as over:
        await send(world, alice, bob, 501, pin=None)
    assert over.value.code == "pin_required"
    with pytest.raises(Invalid) as too_high:
        await wallet(world).update_settings(alice, None, wallet(world).limits.pin_free_max + 1)
    assert too_high.value.code == "invalid_pin_free_limit"
    assert await balance(world, alice) == (5_000, 4_500)


async def test_a_user_without_a_pin_must_set_one(world: World) -> None:
    bob = (await world.user()).user_id
    alice = (await world.user()).user_id
    await world.befriend(alice, bob)
    await world.fund(alice, 1_000)
    with pytest.raises(Forbidden) as refused:
        await send(world, alice, bob, 100)
    assert refused.value.code == "pin_not_set"


async def test_caps_per_payment_and_per_day_lower_until_verified(world: World) -> None:
    limits = wallet(world).limits
    alice, bob = await friends(world, 10 * limits.daily_unverified)
    with pytest.raises(Forbidden) as refused:
        await send(world, alice, bob, limits.per_payment_unverified + 1)
    assert refused.value.code == "over_payment_limit"
    paid = 0
    while paid + limits.per_payment_unverified <= limits.daily_unverified:
        await send(world, alice, bob, limits.per_payment_unverified)
        paid += limits.per_payment_unverified
    with pytest.raises(Forbidden) as daily:
        await send(world, alice, bob, limits.daily_unverified - paid + 1)
    assert daily.value.code == "over_daily_limit"
    # A verified owner may send more, in one payment and in the day.
    await wallet(world).set_verified(alice, True)
    await send(world, alice, bob, limits.per_payment_unverified + 1)
    assert (await wallet(world).balance(alice)).limits["daily"] == limits.daily_verified
    await wallet(world).set_verified(alice, False)
    with pytest.raises(Forbidden):
        await send(world, alice, bob, 1)
    # The next day (China time) starts afresh.
    world.clock.advance(24 * HOUR)
    await send(world, alice, bob, limits.per_payment_unverified)


async def test_concurrent_payments_never_pass_the_daily_cap(world: World) -> None:
    limits = wallet(world).limits
    alice, bob = await friends(world, 2 * limits.daily_unverified)
    amount = limits.daily_unverified // 20
    outcomes = await asyncio.gather(
        *(send(world, alice, bob, amount) for _ in range(30)), return_exceptions=True
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(outcomes) - len(refused) == 20
    assert {getattr(o, "code", o) for o in refused} == {"over_daily_limit"}
    assert await balance(world, alice) == (
        2 * limits.daily_unverified,
        limits.daily_unverified,
    )


# ------------------------------------------------------------------ transfers


async def test_transfer_accepted(world: World) -> None:
    alice, bob = await friends(world, 1_000)
    sent = await send(world, alice, bob, 250, note=" lunch ")
    assert (sent.sender, sent.receiver, sent.amount, sent.state, sent.note) == (
        alice,
        bob,
        250,
        "pending",
        "lunch",
    )
    assert sent.expires_at == sent.created_at + 24 * HOUR * 1000
    assert await balance(world, alice) == (1_000, 750)
    assert await balance(world, bob) == (0, 0)
    # The card is in their direct conversation; both logs heard of the money.
    history = await world.container.messaging.history(bob, sent.conv, None, 10)
    card = history[0]
    assert (card.kind, card.sender, card.seq) == ("transfer", alice, sent.seq)
    assert card.body == {"transfer": sent.id, "amount": 250, "currency": "CNY", "note": "lunch"}
    bob_log = await log_of(world, bob)
    assert [kind for kind, _ in bob_log] == ["wallet.movement", "message"]
    movement = bob_log[0][1]
    assert movement["transfer"]["state"] == "pending"
    assert movement["transfer"]["direction"] == "in"
    # The frames were pushed in log order too.
    pushed = [msgspec.json.decode(f) for f in world.delivered.for_user(bob)]
    assert [(p["type"], p["seq"]) for p in pushed][-2:] == [
        ("wallet.movement", pushed[-2]["seq"]),
        ("message", pushed[-2]["seq"] + 1),
    ]
    assert await transfers(world).get(alice, sent.id) == sent
    accepted = await transfers(world).accept(bob, sent.id, key())
    assert accepted.state == "accepted" and accepted.resolved_at == world.clock.now_ms()
    assert await balance(world, alice) == (750, 750)
    assert await balance(world, bob) == (250, 250)
    for user in (alice, bob):
        kind, data = (await log_of(world, user))[-1]
        assert kind == "transfer.updated"
        assert data == msgspec.to_builtins(accepted)
        assert (await transfers(world).get(user, sent.id)).state == "accepted"
    # Resolved once: a second accept or a decline is refused and moves nothing.
    for again in (transfers(world).accept, transfers(world).decline):
        with pytest.raises(Conflict) as refused:
            await again(bob, sent.id, key())
        assert refused.value.code == "transfer_already_accepted"
    assert await balance(world, bob) == (250, 250)


async def test_transfer_declined_returns_the_money_and_the_daily_allowance(
    world: World,
) -> None:
    limits = wallet(world).limits
    alice, bob = await friends(world, limits.daily_unverified + 1_000)
    for _ in range(limits.daily_unverified // limits.per_payment_unverified):
        last = await send(world, alice, bob, limits.per_payment_unverified)
    with pytest.raises(Forbidden) as capped:
        await send(world, alice, bob, 1)
    assert capped.value.code == "over_daily_limit"
    with pytest.raises(Forbidden) as sender:
        await transfers(world).decline(alice, last.id, key())
    assert sender.value.code == "not_your_transfer"
    declined = await transfers(world).decline(bob, last.id, key())
    assert declined.state == "declined"
    assert await balance(world, alice) == (
        limits.daily_unverified + 1_000,
        limits.per_payment_unverified + 1_000,
    )
    assert await balance(world, bob) == (0, 0)
    assert [k for k, _ in await log_of(world, alice)][-2:] == [
        "wallet.movement",
        "transfer.updated",
    ]
    # What came back may be sent again today.
    await send(world, alice, bob, limits.per_payment_unverified)
    with pytest.raises(Conflict) as again:
        await transfers(world).accept(bob, last.id, key())
    assert again.value.code == "transfer_already_declined"


async def test_transfer_not_accepted_in_24_hours_returns(world: World) -> None:
    alice, bob = await friends(world, 1_000)
    first = await send(world, alice, bob, 100)
    world.clock.advance(HOUR)
    second = await send(world, alice, bob, 200)
    world.clock.advance(23 * HOUR - 1)
    assert await transfers(world).expire() == 0
    world.clock.advance(1)
    # Past its time it can no longer be accepted, only returned.
    with pytest.raises(Gone) as late:
        await transfers(world).accept(bob, first.id, key())
    assert late.value.code == "transfer_expired"
    assert await transfers(world).expire() == 1
    assert (await transfers(world).get(alice, first.id)).state == "returned"
    assert (await transfers(world).get(bob, second.id)).state == "pending"
    assert await balance(world, alice) == (1_000, 800)
    kind, data = (await log_of(world, bob))[-1]
    assert (kind, data["id"], data["state"]) == ("transfer.updated", first.id, "returned")
    for act in (transfers(world).accept, transfers(world).decline):
        with pytest.raises(Conflict) as refused:
            await act(bob, first.id, key())
        assert refused.value.code == "transfer_already_returned"
    assert await transfers(world).expire() == 0
    world.clock.advance(HOUR)
    assert await transfers(world).expire() == 1
    assert await balance(world, alice) == (1_000, 1_000)
    assert await balance(world, bob) == (0, 0)


async def test_concurrent_resolutions_resolve_once(world: World) -> None:
    alice, bob = await friends(world, 1_000)
    sent = [await send(world, alice, bob, 100) for _ in range(5)]
    t = transfers(world)
    outcomes = await asyncio.gather(
        *(act(bob, s.id, key()) for s in sent for act in (t.accept, t.decline, t.accept)),
        return_exceptions=True,
    )
    done = [o for o in outcomes if isinstance(o, ChatTransferView)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(done) == 5 and len(refused) == 10
    assert sorted(d.id for d in done) == sorted(s.id for s in sent)
    accepted = sum(d.amount for d in done if d.state == "accepted")
    assert await balance(world, bob) == (accepted, accepted)
    assert await balance(world, alice) == (1_000 - accepted, 1_000 - accepted)


async def test_a_resolved_transfer_cannot_be_returned(world: World) -> None:
    alice, bob = await friends(world, 1_000)
    sent = await send(world, alice, bob, 100)
    await transfers(world).accept(bob, sent.id, key())
    world.clock.advance(25 * HOUR)
    assert await transfers(world).expire() == 0
    with pytest.raises(Conflict) as refused:
        await world.container.db.write(
            transfer_store.resolve, sent.id, None, "returned", world.clock.now_ms(), dict
        )
    assert refused.value.code == "transfer_already_accepted"
    assert await balance(world, bob) == (100, 100)


async def test_strangers_are_refused_unless_the_receiver_allows_them(world: World) -> None:
    alice = await payer(world, 1_000)
    stranger = (await world.user()).user_id
    with pytest.raises(Forbidden) as refused:
        await send(world, alice, stranger, 100)
    assert refused.value.code == "transfer_to_stranger"
    assert await balance(world, alice) == (1_000, 1_000)
    assert await log_of(world, stranger) == []
    await wallet(world).update_settings(stranger, True, None)
    sent = await send(world, alice, stranger, 100)
    await transfers(world).accept(stranger, sent.id, key())
    assert await balance(world, stranger) == (100, 100)


async def test_blocked_pairs_are_refused(world: World) -> None:
    alice, bob = await friends(world, 1_000)
    await wallet(world).update_settings(bob, True, None)
    await world.container.contacts.block(bob, alice)
    with pytest.raises(Forbidden) as refused:
        await send(world, alice, bob, 100)
    assert refused.value.code == "peer_unreachable"
    carol = (await world.user()).user_id
    await world.befriend(alice, carol)
    await world.container.contacts.block(alice, carol)
    with pytest.raises(Forbidden) as mine:
        await send(world, alice, carol, 100)
    assert mine.value.code == "peer_blocked"
    assert await balance(world, alice) == (1_000, 1_000)


async def test_bad_transfers_change_nothing(world: World) -> None:
    alice, bob = await friends(world, 1_000)
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"to": alice}, Invalid, "cannot_pay_self"),
        ({"to": 10**12}, NotFound, "user_not_found"),
        ({"to": "2"}, Invalid, "invalid_to"),
        ({"amount": 1_001}, InsufficientFunds, "insufficient_funds"),
        ({"amount": 0}, Invalid, "invalid_amount"),
        ({"amount": 1.5}, Invalid, "invalid_amount"),
        ({"currency": "USD"}, Invalid, "unsupported_currency"),
        ({"note": "x" * 141}, Invalid, "invalid_note"),
        ({"key": None}, Invalid, "idempotency_key_required"),
        ({"key": "k" * 65}, Invalid, "invalid_idempotency_key"),
    ]
    for change, error, code in cases:
        args: dict[str, Any] = {"to": bob, "amount": 100} | change
        with pytest.raises(error) as refused:
            await send(world, alice, args.pop("to"), args.pop("amount"), **args)
        assert refused.value.code == code, change  # type: ignore[attr-defined]
    assert await balance(world, alice) == (1_000, 1_000)
    assert (await wallet(world).statement(bob)).transfers == []
    stranger = (await world.user()).user_id
    sent = await send(world, alice, bob, 100)
    for act in (transfers(world).accept, transfers(world).decline):
        with pytest.raises(NotFound):
            await act(stranger, sent.id, key())
    with pytest.raises(NotFound):
        await transfers(world).get(stranger, sent.id)
    with pytest.raises(NotFound):
        await transfers(world).get(bob, sent.id + 1_000)


# ------------------------------------------------------------------ idempotency


async def test_a_retry_returns_the_first_result_and_moves_money_once(world: World) -> None:
    alice, bob = await friends(world, 1_000)
    first = await send(world, alice, bob, 300, key="pay-1", note="rent")
    frames = len(world.delivered.frames)
    again = await send(world, alice, bob, 300, key="pay-1", note="rent")
    assert again == first
    assert len(world.delivered.frames) == frames  # nothing pushed twice
    assert await balance(world, alice) == (1_000, 700)
    assert len((await wallet(world).statement(alice)).transfers) == 2  # topup + one pending
    with pytest.raises(Conflict) as reused:
        await send(world, alice, bob, 301, key="pay-1", note="rent")
    assert reused.value.code == "idempotency_key_reused"
    with pytest.raises(Conflict):
        await send(world, alice, bob, 300, key="pay-1", note="other")
    assert await balance(world, alice) == (1_000, 700)
    # The same for accepting: a retry gets the first answer, the money moves once.
    accepted = await transfers(world).accept(bob, first.id, "acc-1")
    assert await transfers(world).accept(bob, first.id, "acc-1") == accepted
    assert await balance(world, bob) == (300, 300)
    with pytest.raises(Conflict) as other:
        await transfers(world).decline(bob, first.id, "acc-1")
    assert other.value.code == "idempotency_key_reused"
    # A key belongs to its user: someone else's same key is theirs alone.
    await world.fund(bob, 50)
    await wallet(world).set_pin(bob, PIN)
    back = await send(world, bob, alice, 50, key="pay-1")
    assert back.id != first.id


async def test_a_refused_payment_leaves_its_key_unused(world: World) -> None:
    alice, bob = await friends(world, 100)
    with pytest.raises(InsufficientFunds):
        await send(world, alice, bob, 200, key="k")
    await world.fund(alice, 100)
    sent = await send(world, alice, bob, 200, key="k")
    assert sent.amount == 200
    assert await balance(world, alice) == (200, 0)


# ------------------------------------------------------------------ admin


def test_admin_verifies_a_wallet_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/wanglai.db"
    monkeypatch.setenv("WANGLAI_DATABASE_URL", url)
    phone = "+8613912345678"

    async def verified(login: bool = False) -> bool:
        sms = RecordingSms()
        settings = Settings(data_dir=tmp_path, database_url=url, code_pepper=b"p")
        container = Container(settings, clock=ManualClock(), bus=LocalBus(), sms=sms)
        await container.start()
        try:
            if login:
                await container.accounts.request_code(phone, "10.0.0.1")
                await container.accounts.login(phone, sms.last_code(phone), "t")
            user = await container.db.read(accounts.user_by_phone, phone)
            return (await container.wallet.balance(int(user[0]))).verified
        finally:
            await container.close()

    assert not run_async(lambda: verified(login=True))
    runner = CliRunner()
    result = runner.invoke(admin_app, ["wallet", "verify", "13912345678"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "50000.00 a payment" in result.output
    assert run_async(verified)
    result = runner.invoke(admin_app, ["wallet", "verify", phone, "--undo"])
    assert result.exit_code == 0 and "no longer verified" in result.output
    assert not run_async(verified)
    result = runner.invoke(admin_app, ["wallet", "verify", "+8613900000000"])
    assert result.exit_code == 1 and "No user" in result.output
    result = runner.invoke(admin_app, ["wallet", "verify", "not-a-phone"])
    assert result.exit_code == 1


async def test_the_fifth_wrong_current_pin_locks_payments(world: World) -> None:
    alice, bob = await friends(world, 5_000)
    for _ in range(4):
        with pytest.raises(Forbidden) as wrong:
            await wallet(world).set_pin(alice, "975310", current="000001")
        assert wrong.value.code == "wrong_pin"
    with pytest.raises(RateLimited) as locked:
        await wallet(world).set_pin(alice, "975310", current="000001")
    assert locked.value.code == "payments_locked"
    with pytest.raises(RateLimited):
        await send(world, alice, bob, 100, pin=PIN)
    assert await balance(world, alice) == (5_000, 5_000)


async def test_concurrent_retries_and_transfers_in_one_batch(world: World) -> None:
    """Sends that arrive together are made in one set-wise batch: retries of one key (even in
    the same batch) make one transfer, a reused key with another body is refused, an overdraft
    refuses only itself, and every event seq stays unique and gapless."""
    alice, bob = await friends(world, 1_000)
    carol = await payer(world, 1_000)
    await world.befriend(carol, bob)
    calls = [send(world, alice, bob, 100, key="same") for _ in range(5)]
    calls.append(send(world, alice, bob, 200, key="same"))  # same key, another body
    calls += [send(world, alice, bob, 300) for _ in range(4)]  # 1,000 - 100: three fit
    calls += [send(world, carol, bob, 50) for _ in range(3)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    # one body wins the key (whichever reached the batch first); the other body is refused
    same = outcomes[:6]
    made = [o for o in same if isinstance(o, ChatTransferView)]
    assert len({o.id for o in made}) == 1, same
    won = made[0].amount
    assert won in (100, 200)
    assert len(made) == (5 if won == 100 else 1)
    refused = [getattr(o, "code", None) for o in same if not isinstance(o, ChatTransferView)]
    assert refused == ["idempotency_key_reused"] * (6 - len(made))
    overdraft = outcomes[6:10]
    fits = (1_000 - won) // 300  # 100 won: three fit; 200 won: two
    assert sum(isinstance(o, ChatTransferView) for o in overdraft) == fits
    assert [getattr(o, "code", None) for o in overdraft].count("insufficient_funds") == 4 - fits
    assert all(isinstance(o, ChatTransferView) for o in outcomes[10:])
    assert await balance(world, alice) == (1_000, 1_000 - won - 300 * fits)
    assert await balance(world, carol) == (1_000, 850)
    for user in (alice, bob, carol):
        rows = await world.container.db.read(events.since, user, 0, 10_000)
        seqs = [int(r[0]) for r in rows]
        assert seqs == list(range(1, len(seqs) + 1))
