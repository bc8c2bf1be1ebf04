"""The daily settlement export (CSV) for the bank and the operator: what crossed the clearing
accounts on one China-time day (top-ups in, withdrawals out) and each merchant's takings.

The file is deterministic (the same day and data give the same bytes), amounts are integer fen
with a display column beside each, and each section ends with its totals. The format is
described in ``docs/operations.md`` (Daily settlement export).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone

from wanglai.domain import money
from wanglai.domain.errors import Invalid
from wanglai.domain.limits import CHINA_OFFSET_MS, DAY_MS
from wanglai.store import ledger
from wanglai.store.database import Database
from wanglai.store.merchants import ClearingMove, MerchantDay, clearing_moves, merchant_days
from wanglai.store.sql import Op

CHINA = timezone(timedelta(milliseconds=CHINA_OFFSET_MS), "CST")
CLEARING = (ledger.BANK_CLEARING, ledger.OPERATOR_CLEARING)
AMOUNTS = ("amount", "in", "out", "refunded", "fees", "net")
COLUMNS = (
    "record",
    "currency",
    "id",
    "time",
    "account",
    "kind",
    "state",
    "user_id",
    "merchant",
    "count",
    "refunds",
    *(column for name in AMOUNTS for column in (f"{name}_fen", name)),
)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def day_bounds(day: str) -> tuple[int, int]:
    """``[since_ms, until_ms)`` of a ``YYYY-MM-DD`` day in China time (UTC+8)."""
    try:
        if not _DAY.match(day):
            raise ValueError(day)
        first = date.fromisoformat(day)
    except ValueError:
        raise Invalid("invalid_day", "The day is YYYY-MM-DD, e.g. 2024-05-01.") from None
    days = (first - date(1970, 1, 1)).days
    since = days * DAY_MS - CHINA_OFFSET_MS
    return since, since + DAY_MS


def china_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, CHINA).isoformat(timespec="milliseconds")


def _text(value: str) -> str:
    """A name as a cell a spreadsheet shows and does not run (CSV formula injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _amounts(currency: str, **values: int) -> dict[str, str]:
    cells: dict[str, str] = {}
    for name, value in values.items():
        cells[f"{name}_fen"] = str(value)
        cells[name] = money.display(value, currency)
    return cells


def _posted_net(move: ClearingMove) -> int:
    """What the transfer moved into (+) or out of (-) the platform: a pending transfer only
    reserves and a void only releases, so only posted ones count."""
    if move.state != "posted":
        return 0
    return move.amount if move.incoming else -move.amount


def render(
    moves: Sequence[ClearingMove], merchants: Sequence[MerchantDay], currencies: Iterable[str]
) -> str:
    """The CSV text of one day's clearing transfers and merchant takings, totals included."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, restval="", lineterminator="\r\n")
    writer.writeheader()
    currencies = sorted(
        set(currencies) | {m.currency for m in moves} | {m.currency for m in merchants}
    )
    for move in moves:
        writer.writerow(
            {
                "record": "transfer",
                "currency": move.currency,
                "id": move.transfer_id,
                "time": china_time(move.created_ms),
                "account": move.clearing,
                "kind": move.kind,
                "state": move.state,
                "user_id": "" if move.user_id is None else move.user_id,
                **_amounts(move.currency, amount=move.amount, net=_posted_net(move)),
            }
        )
    for currency in currencies:
        for account in CLEARING:
            mine = [m for m in moves if m.currency == currency and m.clearing == account]
            incoming = sum(m.amount for m in mine if m.incoming and m.state == "posted")
            outgoing = sum(m.amount for m in mine if not m.incoming and m.state == "posted")
            writer.writerow(
                {
                    "record": "clearing_total",
                    "currency": currency,
                    "account": account,
                    "count": len(mine),
                    **_amounts(
                        currency, **{"in": incoming, "out": outgoing}, net=incoming - outgoing
                    ),
                }
            )
    for day in merchants:
        fees = day.fees - day.fees_returned
        writer.writerow(
            {
                "record": "merchant",
                "currency": day.currency,
                "id": day.merchant_id,
                "merchant": _text(day.name),
                "count": day.payments,
                "refunds": day.refunds,
                **_amounts(
                    day.currency,
                    amount=day.gross,
                    refunded=day.refunded,
                    fees=fees,
                    net=day.gross - day.refunded - fees,
                ),
            }
        )
    for currency in currencies:
        mine_days = [d for d in merchants if d.currency == currency]
        gross = sum(d.gross for d in mine_days)
        refunded = sum(d.refunded for d in mine_days)
        fees = sum(d.fees - d.fees_returned for d in mine_days)
        writer.writerow(
            {
                "record": "merchant_total",
                "currency": currency,
                "count": sum(d.payments for d in mine_days),
                "refunds": sum(d.refunds for d in mine_days),
                **_amounts(
                    currency,
                    amount=gross,
                    refunded=refunded,
                    fees=fees,
                    net=gross - refunded - fees,
                ),
            }
        )
    return out.getvalue()


def day_figures(since_ms: int, until_ms: int) -> Op[tuple[list[ClearingMove], list[MerchantDay]]]:
    moves = yield from clearing_moves(since_ms, until_ms)
    days = yield from merchant_days(since_ms, until_ms)
    return moves, days


class SettlementService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def export(self, day: str) -> str:
        """The settlement CSV of ``day`` (``YYYY-MM-DD``, China time)."""
        since, until = day_bounds(day)
        moves, days = await self.db.read(day_figures, since, until)
        return render(moves, days, money.CURRENCIES)
