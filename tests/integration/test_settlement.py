"""The daily settlement CSV on SQLite and PostgreSQL, from real payments, refunds and top-ups."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

from typer.testing import CliRunner

from wanglai.cli.admin import admin_app
from wanglai.domain import ledger as rules
from wanglai.domain.ledger import Request
from wanglai.services.settlement import COLUMNS, SettlementService
from wanglai.store import ledger
from wanglai.store import wallet as wallet_store
from wanglai.store.sql import Op

from .conftest import World

DAY = "2023-11-15"
"""The manual clock starts at 2023-11-15 06:13:20 China time."""


async def withdraw(world: World, user_id: int, amount: int, post: bool) -> None:
    """A withdrawal as the funding service makes one: pending to the bank, then posted or
    voided (written straight to the ledger; funding has tests of its own)."""
    bank = world.container.wallet.system_account(ledger.BANK_CLEARING)

    def op(now: int) -> Op[None]:
        found = yield from wallet_store.open_wallet(user_id, "CNY", now)
        request = Request(found.account_id, bank, amount, "CNY", "withdraw", rules.PENDING)
        (pending,), _ = yield from ledger.apply([request], now)
        flag = rules.POST if post else rules.VOID
        done = Request(kind="withdraw", flags=flag, pending_id=pending.id)
        yield from ledger.apply([done], now)

    await world.container.db.write(op, world.clock.now_ms())


async def carrier_topup(world: World, user_id: int, amount: int) -> None:
    operator = world.container.wallet.system_account(ledger.OPERATOR_CLEARING)

    def op(now: int) -> Op[None]:
        found = yield from wallet_store.open_wallet(user_id, "CNY", now)
        yield from ledger.apply([Request(operator, found.account_id, amount, "CNY", "topup")], now)

    await world.container.db.write(op, world.clock.now_ms())


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_settlement_csv_of_a_day(world: World) -> None:
    merchants = world.container.merchants
    owner, payer, other = await world.user(), await world.user(), await world.user()
    await world.fund(payer.user_id, 100_000)
    await carrier_topup(world, other.user_id, 30_000)
    for user in (payer.user_id, other.user_id):
        await world.container.wallet.update_settings(user, None, 20_000)
    noodles = await merchants.open(owner.user_id, 'Noodles, "the best"')
    tea = await merchants.open(owner.user_id, "=HYPERLINK(1)")
    static = await merchants.create_code(owner.user_id, noodles.id, None, None, None)
    tea_code = await merchants.create_code(owner.user_id, tea.id, None, None, None)
    world.clock.advance(3600)
    a = await merchants.pay(payer.user_id, "a", static.token, 12_345, None)  # fee 74
    await merchants.pay(other.user_id, "b", static.token, 250, None)  # fee 2
    await merchants.pay(payer.user_id, "c", tea_code.token, 1_000, None)  # fee 6
    await merchants.refund(owner.user_id, "r", noodles.id, a.id, 4_115)  # 24 of the fee back
    await withdraw(world, payer.user_id, 5_000, post=True)
    await withdraw(world, payer.user_id, 700, post=False)
    # the next day (China time) is another file
    world.clock.advance(86_400)
    await world.fund(payer.user_id, 999)
    await merchants.pay(payer.user_id, "d", static.token, 100, None)

    text = await SettlementService(world.container.db).export(DAY)
    assert text.startswith(",".join(COLUMNS) + "\r\n")
    lines = rows(text)
    transfers = [r for r in lines if r["record"] == "transfer"]
    assert [
        (r["account"], r["kind"], r["state"], r["amount_fen"], r["net_fen"]) for r in transfers
    ] == [
        ("bank_clearing", "topup", "posted", "100000", "100000"),
        ("operator_clearing", "topup", "posted", "30000", "30000"),
        ("bank_clearing", "withdraw", "pending", "5000", "0"),
        ("bank_clearing", "withdraw", "posted", "5000", "-5000"),
        ("bank_clearing", "withdraw", "pending", "700", "0"),
        ("bank_clearing", "withdraw", "voided", "700", "0"),
    ]
    assert [int(r["id"]) for r in transfers] == sorted(int(r["id"]) for r in transfers)
    assert {r["user_id"] for r in transfers} == {str(payer.user_id), str(other.user_id)}
    assert transfers[0]["amount"] == "1000.00" and transfers[0]["time"].endswith("+08:00")
    assert transfers[0]["time"].startswith("2023-11-15T06:13:20")

    totals = {r["account"]: r for r in lines if r["record"] == "clearing_total"}
    bank = totals["bank_clearing"]
    assert (bank["count"], bank["in_fen"], bank["out_fen"], bank["net_fen"], bank["net"]) == (
        "5",
        "100000",
        "5000",
        "95000",
        "950.00",
    )
    operator = totals["operator_clearing"]
    assert (operator["count"], operator["in_fen"], operator["net_fen"]) == ("1", "30000", "30000")

    shops = [r for r in lines if r["record"] == "merchant"]
    assert [r["id"] for r in shops] == [str(noodles.id), str(tea.id)]
    first, second = shops
    assert first["merchant"] == 'Noodles, "the best"'
    assert second["merchant"] == "'=HYPERLINK(1)"  # not a formula in a spreadsheet
    assert (first["count"], first["refunds"]) == ("2", "1")
    assert (first["amount_fen"], first["refunded_fen"], first["fees_fen"], first["net_fen"]) == (
        "12595",
        "4115",
        str(74 + 2 - 24),
        str(12_595 - 4_115 - 52),
    )
    assert (second["amount_fen"], second["fees_fen"], second["net_fen"]) == ("1000", "6", "994")
    (total,) = [r for r in lines if r["record"] == "merchant_total"]
    assert (total["count"], total["amount_fen"], total["refunded_fen"], total["fees_fen"]) == (
        "3",
        "13595",
        "4115",
        "58",
    )
    assert total["net_fen"] == str(8_428 + 994) and total["net"] == "94.22"
    # the merchants' net is what their accounts gained that day
    balances = [(await merchants.get(owner.user_id, m.id)).balance for m in (noodles, tea)]
    assert balances[1] == 994 and balances[0] == 8_428 + 100 - 1  # plus the next day's payment
    assert lines[-1]["record"] == "merchant_total"
    # the same day gives the same bytes
    assert await SettlementService(world.container.db).export(DAY) == text


async def test_an_empty_day_still_has_its_totals(world: World) -> None:
    text = await SettlementService(world.container.db).export("2020-01-01")
    assert [(r["record"], r["account"], r["net_fen"]) for r in rows(text)] == [
        ("clearing_total", "bank_clearing", "0"),
        ("clearing_total", "operator_clearing", "0"),
        ("merchant_total", "", "0"),
    ]


async def test_admin_settlement_command(world: World, tmp_path: Path) -> None:
    await world.fund((await world.user()).user_id, 4_200)
    env = {
        "WANGLAI_DATABASE_URL": world.container.settings.database_url,
        "WANGLAI_DATA_DIR": str(tmp_path),
    }
    out = tmp_path / "settlement.csv"
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, admin_app, ["settlement", "--day", DAY, "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    expected = await SettlementService(world.container.db).export(DAY)
    assert out.read_bytes() == expected.encode()
    assert [r["amount_fen"] for r in rows(expected) if r["record"] == "transfer"] == ["4200"]
    printed = await asyncio.to_thread(
        runner.invoke, admin_app, ["settlement", "--day", DAY], env=env
    )
    assert printed.exit_code == 0 and printed.stdout_bytes == expected.encode()
    bad = await asyncio.to_thread(
        runner.invoke, admin_app, ["settlement", "--day", "2023-02-30"], env=env
    )
    assert bad.exit_code == 1 and "YYYY-MM-DD" in bad.output
