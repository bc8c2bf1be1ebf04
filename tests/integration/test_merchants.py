"""Merchant payments on SQLite and PostgreSQL: codes, paying, fees, refunds, statements."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wanglai.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound, WanglaiError
from wanglai.domain.ledger import InsufficientFunds
from wanglai.services.merchants import MerchantService
from wanglai.store import ledger

from .conftest import World


def service(world: World) -> MerchantService:
    return world.container.merchants  # type: ignore[no-any-return]


async def fees_balance(world: World) -> int:
    fees = world.container.wallet.system_account(ledger.FEES)
    accounts = await world.container.db.read(ledger.accounts, [fees])
    return accounts[fees].balance


async def wallet_balance(world: World, user_id: int) -> int:
    return (await world.container.wallet.balance(user_id)).balance


async def shop_and_payer(world: World, funds: int = 100_000) -> tuple[int, int, int]:
    """A merchant owner, their merchant and a funded payer who may pay up to 200.00 PIN-free."""
    owner = await world.user("Owner")
    payer = await world.user("Payer")
    await world.fund(payer.user_id, funds)
    await world.container.wallet.update_settings(payer.user_id, None, 20_000)
    merchant = await service(world).open(owner.user_id, "Noodle Bar")
    return owner.user_id, merchant.id, payer.user_id


def events_of(world: World, user_id: int, kind: str) -> list[dict[str, Any]]:
    found = []
    for frame in world.delivered.for_user(user_id):
        event = json.loads(frame)
        if event.get("type") == kind:
            found.append(event)
    return found


async def test_open_merchant_has_its_own_account_and_is_private(world: World) -> None:
    owner, other = await world.user(), await world.user()
    merchants = service(world)
    shop = await merchants.open(owner.user_id, "  Tea House ")
    assert (shop.name, shop.balance, shop.fee_ppm, shop.currency) == ("Tea House", 0, 6000, "CNY")
    assert [m.id for m in await merchants.mine(owner.user_id)] == [shop.id]
    assert await merchants.mine(other.user_id) == []
    assert (await merchants.get(owner.user_id, shop.id)).name == "Tea House"
    with pytest.raises(NotFound):
        await merchants.get(other.user_id, shop.id)
    with pytest.raises(Invalid):
        await merchants.open(owner.user_id, "")
    second = await merchants.open(owner.user_id, "Tea House 2")
    assert second.id != shop.id
    accounts = await world.container.db.read(ledger.all_accounts)
    merchant_accounts = [a for a, kind, _o, _n in accounts if kind == "merchant"]
    assert len(merchant_accounts) == 2
    assert all(a.flags & 1 for a in merchant_accounts)  # DEBITS_LIMITED: never below zero


async def test_dynamic_code_is_paid_once_with_the_fee_to_fees(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world)
    merchants = service(world)
    code = await merchants.create_code(owner, shop, 12_345, "Two bowls", None)
    assert code.kind == "dynamic" and code.uri == "wanglai://pay/" + code.token
    assert code.expires_at == world.clock.now_ms() + 300_000
    shown = await merchants.show_code(code.token)
    assert (shown.merchant, shown.amount, shown.state) == ("Noodle Bar", 12_345, "open")
    fees_before = await fees_balance(world)

    paid = await merchants.pay(payer, "k1", code.uri, None, None)
    # 0.6% of 123.45 is 0.7407: 74 fen to the platform, 12,271 to the merchant
    assert (paid.amount, paid.fee, paid.net) == (12_345, 74, 12_271)
    assert await fees_balance(world) - fees_before == 74
    assert (await merchants.get(owner, shop)).balance == 12_271
    assert await wallet_balance(world, payer) == 100_000 - 12_345
    assert (await merchants.show_code(code.token)).state == "paid"

    other = await world.user()
    await world.fund(other.user_id, 50_000)
    await world.container.wallet.update_settings(other.user_id, None, 20_000)
    with pytest.raises(Conflict) as info:
        await merchants.pay(other.user_id, "k1", code.token, None, None)
    assert info.value.code == "code_already_paid"
    assert await wallet_balance(world, other.user_id) == 50_000
    assert (await merchants.get(owner, shop)).balance == 12_271

    # both sides heard of it: the payment and their wallet movements
    for user in (payer, owner):
        paid_events = events_of(world, user, "merchant.paid")
        assert len(paid_events) == 1, world.delivered.for_user(user)
    assert events_of(world, payer, "wallet.movement")
    assert events_of(world, owner, "wallet.movement")


async def test_expired_code_is_refused_and_nothing_moves(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world)
    merchants = service(world)
    code = await merchants.create_code(owner, shop, 500, None, 60)
    world.clock.advance(60)
    assert (await merchants.show_code(code.token)).state == "expired"
    with pytest.raises(Gone) as info:
        await merchants.pay(payer, "late", code.token, None, None)
    assert info.value.code == "code_expired"
    assert await wallet_balance(world, payer) == 100_000
    assert (await merchants.get(owner, shop)).balance == 0


async def test_static_code_takes_the_payers_amount(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world)
    merchants = service(world)
    code = await merchants.create_code(owner, shop, None, "Tips", None)
    assert code.kind == "static" and code.expires_at is None and code.amount is None
    with pytest.raises(Invalid) as info:
        await merchants.pay(payer, "s0", code.token, None, None)
    assert info.value.code == "amount_required"
    world.clock.advance(10 * 86_400)  # a static code never expires
    first = await merchants.pay(payer, "s1", code.token, 250, None)
    second = await merchants.pay(payer, "s2", code.token, 83, None)
    # 1.5 fen rounds up to 2; 0.498 rounds down to nothing (no fee transfer at all)
    assert (first.fee, second.fee) == (2, 0)
    assert (await merchants.get(owner, shop)).balance == 248 + 83
    assert await wallet_balance(world, payer) == 100_000 - 333


async def test_a_dynamic_codes_amount_cannot_be_changed(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world)
    code = await service(world).create_code(owner, shop, 1000, None, None)
    with pytest.raises(Invalid) as info:
        await service(world).pay(payer, "x", code.token, 1, None)
    assert info.value.code == "amount_fixed"
    assert await wallet_balance(world, payer) == 100_000


async def test_pay_is_idempotent_per_key(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world)
    merchants = service(world)
    code = await merchants.create_code(owner, shop, None, None, None)
    first = await merchants.pay(payer, "same", code.token, 700, None)
    again = await merchants.pay(payer, "same", code.token, 700, None)
    assert again == first
    assert await wallet_balance(world, payer) == 100_000 - 700
    with pytest.raises(Conflict) as info:
        await merchants.pay(payer, "same", code.token, 701, None)
    assert info.value.code == "idempotency_key_reused"
    with pytest.raises(Invalid) as missing:
        await merchants.pay(payer, None, code.token, 700, None)
    assert missing.value.code == "idempotency_key_required"
    assert await wallet_balance(world, payer) == 100_000 - 700
    # a dynamic code's retry replays the first result instead of "already paid"
    dynamic = await merchants.create_code(owner, shop, 300, None, None)
    paid = await merchants.pay(payer, "dyn", dynamic.token, None, None)
    assert await merchants.pay(payer, "dyn", dynamic.token, None, None) == paid
    assert await wallet_balance(world, payer) == 100_000 - 1000


async def test_payment_needs_the_pin_and_funds(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world, funds=1_000)
    merchants = service(world)
    wallet = world.container.wallet
    await wallet.update_settings(payer, None, 0)
    code = await merchants.create_code(owner, shop, None, None, None)
    with pytest.raises(Forbidden) as no_pin:
        await merchants.pay(payer, "p1", code.token, 500, None)
    assert no_pin.value.code == "pin_not_set"
    await wallet.set_pin(payer, "135790")
    with pytest.raises(WanglaiError):
        await merchants.pay(payer, "p2", code.token, 500, "000000")
    paid = await merchants.pay(payer, "p3", code.token, 500, "135790")
    assert paid.amount == 500
    with pytest.raises(InsufficientFunds) as broke:
        await merchants.pay(payer, "p4", code.token, 501, "135790")
    assert broke.value.code == "insufficient_funds"
    assert await wallet_balance(world, payer) == 500
    # nobody pays their own merchant
    await world.fund(owner, 1000)
    await wallet.update_settings(owner, None, 20_000)
    with pytest.raises(Forbidden):
        await merchants.pay(owner, "own", code.token, 100, None)


async def test_refunds_partial_then_full_return_the_fee_share(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world)
    merchants = service(world)
    code = await merchants.create_code(owner, shop, 12_345, None, None)
    paid = await merchants.pay(payer, "pay", code.token, None, None)
    fees_after_pay = await fees_balance(world)

    part = await merchants.refund(owner, "r1", shop, paid.id, 4_115)
    assert (part.amount, part.fee_returned, part.refunded, part.refundable) == (
        4_115,
        24,
        4_115,
        8_230,
    )
    assert await fees_balance(world) == fees_after_pay - 24
    assert await wallet_balance(world, payer) == 100_000 - 12_345 + 4_115
    assert (await merchants.get(owner, shop)).balance == 12_271 - 4_115 + 24

    with pytest.raises(Conflict) as too_much:
        await merchants.refund(owner, "r2", shop, paid.id, 8_231)
    assert too_much.value.code == "refund_exceeds_payment"

    rest = await merchants.refund(owner, "r3", shop, paid.id, 8_230)
    assert (rest.fee_returned, rest.refundable) == (50, 0)
    # the payer has everything back, the platform kept no fee, the merchant holds nothing
    assert await wallet_balance(world, payer) == 100_000
    assert await fees_balance(world) == fees_after_pay - 74
    assert (await merchants.get(owner, shop)).balance == 0
    with pytest.raises(Conflict):
        await merchants.refund(owner, "r4", shop, paid.id, 1)
    # a retry of a refund replays it
    assert await merchants.refund(owner, "r3", shop, paid.id, 8_230) == rest
    assert await wallet_balance(world, payer) == 100_000
    for user in (payer, owner):
        assert len(events_of(world, user, "merchant.refunded")) == 2

    statement = await merchants.statement(owner, shop, None, 50)
    assert [(e.kind, e.amount, e.fee, e.net) for e in statement.entries] == [
        ("refund", 8_230, 50, -8_180),
        ("refund", 4_115, 24, -4_091),
        ("payment", 12_345, 74, 12_271),
    ]
    assert sum(e.net for e in statement.entries) == statement.merchant.balance == 0
    page = await merchants.statement(owner, shop, None, 2)
    assert page.next_before == statement.entries[1].transfer_id
    older = await merchants.statement(owner, shop, page.next_before, 2)
    assert [e.kind for e in older.entries] == ["payment"] and older.next_before is None


async def test_refunds_by_anyone_but_the_owner_are_not_found(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world)
    merchants = service(world)
    code = await merchants.create_code(owner, shop, 1000, None, None)
    paid = await merchants.pay(payer, "pay", code.token, None, None)
    eve = await world.user()
    other_shop = await merchants.open(eve.user_id, "Eve's")
    for who, merchant_id in ((eve.user_id, shop), (payer, shop), (eve.user_id, other_shop.id)):
        with pytest.raises(NotFound):
            await merchants.refund(who, "steal", merchant_id, paid.id, 1000)
    with pytest.raises(NotFound):
        await merchants.statement(eve.user_id, shop, None, 10)
    with pytest.raises(NotFound):
        await merchants.create_code(eve.user_id, shop, 100, None, None)
    with pytest.raises(NotFound):
        await merchants.qr_png(eve.user_id, shop, code.id)
    assert await wallet_balance(world, payer) == 100_000 - 1000
    assert (await merchants.get(owner, shop)).balance == 1000 - 6


async def test_a_refund_needs_the_money_in_the_merchant_account(world: World) -> None:
    owner, shop, payer = await shop_and_payer(world)
    merchants = service(world)
    code = await merchants.create_code(owner, shop, None, None, None)
    first = await merchants.pay(payer, "a", code.token, 1000, None)
    second = await merchants.pay(payer, "b", code.token, 1000, None)
    await merchants.refund(owner, "ra", shop, first.id, 1000)
    # the merchant now holds 994 (second payment less its fee): a full refund of the second
    # payment gets its fee back first, so exactly 1000 is there
    refund = await merchants.refund(owner, "rb", shop, second.id, 1000)
    assert refund.fee_returned == 6
    assert (await merchants.get(owner, shop)).balance == 0


async def test_racing_payers_pay_a_dynamic_code_once(world: World) -> None:
    owner, shop, first = await shop_and_payer(world)
    second = (await world.user()).user_id
    await world.fund(second, 100_000)
    await world.container.wallet.update_settings(second, None, 20_000)
    merchants = service(world)
    code = await merchants.create_code(owner, shop, 5_000, None, None)
    outcomes = await asyncio.gather(
        *(merchants.pay(who, f"race{who}", code.token, None, None) for who in (first, second)),
        return_exceptions=True,
    )
    paid = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(paid) == 1 and len(refused) == 1, outcomes
    assert refused[0].code == "code_already_paid"
    total = await wallet_balance(world, first) + await wallet_balance(world, second)
    assert total == 200_000 - 5_000
    assert (await merchants.get(owner, shop)).balance == 5_000 - 30
