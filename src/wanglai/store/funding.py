"""Funding orders: money in from the phone bill or a bank card, money out to a bank account,
and the one place each order's outcome is applied to the ledger — exactly once, whether it
comes from a partner's callback, a synchronous refusal or the reconciliation sweep.

Each order is locked (PostgreSQL) before its state is read, so two writers applying the same
outcome (a duplicate callback, a callback racing the sweep) serialise and the second sees the
order already settled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wanglai.domain import funding as rules
from wanglai.domain import ledger as ledger_rules
from wanglai.domain.errors import Conflict, NotFound
from wanglai.domain.ledger import Request
from wanglai.domain.limits import SpendLimits, day_of
from wanglai.store import events, ledger, wallet
from wanglai.store.events import Notice, Sent
from wanglai.store.sql import Op, Row, all_rows, execute, one, scalar

COLUMNS = (
    "id, user_id, direction, channel, amount, currency, state, month, instrument, partner_ref,"
    " pending_id, transfer_id, failure, created_ms, updated_ms"
)


@dataclass(frozen=True)
class Order:
    id: int
    user_id: int
    direction: str
    channel: str
    amount: int
    currency: str
    state: str
    month: int
    instrument: str
    partner_ref: str | None
    pending_id: int | None
    transfer_id: int | None
    failure: str | None
    created_ms: int
    updated_ms: int


def _order(r: Row) -> Order:
    return Order(
        int(r[0]),
        int(r[1]),
        str(r[2]),
        str(r[3]),
        int(r[4]),
        str(r[5]),
        str(r[6]),
        int(r[7]),
        str(r[8]),
        None if r[9] is None else str(r[9]),
        None if r[10] is None else int(r[10]),
        None if r[11] is None else int(r[11]),
        None if r[12] is None else str(r[12]),
        int(r[13]),
        int(r[14]),
    )


def order_data(o: Order) -> dict[str, Any]:
    """The order as its owner sees it (the API's view and the ``funding.updated`` payload)."""
    return {
        "id": o.id,
        "direction": o.direction,
        "channel": o.channel,
        "amount": o.amount,
        "currency": o.currency,
        "state": o.state,
        "instrument": o.instrument,
        "failure": o.failure,
        "partner_ref": o.partner_ref,
        "transfer_id": o.transfer_id,
        "created_at": o.created_ms,
        "updated_at": o.updated_ms,
    }


def _reserve(
    made: Order, debit_id: int, credit_id: int, kind: str, now_ms: int
) -> Op[tuple[Order, list[Notice]]]:
    """Hold the order's amount as a pending transfer, posted or voided when the partner
    answers; returns the order with it and the wallet movement notices."""
    request = Request(
        debit_id,
        credit_id,
        made.amount,
        made.currency,
        kind,
        ledger_rules.PENDING,
        ref=f"funding:{made.id}",
    )
    transfers, loaded = yield from ledger.apply([request], now_ms)
    pending_id = transfers[0].id
    yield from execute("UPDATE funding_orders SET pending_id = ? WHERE id = ?", pending_id, made.id)
    return Order(**{**made.__dict__, "pending_id": pending_id}), wallet.movement_notices(
        loaded, transfers
    )


def _updated(o: Order) -> Notice:
    return Notice([o.user_id], "funding.updated", order_data(o))


def order(order_id: int, lock: bool = False) -> Op[Order | None]:
    sql = f"SELECT {COLUMNS} FROM funding_orders WHERE id = ?"
    row = yield from one(sql, order_id, pg_sql=sql + " FOR UPDATE" if lock else None)
    return None if row is None else _order(row)


def orders_of(user_id: int, before: int | None, limit: int) -> Op[list[Order]]:
    """The user's orders, newest first, paged by id."""
    rows = yield from all_rows(
        f"SELECT {COLUMNS} FROM funding_orders WHERE user_id = ? AND id < ?"
        " ORDER BY id DESC LIMIT ?",
        user_id,
        before if before is not None else 2**62,
        limit,
    )
    return [_order(r) for r in rows]


def carrier_used(user_id: int, month: int) -> Op[int]:
    """Phone-bill top-ups of ``month`` that count against the cap: pending and succeeded."""
    total = yield from scalar(
        "SELECT COALESCE(SUM(amount), 0) FROM funding_orders WHERE user_id = ? AND channel = ?"
        " AND month = ? AND direction = ? AND state IN (?, ?)",
        user_id,
        rules.CARRIER,
        month,
        rules.TOPUP,
        rules.PENDING,
        rules.SUCCEEDED,
    )
    return int(total or 0)


def _insert(
    user_id: int,
    direction: str,
    channel: str,
    amount: int,
    currency: str,
    instrument: str,
    now_ms: int,
) -> Op[Order]:
    row = yield from one(
        "INSERT INTO funding_orders (user_id, direction, channel, amount, currency, state, month,"
        f" instrument, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        f" RETURNING {COLUMNS}",
        user_id,
        direction,
        channel,
        amount,
        currency,
        rules.PENDING,
        rules.month_of(now_ms),
        instrument,
        now_ms,
        now_ms,
    )
    assert row is not None
    return _order(row)


def create_topup(
    user_id: int,
    channel: str,
    amount: int,
    currency: str,
    instrument: str,
    carrier_cap: int,
    now_ms: int,
    clearing_id: int | None = None,
) -> Op[tuple[Order, Sent]]:
    """A pending top-up order. Phone-bill top-ups are refused over the monthly cap; the wallet
    row is locked so that two at once count each other. With ``clearing_id`` (phone-bill
    top-ups) the amount is reserved at once as a pending transfer from that clearing account
    to the wallet, posted when the operator confirms and voided if it does not (the wallet's
    balance and available amount move only when it is posted); without it (card top-ups) no
    money moves until the bank confirms."""
    found = yield from wallet.open_wallet(user_id, currency, now_ms)
    lock = "SELECT user_id FROM wallets WHERE user_id = ?"
    yield from one(lock, user_id, pg_sql=lock + " FOR UPDATE")
    if channel == rules.CARRIER:
        used = yield from carrier_used(user_id, rules.month_of(now_ms))
        rules.check_carrier_cap(amount, used, carrier_cap)
    made = yield from _insert(user_id, rules.TOPUP, channel, amount, currency, instrument, now_ms)
    notices: list[Notice] = []
    if clearing_id is not None:
        made, notices = yield from _reserve(made, clearing_id, found.account_id, "topup", now_ms)
    notices.append(_updated(made))
    sent = yield from events.notify(notices, now_ms)
    return made, sent


def create_withdrawal(
    user_id: int,
    amount: int,
    currency: str,
    instrument: str,
    clearing_id: int,
    limits: SpendLimits,
    now_ms: int,
) -> Op[tuple[Order, Sent]]:
    """A withdrawal order whose amount is reserved at once: a pending transfer from the wallet
    to bank clearing, posted when the bank pays out, voided if it fails."""
    found = yield from wallet.spend(user_id, amount, now_ms, limits)
    made = yield from _insert(
        user_id, rules.WITHDRAW, rules.BANK, amount, currency, instrument, now_ms
    )
    made, notices = yield from _reserve(made, found.account_id, clearing_id, "withdrawal", now_ms)
    notices.append(_updated(made))
    sent = yield from events.notify(notices, now_ms)
    return made, sent


def record_ref(order_id: int, ref: str, now_ms: int) -> Op[None]:
    """Remember the partner's reference once it accepted (a callback may have done so first)."""
    yield from execute(
        "UPDATE funding_orders SET partner_ref = ?, updated_ms = ?"
        " WHERE id = ? AND partner_ref IS NULL",
        ref,
        now_ms,
        order_id,
    )


def settle(
    order_id: int,
    channel: str,
    succeeded: bool,
    reason: str | None,
    ref: str | None,
    amount: int | None,
    clearing_id: int,
    now_ms: int,
) -> Op[tuple[Order, bool, Sent]]:
    """Apply an order's outcome once; returns (order, applied, sent). An order that is already
    settled is returned unchanged (``applied`` False): a duplicate changes nothing.

    An order with a reservation (a withdrawal, a phone-bill top-up) has it posted on success
    and voided on failure; a failed withdrawal also gives back what it counted against the
    daily cap. A card top-up that succeeded moves the money from the bank's clearing account
    to the wallet. ``transfer_id`` is the transfer that posted or voided, or moved the money."""
    found = yield from order(order_id, lock=True)
    if found is None or found.channel != channel:
        raise NotFound("funding_order_not_found", "No such funding order.")
    if amount is not None and amount != found.amount:
        raise Conflict("amount_mismatch", f"Order {order_id} is for {found.amount} fen.")
    if ref is not None and found.partner_ref is not None and ref != found.partner_ref:
        raise Conflict("partner_ref_mismatch", f"Order {order_id} has another reference.")
    if found.state != rules.PENDING:
        return found, False, []
    notices: list[Notice] = []
    transfer_id: int | None = None
    ledger_ref = f"funding:{found.id}"
    if found.pending_id is not None:  # a reservation (withdrawals, phone-bill top-ups)
        if found.direction == rules.WITHDRAW and not succeeded:
            # before the ledger: the spend row is locked first, as ``spend`` does
            yield from wallet.unspend(found.user_id, found.amount, day_of(found.created_ms))
        kind = "topup" if found.direction == rules.TOPUP else "withdrawal"
        flags = ledger_rules.POST if succeeded else ledger_rules.VOID
        resolve = Request(kind=kind, flags=flags, pending_id=found.pending_id, ref=ledger_ref)
        transfers, loaded = yield from ledger.apply([resolve], now_ms)
        transfer_id = transfers[0].id
        notices.extend(wallet.movement_notices(loaded, transfers))
    elif found.direction == rules.TOPUP and succeeded:  # a card top-up: the money moves now
        account = yield from wallet.open_wallet(found.user_id, found.currency, now_ms)
        request = Request(
            clearing_id,
            account.account_id,
            found.amount,
            found.currency,
            "topup",
            ref=ledger_ref,
        )
        transfers, loaded = yield from ledger.apply([request], now_ms)
        transfer_id = transfers[0].id
        notices.extend(wallet.movement_notices(loaded, transfers))
    state = rules.SUCCEEDED if succeeded else rules.FAILED
    failure = None if succeeded else rules.check_reason(reason)
    yield from execute(
        "UPDATE funding_orders SET state = ?, failure = ?, transfer_id = ?,"
        " partner_ref = COALESCE(partner_ref, ?), updated_ms = ? WHERE id = ?",
        state,
        failure,
        transfer_id,
        ref,
        now_ms,
        found.id,
    )
    settled = yield from order(found.id)
    assert settled is not None
    notices.append(_updated(settled))
    sent = yield from events.notify(notices, now_ms)
    return settled, True, sent


def stale_pending(before_ms: int, limit: int) -> Op[list[Order]]:
    """Pending orders not changed since ``before_ms``: their callback is overdue."""
    rows = yield from all_rows(
        f"SELECT {COLUMNS} FROM funding_orders WHERE state = ? AND updated_ms <= ?"
        " ORDER BY id LIMIT ?",
        rules.PENDING,
        before_ms,
        limit,
    )
    return [_order(r) for r in rows]
