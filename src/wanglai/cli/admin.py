"""``wanglai admin``: users, devices and counts, the ledger check and wallet corrections, on
the database the server uses.

It opens the database named by ``WANGLAI_DATABASE_URL`` / ``WANGLAI_DATA_DIR`` directly (SQLite
allows this while the server runs). A device revoked here can no longer authenticate; a socket
it holds open on a running server stays open until it reconnects, since the server's bus does
not reach this process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from wanglai.domain.errors import Invalid
from wanglai.domain.money import display
from wanglai.domain.phone import normalise
from wanglai.settings import Settings
from wanglai.store import accounts
from wanglai.store import admin as admin_store
from wanglai.store.database import Database, connect
from wanglai.store.sql import Op, Row

T = TypeVar("T")

admin_app = typer.Typer(no_args_is_help=True, help="Users, devices and counts of an installation.")
users_app = typer.Typer(no_args_is_help=True, help="Look up users.")
devices_app = typer.Typer(no_args_is_help=True, help="Manage device sessions.")
wallet_app = typer.Typer(no_args_is_help=True, help="Users' wallets.")
admin_app.add_typer(users_app, name="users")
admin_app.add_typer(devices_app, name="devices")
ledger_app = typer.Typer(no_args_is_help=True, help="Audit the ledger.")
admin_app.add_typer(ledger_app, name="ledger")
admin_app.add_typer(wallet_app, name="wallet")
usage_app = typer.Typer(no_args_is_help=True, help="Usage records for sponsored data.")
admin_app.add_typer(usage_app, name="usage")

console = Console(highlight=False)
JSON = typer.Option(False, "--json", help="Print JSON instead of a table")


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database (migrated to the newest schema), run ``work(db)``, close it."""
    from wanglai.app import SCHEMA_HEAD
    from wanglai.store import migrate

    settings = Settings.from_env()

    async def main() -> T:
        await asyncio.to_thread(migrate.upgrade, settings.database_url, SCHEMA_HEAD)
        db = connect(settings.database_url)
        await db.start()
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def _read(fn: Callable[..., Op[T]], *args: Any) -> T:
    async def work(db: Database) -> T:
        return await db.read(fn, *args)

    return _run(work)


def _write(fn: Callable[..., Op[T]], *args: Any) -> T:
    async def work(db: Database) -> T:
        return await db.write(fn, *args)

    return _run(work)


def _user_dict(row: Row) -> dict[str, Any]:
    return {
        "id": int(row[0]),
        "phone": str(row[1]),
        "name": str(row[2]),
        "about": str(row[3]),
        "dm_policy": str(row[4]),
        "created_ms": int(row[5]),
    }


def _device_dict(row: Row) -> dict[str, Any]:
    return {
        "id": int(row[0]),
        "user_id": int(row[1]),
        "name": str(row[2]),
        "created_ms": int(row[3]),
        "last_seen_ms": int(row[4]),
        "cursor": int(row[5]),
        "revoked_ms": None if row[6] is None else int(row[6]),
    }


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(1)


@users_app.command("list")
def users_list(
    limit: int = typer.Option(50, min=1, max=10_000, help="How many users"),
    after: int = typer.Option(0, min=0, help="Start after this user id (paging)"),
    as_json: bool = JSON,
) -> None:
    """Users by id."""
    rows = _read(accounts.list_users, limit, after)
    users = [_user_dict(r) for r in rows]
    if as_json:
        typer.echo(json.dumps(users, ensure_ascii=False))
        return
    table = Table(title=f"Users (after id {after})" if after else "Users")
    for column in ("id", "phone", "name", "dm policy", "joined"):
        table.add_column(column)
    for u in users:
        table.add_row(str(u["id"]), u["phone"], u["name"], u["dm_policy"], _when(u["created_ms"]))
    console.print(table)


def _user_row(who: str, region: str) -> Op[Row | None]:
    text = who.strip()
    if text.isdigit() and len(text) <= 9:
        row = yield from accounts.user_by_id(int(text))
    else:
        row = yield from accounts.user_by_phone(normalise(text, region))
    return row


def _find_user(who: str, region: str) -> Op[tuple[Row, list[Row], dict[str, int]] | None]:
    row = yield from _user_row(who, region)
    if row is None:
        return None
    devices = yield from accounts.active_devices(int(row[0]))
    facts = yield from admin_store.user_facts(int(row[0]))
    return row, devices, facts


