"""The ledger checker on a real database: it passes a ledger the flows made, and reports each
kind of breach when a test corrupts the tables directly with SQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from wanglai.domain.errors import WanglaiError
from wanglai.domain.ledger import PENDING, POST, Request
from wanglai.services.ledger_check import check_ledger
from wanglai.services.wallet_admin import WalletAdmin
from wanglai.store import ledger
from wanglai.store.sql import Op, execute, scalar

from .conftest import World
from .ledger_flows import (
    DAY_MS,
    claim_packet,
    expire_packet,
    move,
    offer,
    send_packet,
    settle_offer,
)


@dataclass
class Busy:
    """A ledger with every kind of row the checker reads."""

    users: list[int]
    wallets: list[int]
    bank: int
    escrow: int
    merchant: int
    open_packet: int
    open_chat: int
    accepted_chat: int
    posted_pending: int
    plain_transfer: int


async def busy_ledger(world: World) -> Busy:
    db, now = world.container.db, world.clock.now_ms
    users = [(await world.user()).user_id for _ in range(3)]
    funds = (10_000, 5_000, 1)
    wallets = [await world.fund(u, amount) for u, amount in zip(users, funds, strict=True)]
    a, b, c = users
    wa, wb, wc = wallets
    bank = world.container.wallet.system_account(ledger.BANK_CLEARING)
    escrow = world.container.wallet.system_account(ledger.REDPACKET_ESCROW)

    open_packet = await db.write(send_packet, a, wa, escrow, [300, 200, 500], now())
    await db.write(claim_packet, open_packet, b, wb, escrow, now())
    finished = await db.write(send_packet, b, wb, escrow, [100], now())
    await db.write(claim_packet, finished, c, wc, escrow, now())
    expired = await db.write(send_packet, a, wa, escrow, [50, 50], now())
    await db.write(claim_packet, expired, b, wb, escrow, now())
    world.clock.advance(DAY_MS / 1000)
    assert await db.write(expire_packet, expired, wa, escrow, now()) == 50

    open_chat, _ = await db.write(offer, a, b, wa, wb, 700, DAY_MS, now())
    accepted_chat, _ = await db.write(offer, b, c, wb, wc, 400, DAY_MS, now())
    await db.write(settle_offer, accepted_chat, "accepted", now())
    declined, _ = await db.write(offer, b, a, wb, wa, 250, DAY_MS, now())
    await db.write(settle_offer, declined, "declined", now())
    returned, _ = await db.write(offer, a, c, wa, wc, 120, 1_000, now())
    world.clock.advance(2)
    await db.write(settle_offer, returned, "returned", now())

    def open_merchant(now_ms: int) -> Op[int]:
        account = yield from ledger.open_account("merchant", 7, "wallet", "CNY", now_ms)
        return account

    merchant = await db.write(open_merchant, now())
    paid = await db.write(move, [Request(wa, merchant, 1_000, "CNY", "merchant_payment")], now())
    await db.write(move, [Request(merchant, wa, 300, "CNY", "merchant_refund")], now())
    pending = await db.write(move, [Request(wb, merchant, 90, "CNY", "withdraw", PENDING)], now())
    await db.write(move, [Request(flags=POST, pending_id=pending[0].id)], now())

    admin = WalletAdmin(world.container.wallet)
    await admin.credit(c, 1_000, "goodwill for a failed top-up")
    await admin.debit(c, 400, "duplicate credit")
    return Busy(
        users,
        wallets,
        bank,
        escrow,
        merchant,
        open_packet,
        open_chat,
        accepted_chat,
        pending[0].id,
        paid[0].id,
    )


async def sql(world: World, *statements: str) -> None:
    def op() -> Op[None]:
        for statement in statements:
            yield from execute(statement)

    await world.container.db.write(op)


async def test_a_consistent_ledger_passes_every_check(world: World) -> None:
    busy = await busy_ledger(world)
    report = await check_ledger(world.container.db)
    assert report.ok, report.breaches
    checked = {r.name: r.checked for r in report.results}
    assert checked == {
        "currency_sums": 1,
        "account_sums": checked["account_sums"],
        "no_overdraft": 4,  # three wallets and the merchant
        "pending_resolution": 5,  # four chat transfers and the merchant's withdrawal
        "redpacket_escrow": 3,
        "chat_transfers": 4,
    }
    assert checked["account_sums"] >= 8
    escrow = (await world.container.db.read(ledger.accounts, [busy.escrow]))[busy.escrow]
    assert escrow.balance == 700  # the open packet's two unclaimed shares


def _negative_balance(busy: Busy) -> list[str]:
    # a transfer the rules would refuse, written with sums that agree with it
    wallet = busy.wallets[2]
    return [
        "INSERT INTO ledger_transfers (id, debit_id, credit_id, amount, currency, kind, flags,"
        f" created_ms) VALUES (900001, {wallet}, {busy.bank}, 50000, 'CNY', 'forged', 0, 0)",
        f"UPDATE ledger_accounts SET debits_posted = debits_posted + 50000 WHERE id = {wallet}",
        "UPDATE ledger_accounts SET credits_posted = credits_posted + 50000"
        f" WHERE id = {busy.bank}",
    ]


def _sums_off(busy: Busy) -> list[str]:
    return [
        "UPDATE ledger_accounts SET credits_posted = credits_posted + 5"
        f" WHERE id = {busy.wallets[1]}"
    ]


def _pending_sums_off(busy: Busy) -> list[str]:
    return [
        "UPDATE ledger_accounts SET debits_pending = debits_pending + 7"
        f" WHERE id = {busy.wallets[0]}"
    ]


def _reopened(busy: Busy) -> list[str]:
    return [
        "UPDATE ledger_pending SET state = 'pending', resolved_by = NULL"
        f" WHERE transfer_id = {busy.posted_pending}"
    ]


def _wrong_resolution(busy: Busy) -> list[str]:
    return [f"UPDATE ledger_pending SET state = 'voided' WHERE transfer_id = {busy.posted_pending}"]


def _double_resolution(busy: Busy) -> list[str]:
    # the unique index on pending_id forbids a second resolution; rebuild the table without it
    return [
        "CREATE TABLE ledger_transfers_copy AS SELECT * FROM ledger_transfers",
        "DROP TABLE ledger_transfers",
        "ALTER TABLE ledger_transfers_copy RENAME TO ledger_transfers",
        "INSERT INTO ledger_transfers (id, debit_id, credit_id, amount, currency, kind, flags,"
        " pending_id, created_ms) SELECT 900002, debit_id, credit_id, amount, currency, 'again',"
        f" 4, id, 0 FROM ledger_transfers WHERE id = {busy.posted_pending}",
    ]


def _post_without_pending(busy: Busy) -> list[str]:
    return [
        "INSERT INTO ledger_transfers (id, debit_id, credit_id, amount, currency, kind, flags,"
        " pending_id, created_ms) SELECT 900003, debit_id, credit_id, amount, currency, 'post',"
        f" 2, id, 0 FROM ledger_transfers WHERE id = {busy.plain_transfer}",
    ]


def _escrow_short(busy: Busy) -> list[str]:
    return [
        "INSERT INTO red_packets (sender_id, conv_id, msg_seq, kind, amount, currency, shares,"
        " splits, state, created_ms, expires_ms)"
        f" VALUES ({busy.users[0]}, 0, 0, 'equal', 800, 'CNY', 2, '[400, 400]', 'open', 0, 1)"
    ]


def _claims_off(busy: Busy) -> list[str]:
    return [
        f"UPDATE red_packet_claims SET amount = amount + 1 WHERE packet_id = {busy.open_packet}"
    ]


def _chat_disagrees(busy: Busy) -> list[str]:
    return [f"UPDATE chat_transfers SET state = 'pending' WHERE id = {busy.accepted_chat}"]


@pytest.mark.parametrize(
    ("corrupt", "failing", "detail"),
    [
        (_negative_balance, {"no_overdraft"}, "balance is -"),
        (_sums_off, {"currency_sums", "account_sums"}, "credits_posted is"),
        (_pending_sums_off, {"currency_sums", "account_sums"}, "debits_pending is"),
        (_reopened, {"pending_resolution"}, "is open, yet transfer"),
        (_wrong_resolution, {"pending_resolution"}, "is voided but transfer"),
        (_double_resolution, {"pending_resolution", "account_sums"}, "resolved 2 times"),
        (_post_without_pending, {"pending_resolution", "account_sums"}, "not a pending transfer"),
        (_escrow_short, {"redpacket_escrow"}, "open packets still hold 1500"),
        (_claims_off, {"redpacket_escrow"}, "its claim rows are 1 of 301"),
        (_chat_disagrees, {"chat_transfers"}, "is pending but its pending is posted"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
async def test_each_breach_is_reported(
    world: World,
    corrupt: Callable[[Busy], list[str]],
    failing: set[str],
    detail: str,
) -> None:
    busy = await busy_ledger(world)
    await sql(world, *corrupt(busy))
    report = await check_ledger(world.container.db)
    assert not report.ok
    assert {r.name for r in report.results if not r.ok} == failing
    assert any(detail in b.detail for b in report.breaches), report.breaches


async def test_the_checker_reads_one_snapshot_while_money_moves(world: World) -> None:
    """Checks running while transfers commit never see half a change."""
    busy = await busy_ledger(world)
    db, now = world.container.db, world.clock.now_ms
    a, b = busy.wallets[0], busy.wallets[1]

    async def churn() -> None:
        for i in range(60):
            debit, credit = (a, b) if i % 2 else (b, a)
            await db.write(move, [Request(debit, credit, 1, "CNY", "churn")], now())

    mover = asyncio.create_task(churn())
    reports = []
    while not mover.done():
        reports.append(await check_ledger(db))
    await mover
    assert reports and all(r.ok for r in reports), [r.breaches for r in reports if not r.ok]


async def test_a_forged_transfer_shows_in_the_recomputed_sums(world: World) -> None:
    """A transfer inserted without touching any account is caught by the recomputed sums."""
    busy = await busy_ledger(world)
    await sql(
        world,
        "INSERT INTO ledger_transfers (id, debit_id, credit_id, amount, currency, kind, flags,"
        f" created_ms) VALUES (900004, {busy.bank}, {busy.wallets[0]}, 10, 'CNY', 'forged', 0, 0)",
    )
    report = await check_ledger(world.container.db)
    subjects = {b.subject for b in report.result("account_sums").breaches}
    assert subjects == {f"account {busy.bank}", f"account {busy.wallets[0]}"}


async def test_refused_corrections_change_nothing(world: World) -> None:
    busy = await busy_ledger(world)
    admin = WalletAdmin(world.container.wallet)
    user, wallet = busy.users[2], busy.wallets[2]
    before = (await world.container.db.read(ledger.accounts, [wallet]))[wallet]
    count = await world.container.db.read(_transfer_count)
    for amount, reason, code in (
        (before.available + 1, "too much", "insufficient_funds"),
        (0, "zero", "invalid_amount"),
        (-5, "negative", "invalid_amount"),
        (1.5, "fractional", "invalid_amount"),
        ("10", "text", "invalid_amount"),
        (10, "   ", "invalid_reason"),
        (10, "x" * 65, "invalid_reason"),
    ):
        with pytest.raises(WanglaiError) as refused:
            await admin.debit(user, amount, reason)
        assert refused.value.code == code
    after = (await world.container.db.read(ledger.accounts, [wallet]))[wallet]
    assert after == before
    assert await world.container.db.read(_transfer_count) == count
    assert (await check_ledger(world.container.db)).ok


def _transfer_count() -> Op[int]:
    value = yield from scalar("SELECT COUNT(*) FROM ledger_transfers")
    return int(value)
