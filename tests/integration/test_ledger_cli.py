"""``wanglai admin ledger check`` and ``wanglai admin wallet credit|debit`` on a real database:
the report, the exit codes, and corrections that move money only as new transfers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from wanglai.cli.main import app
from wanglai.store import accounts, ledger

from .conftest import World
from .test_ledger_check import busy_ledger, sql


def cli_env(world: World, tmp_path: Path) -> dict[str, str]:
    return {
        "WANGLAI_DATABASE_URL": world.container.settings.database_url,
        "WANGLAI_DATA_DIR": str(tmp_path / "cli-data"),
        "WANGLAI_WRITE_PROCESS": "0",
        "COLUMNS": "200",
    }


async def invoke(world: World, tmp_path: Path, *args: str) -> Result:
    """Run the CLI in a thread of its own (it runs its own event loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, list(args), env=cli_env(world, tmp_path))


async def balance(world: World, account_id: int) -> tuple[int, int]:
    found = (await world.container.db.read(ledger.accounts, [account_id]))[account_id]
    return found.balance, found.available


async def test_check_exits_0_on_a_consistent_ledger_and_1_on_a_breach(
    world: World, tmp_path: Path
) -> None:
    busy = await busy_ledger(world)
    env = os.environ | cli_env(world, tmp_path)

    async def run_check(*extra: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wanglai",
            "admin",
            "ledger",
            "check",
            *extra,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    rc, out = await run_check()
    assert rc == 0, out
    assert "The ledger is consistent." in out and "pending_resolution" in out
    assert "FAIL" not in out

    await sql(
        world,
        "UPDATE ledger_accounts SET credits_posted = credits_posted + 5"
        f" WHERE id = {busy.wallets[1]}",
    )
    rc, out = await run_check()
    assert rc == 1, out
    assert "FAIL" in out and f"account {busy.wallets[1]}" in out
    assert "credits_posted is" in out and "breaches." in out

    rc, out = await run_check("--json")
    assert rc == 1
    report = json.loads(out)
    assert report["ok"] is False
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert failed == {"currency_sums", "account_sums"}


async def test_check_exits_2_when_it_cannot_read_the_database(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    env = cli_env(world, tmp_path) | {"WANGLAI_DATABASE_URL": "postgresql://127.0.0.1:1/none"}
    result = await asyncio.to_thread(runner.invoke, app, ["admin", "ledger", "check"], env=env)
    assert result.exit_code == 2, result.output
    assert "Could not read the ledger" in result.output


async def test_credit_and_debit_are_new_adjustment_transfers(world: World, tmp_path: Path) -> None:
    user = await world.user("Dora")
    account = await world.fund(user.user_id, 1_000)
    row = await world.container.db.read(accounts.user_by_id, user.user_id)
    assert row is not None
    phone = str(row[1])

    result = await invoke(
        world, tmp_path, "admin", "wallet", "credit", phone, "250", "--reason", "refund of #88"
    )
    assert result.exit_code == 0, result.output
    assert "Credited 2.50 CNY" in result.output and "Balance 12.50" in result.output
    assert await balance(world, account) == (1_250, 1_250)

    result = await invoke(
        world,
        tmp_path,
        "admin",
        "wallet",
        "debit",
        str(user.user_id),
        "50",
        "--reason",
        "double credit",
    )
    assert result.exit_code == 0, result.output
    assert await balance(world, account) == (1_200, 1_200)

    statement = await world.container.wallet.statement(user.user_id, kinds=["adjustment"])
    assert [(t.direction, t.amount, t.ref) for t in statement.transfers] == [
        ("out", 50, "double credit"),
        ("in", 250, "refund of #88"),
    ]
    bank = world.container.wallet.system_account(ledger.BANK_CLEARING)
    transfers = await world.container.db.read(ledger.statement, bank, None, 10, ["adjustment"])
    assert {(t.debit_id, t.credit_id) for t in transfers} == {(bank, account), (account, bank)}

    # the owner's devices learn of it from their event log (the CLI cannot reach their sockets)
    page = await world.container.sync.since(user.user_id, 0, 100)
    movements = [e.data for e in page.events if e.type == "wallet.movement" and e.data]
    adjusted = [m for m in movements if m["transfer"]["kind"] == "adjustment"]
    assert [(m["transfer"]["direction"], m["balance"]) for m in adjusted] == [
        ("in", 1_250),
        ("out", 1_200),
    ]


async def test_refused_corrections_exit_1_and_change_nothing(world: World, tmp_path: Path) -> None:
    user = await world.user()
    account = await world.fund(user.user_id, 300)
    before = await balance(world, account)
    who = str(user.user_id)
    for args, says in (
        (["debit", who, "301", "--reason", "too much"], "insufficient_funds"),
        (["credit", who, "0", "--reason", "zero"], "invalid_amount"),
        (["credit", who, "--reason", "negative", "--", "-4"], "invalid_amount"),
        (["credit", who, "10", "--reason", " "], "invalid_reason"),
        (["credit", "+8613912345678", "10", "--reason", "nobody"], "No user"),
        (["credit", "not-a-phone", "10", "--reason", "bad phone"], "Refused"),
    ):
        result = await invoke(world, tmp_path, "admin", "wallet", *args)
        assert result.exit_code == 1, (args, result.output)
        assert says in result.output, (args, result.output)
    for args in (["credit", who, "1.50", "--reason", "x"], ["credit", who, "10"]):
        result = await invoke(world, tmp_path, "admin", "wallet", *args)
        assert result.exit_code == 2, (args, result.output)  # usage: fen are whole numbers
    assert await balance(world, account) == before
    result = await invoke(world, tmp_path, "admin", "ledger", "check")
    assert result.exit_code == 0, result.output