@users_app.command("show")
def users_show(
    who: str = typer.Argument(..., help="A phone number (+86…) or a user id"),
    as_json: bool = JSON,
) -> None:
    """One user's profile and live devices."""
    settings = Settings.from_env()
    try:
        found = _read(_find_user, who, settings.default_region)
    except Invalid as exc:
        raise _fail(exc.message) from None
    if found is None:
        raise _fail(f"No user {who}.")
    row, devices, facts = found
    user = _user_dict(row) | facts | {"devices": [_device_dict(d) for d in devices]}
    if as_json:
        typer.echo(json.dumps(user, ensure_ascii=False))
        return
    console.print(f"[bold]user {user['id']}[/bold]  {user['phone']}  {user['name']}")
    console.print(f"about: {user['about']}" if user["about"] else "about: —")
    console.print(
        f"dm policy: {user['dm_policy']} · joined {_when(user['created_ms'])}"
        f" · {facts['conversations']} conversations · {facts['events']} events"
    )
    table = Table(title="Live devices")
    for column in ("id", "name", "logged in", "last seen", "cursor"):
        table.add_column(column)
    for d in user["devices"]:
        table.add_row(
            str(d["id"]),
            d["name"],
            _when(d["created_ms"]),
            _when(d["last_seen_ms"]),
            str(d["cursor"]),
        )
    console.print(table)


@devices_app.command("revoke")
def devices_revoke(device_id: int = typer.Argument(..., help="The device's id")) -> None:
    """Log a device out: its token stops working at once."""
    row = _write(admin_store.revoke_device, device_id, int(time.time() * 1000))
    if row is None:
        raise _fail(f"No live device {device_id}.")
    console.print(f"Revoked device {device_id} ({row[2] or 'unnamed'}) of user {row[1]}.")


@admin_app.command("stats")
def stats(as_json: bool = JSON) -> None:
    """Users, active devices, conversations, messages and events."""
    counts = _read(admin_store.counts)
    if as_json:
        typer.echo(json.dumps(counts))
        return
    table = Table(title="Wanglai")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        table.add_row(key.replace("_", " "), f"{value:,}")
    console.print(table)


# ---------------------------------------------------------------- ledger and wallets


@ledger_app.command("check")
def ledger_check(
    as_json: bool = JSON,
    show: int = typer.Option(50, min=1, help="Breaches to print per check"),
) -> None:
    """Verify the ledger's invariants; exit 1 if any is breached (2 if it could not be read)."""
    from wanglai.services.ledger_check import check_ledger

    try:
        report = _run(check_ledger)
    except Exception as exc:  # an unreadable database is not a breach: say so, exit 2
        console.print(f"[red]Could not read the ledger: {exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        checks = [
            {
                "name": r.name,
                "title": r.title,
                "checked": r.checked,
                "ok": r.ok,
                "breaches": [{"subject": b.subject, "detail": b.detail} for b in r.breaches],
            }
            for r in report.results
        ]
        typer.echo(json.dumps({"ok": report.ok, "checks": checks}))
    else:
        table = Table(title="Ledger check")
        for column in ("check", "verifies", "checked", "breaches", "result"):
            table.add_column(
                column, justify="right" if column in ("checked", "breaches") else "left"
            )
        for r in report.results:
            verdict = "[green]pass[/green]" if r.ok else "[red]FAIL[/red]"
            table.add_row(r.name, r.title, f"{r.checked:,}", f"{len(r.breaches):,}", verdict)
        console.print(table)
        if not report.ok:
            found = Table(title="Breaches")
            for column in ("check", "subject", "detail"):
                found.add_column(column)
            for r in report.results:
                for b in r.breaches[:show]:
                    found.add_row(b.check, b.subject, b.detail)
                if len(r.breaches) > show:
                    found.add_row(r.name, "…", f"{len(r.breaches) - show:,} more")
            console.print(found)
            console.print(f"[red]{len(report.breaches):,} breaches.[/red]")
        else:
            console.print("[green]The ledger is consistent.[/green]")
    if not report.ok:
        raise typer.Exit(1)


def _adjust(who: str, amount: int, reason: str, credit: bool) -> None:
    from wanglai.bus.local import LocalBus
    from wanglai.domain.clock import SystemClock
    from wanglai.domain.errors import WanglaiError
    from wanglai.domain.money import display
    from wanglai.services.wallet import WalletService
    from wanglai.services.wallet_admin import Adjustment, WalletAdmin

    settings = Settings.from_env()

    async def work(db: Database) -> Adjustment | None:
        found = await db.read(_user_row, who, settings.default_region)
        if found is None:
            return None
        wallet = WalletService(db, SystemClock(), LocalBus())
        await wallet.start()
        operator = WalletAdmin(wallet)
        user_id = int(found[0])
        if credit:
            return await operator.credit(user_id, amount, reason)
        return await operator.debit(user_id, amount, reason)

    try:
        done = _run(work)
    except WanglaiError as exc:
        raise _fail(f"Refused ({exc.code}): {exc.message}") from None
    if done is None:
        raise _fail(f"No user {who}.")
    verb = "Credited" if credit else "Debited"
    console.print(
        f"{verb} {display(done.amount, done.currency)} {done.currency}"
        f" {'to' if credit else 'from'} user {done.user_id} (transfer {done.transfer_id},"
        f" reason: {done.reason}). Balance {display(done.balance, done.currency)},"
        f" available {display(done.available, done.currency)}."
    )


