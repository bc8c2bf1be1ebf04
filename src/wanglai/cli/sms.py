"""``wanglai admin sms``: the SMS outbox — counts by state, and test SMS put in it (to check
the link to the SMSC, or to load it). A running server submits what is put here within a
second (its sender polls the outbox)."""

from __future__ import annotations

import json

import typer

from wanglai.cli.admin import _fail, _read, _write, console
from wanglai.domain.clock import SystemClock
from wanglai.domain.errors import Invalid
from wanglai.domain.phone import normalise
from wanglai.settings import Settings
from wanglai.store import sms as store
from wanglai.store.sql import Op

sms_app = typer.Typer(no_args_is_help=True, help="The SMS outbox.")
MAX_COUNT = 10_000
JSON = typer.Option(False, "--json", help="Print JSON instead of a table")


@sms_app.command("status")
def status(as_json: bool = JSON) -> None:
    """How many SMS are in each state (queued, sending, submitted, delivered, ...)."""
    counts = _read(store.count_by_state)
    if as_json:
        typer.echo(json.dumps(counts))
        return
    for state, count in sorted(counts.items()):
        console.print(f"{state:>10}  {count:,}")


def _enqueue_many(msisdn: str, text: str, count: int, now: int) -> Op[list[int]]:
    ids = []
    for i in range(count):
        body = text.replace("{n}", str(i + 1))
        ids.append((yield from store.enqueue(msisdn, body, "test", now)))
    return ids


@sms_app.command("send")
def send(
    to: str = typer.Option(..., "--to", help="The phone number (E.164, or local to the region)"),
    text: str = typer.Option(..., "--text", help="The text; {n} is replaced by 1, 2, 3 ..."),
    count: int = typer.Option(1, "--count", help=f"How many (at most {MAX_COUNT:,})"),
) -> None:
    """Put test SMS in the outbox (purpose ``test``); the server's sender submits them."""
    settings = Settings.from_env()
    try:
        msisdn = normalise(to, settings.default_region)
    except Invalid as exc:
        raise _fail(exc.message) from None
    if not 1 <= count <= MAX_COUNT:
        raise _fail(f"--count is 1 to {MAX_COUNT:,}.")
    if not text or len(text) > 1000:
        raise _fail("--text is 1 to 1000 characters.")
    ids = _write(_enqueue_many, msisdn, text, count, SystemClock().now_ms())
    console.print(f"Queued {len(ids):,} SMS to {msisdn} (ids {ids[0]}..{ids[-1]}).")