AMOUNT = typer.Argument(..., help="Amount in fen (minor units): 1250 is 12.50")
WHO = typer.Argument(..., help="A phone number (+86…) or a user id")
REASON = typer.Option(..., "--reason", help="Why (kept on the transfer, at most 64 characters)")


@wallet_app.command("credit")
def wallet_credit(who: str = WHO, amount: int = AMOUNT, reason: str = REASON) -> None:
    """Put money into a wallet: a posted adjustment transfer from bank clearing."""
    _adjust(who, amount, reason, credit=True)


@wallet_app.command("debit")
def wallet_debit(who: str = WHO, amount: int = AMOUNT, reason: str = REASON) -> None:
    """Take money out of a wallet back to bank clearing; refused if it would overdraw it."""
    _adjust(who, amount, reason, credit=False)


@admin_app.command("settlement")
def settlement(
    day: str = typer.Option(..., "--day", help="The day, YYYY-MM-DD in China time (UTC+8)"),
    out: Path | None = typer.Option(None, "--out", help="Write the CSV here (default: stdout)"),
) -> None:
    """The day's settlement CSV for the bank and the operator: clearing transfers (top-ups,
    withdrawals) and each merchant's payments, refunds, fees and net, with totals."""
    from wanglai.services.settlement import SettlementService

    async def work(db: Database) -> str:
        return await SettlementService(db).export(day)

    try:
        text = _run(work)
    except Invalid as exc:
        raise _fail(exc.message) from None
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8", newline="")
    console.print(f"Wrote the settlement of {day} to {out}.")


@usage_app.command("export")
def usage_export(
    date: str = typer.Option(..., "--date", help="The day, YYYY-MM-DD in China time (UTC+8)"),
    fmt: str = typer.Option("csv", "--format", help="csv or json"),
    out: Path | None = typer.Option(None, "--out", help="Write the records here (default: stdout)"),
) -> None:
    """One day's usage records per subscriber device (MSISDN, bytes up and down, sponsor,
    connects, heartbeats, pushes), as the running server last flushed them."""
    from wanglai.domain.clock import SystemClock
    from wanglai.domain.usage import FORMATS, parse_date
    from wanglai.services.usage import UsageService

    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    try:
        parse_date(date)
    except Invalid as exc:
        raise typer.BadParameter(exc.message, param_hint="--date") from None
    settings = Settings.from_env()

    async def work(db: Database) -> str:
        return await UsageService(db, SystemClock(), settings.usage_sponsor).export(date, fmt)

    text = _run(work)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8", newline="")
    console.print(f"Wrote the usage records of {date} to {out}.")


@wallet_app.command("verify")
def wallet_verify(
    phone: str = typer.Argument(..., help="The owner's phone number (+86...)"),
    undo: bool = typer.Option(False, "--undo", help="Withdraw the verification"),
) -> None:
    """Record that a wallet owner's real name was verified (higher payment limits)."""
    from wanglai.bus.local import LocalBus
    from wanglai.domain.clock import SystemClock
    from wanglai.services.wallet import WalletService

    settings = Settings.from_env()
    try:
        number = normalise(phone, settings.default_region)
    except Invalid as exc:
        raise _fail(exc.message) from None

    async def work(db: Database) -> tuple[int, int, int] | None:
        row = await db.read(accounts.user_by_phone, number)
        if row is None:
            return None
        view = await WalletService(db, SystemClock(), LocalBus()).set_verified(
            int(row[0]), not undo
        )
        return int(row[0]), view.limits["per_payment"], view.limits["daily"]

    done = _run(work)
    if done is None:
        raise _fail(f"No user {number}.")
    user_id, per_payment, daily = done
    state = "no longer verified" if undo else "verified"
    console.print(
        f"User {user_id} ({number}) is {state}: at most {display(per_payment)} a payment,"
        f" {display(daily)} a day."
    )


# The SMS outbox commands live in their own module (they import this one's helpers).
from wanglai.cli.sms import sms_app  # noqa: E402

admin_app.add_typer(sms_app, name="sms")
