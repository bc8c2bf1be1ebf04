"""Merchants, their payment codes, payments and refunds, and the day's figures for settlement.

A payment and a refund are each one transaction that the service composes from these
queries, ``store.wallet`` and ``store.ledger.apply``. On PostgreSQL the code being paid and the
payment being refunded are locked (``FOR UPDATE``) before the ledger accounts, always in that
order, so concurrent payments of one code or refunds of one payment serialise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wanglai.domain.errors import NotFound
from wanglai.domain.ledger import state_of
from wanglai.domain.paycode import Code, CodeSpec
from wanglai.store import ledger
from wanglai.store.sql import Op, Row, Values, all_rows, execute, one

MERCHANT_COLUMNS = "m.id, m.owner_id, m.name, m.account_id, m.fee_ppm, m.created_ms"
CODE_COLUMNS = (
    "c.id, c.token, c.merchant_id, c.amount, c.currency, c.description, c.expires_ms, c.paid_id,"
    " c.created_ms"
)
PAYMENT_COLUMNS = (
    "p.id, p.merchant_id, p.payer_id, p.code_id, p.amount, p.currency, p.fee, p.refunded,"
    " p.transfer_id, p.created_ms"
)


@dataclass(frozen=True)
class Merchant:
    id: int
    owner_id: int
    name: str
    account_id: int
    fee_ppm: int
    created_ms: int


@dataclass(frozen=True)
class Payment:
    id: int
    merchant_id: int
    payer_id: int
    code_id: int | None
    amount: int
    currency: str
    fee: int
    refunded: int
    transfer_id: int
    created_ms: int


@dataclass(frozen=True)
class Refund:
    id: int
    payment_id: int
    amount: int
    fee_returned: int
    transfer_id: int
    created_ms: int


@dataclass(frozen=True)
class Entry:
    """A line of a merchant's statement: a payment in or a refund out."""

    kind: str
    id: int
    payment_id: int
    payer_id: int
    amount: int
    fee: int
    """The fee charged (payment) or returned (refund)."""
    transfer_id: int
    created_ms: int


def _merchant(row: Row) -> Merchant:
    return Merchant(int(row[0]), int(row[1]), str(row[2]), int(row[3]), int(row[4]), int(row[5]))


def _code(row: Row) -> Code:
    return Code(
        int(row[0]),
        str(row[1]),
        int(row[2]),
        None if row[3] is None else int(row[3]),
        str(row[4]),
        str(row[5]),
        None if row[6] is None else int(row[6]),
        None if row[7] is None else int(row[7]),
        int(row[8]),
    )


def _payment(row: Row) -> Payment:
    return Payment(
        int(row[0]),
        int(row[1]),
        int(row[2]),
        None if row[3] is None else int(row[3]),
        int(row[4]),
        str(row[5]),
        int(row[6]),
        int(row[7]),
        int(row[8]),
        int(row[9]),
    )


def merchant_not_found() -> NotFound:
    return NotFound("merchant_not_found", "No such merchant of yours.")


# ---------------------------------------------------------------- merchants


def open_merchant(
    owner_id: int, name: str, fee_ppm: int, currency: str, now_ms: int
) -> Op[Merchant]:
    """A new merchant with its own ledger account (never below zero, like a wallet)."""
    # The account is named after the merchant's id, which exists only once the row does: the
    # row first holds a placeholder unique to its owner (-owner_id), replaced a moment later.
    row = yield from one(
        "INSERT INTO merchants (owner_id, name, account_id, fee_ppm, created_ms)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        owner_id,
        name,
        -owner_id,
        fee_ppm,
        now_ms,
    )
    assert row is not None
    merchant_id = int(row[0])
    account_id = yield from ledger.open_account("merchant", merchant_id, "wallet", currency, now_ms)
    yield from execute("UPDATE merchants SET account_id = ? WHERE id = ?", account_id, merchant_id)
    return Merchant(merchant_id, owner_id, name, account_id, fee_ppm, now_ms)


def merchant(merchant_id: int) -> Op[Merchant | None]:
    row = yield from one(f"SELECT {MERCHANT_COLUMNS} FROM merchants m WHERE m.id = ?", merchant_id)
    return None if row is None else _merchant(row)


def owned(merchant_id: int, owner_id: int) -> Op[Merchant]:
    """The caller's merchant; anyone else's is "not found", as if it did not exist."""
    found = yield from merchant(merchant_id)
    if found is None or found.owner_id != owner_id:
        raise merchant_not_found()
    return found


def merchants_of(owner_id: int) -> Op[list[Merchant]]:
    rows = yield from all_rows(
        f"SELECT {MERCHANT_COLUMNS} FROM merchants m WHERE m.owner_id = ? ORDER BY m.id",
        owner_id,
    )
    return [_merchant(r) for r in rows]


def balances(account_ids: Sequence[int]) -> Op[dict[int, int]]:
    found = yield from ledger.accounts(account_ids)
    return {i: a.balance for i, a in found.items()}


# ---------------------------------------------------------------- codes


def create_code(
    merchant_id: int, token: str, spec: CodeSpec, currency: str, now_ms: int
) -> Op[Code]:
    expires = None if spec.expires_in_ms is None else now_ms + spec.expires_in_ms
    row = yield from one(
        "INSERT INTO payment_codes (token, merchant_id, amount, currency, description,"
        " expires_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        token,
        merchant_id,
        spec.amount,
        currency,
        spec.description,
        expires,
        now_ms,
    )
    assert row is not None
    return Code(
        int(row[0]),
        token,
        merchant_id,
        spec.amount,
        currency,
        spec.description,
        expires,
        None,
        now_ms,
    )


def code(code_id: int, merchant_id: int) -> Op[Code | None]:
    row = yield from one(
        f"SELECT {CODE_COLUMNS} FROM payment_codes c WHERE c.id = ? AND c.merchant_id = ?",
        code_id,
        merchant_id,
    )
    return None if row is None else _code(row)


def code_by_token(token: str, lock: bool = False) -> Op[tuple[Code, Merchant] | None]:
    """The code and its merchant; ``lock`` takes the code's row lock on PostgreSQL."""
    sql = (
        f"SELECT {CODE_COLUMNS}, {MERCHANT_COLUMNS} FROM payment_codes c"
        " JOIN merchants m ON m.id = c.merchant_id WHERE c.token = ?"
    )
    pg_sql = sql.replace("?", "$1") + " FOR UPDATE OF c" if lock else None
    row = yield from one(sql, token, pg_sql=pg_sql)
    if row is None:
        return None
    return _code(row[:9]), _merchant(row[9:])


def mark_paid(code_id: int, payment_id: int) -> Op[None]:
    yield from execute(
        "UPDATE payment_codes SET paid_id = ? WHERE id = ? AND paid_id IS NULL",
        payment_id,
        code_id,
    )


# ---------------------------------------------------------------- payments and refunds


def add_payment(
    merchant_id: int,
    payer_id: int,
    code_id: int | None,
    amount: int,
    currency: str,
    fee: int,
    transfer_id: int,
    now_ms: int,
) -> Op[Payment]:
    row = yield from one(
        "INSERT INTO merchant_payments (merchant_id, payer_id, code_id, amount, currency, fee,"
        " transfer_id, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        merchant_id,
        payer_id,
        code_id,
        amount,
        currency,
        fee,
        transfer_id,
        now_ms,
    )
    assert row is not None
    return Payment(
        int(row[0]), merchant_id, payer_id, code_id, amount, currency, fee, 0, transfer_id, now_ms
    )


def payment(payment_id: int, merchant_id: int, lock: bool = False) -> Op[Payment | None]:
    """A payment to this merchant; ``lock`` takes its row lock on PostgreSQL (refunds)."""
    sql = f"SELECT {PAYMENT_COLUMNS} FROM merchant_payments p WHERE p.id = ? AND p.merchant_id = ?"
    pg_sql = (
        f"SELECT {PAYMENT_COLUMNS} FROM merchant_payments p WHERE p.id = $1"
        " AND p.merchant_id = $2 FOR UPDATE"
        if lock
        else None
    )
    row = yield from one(sql, payment_id, merchant_id, pg_sql=pg_sql)
    return None if row is None else _payment(row)


def add_refund(
    payment_id: int, amount: int, fee_returned: int, transfer_id: int, now_ms: int
) -> Op[Refund]:
    row = yield from one(
        "INSERT INTO merchant_refunds (payment_id, amount, fee_returned, transfer_id, created_ms)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        payment_id,
        amount,
        fee_returned,
        transfer_id,
        now_ms,
    )
    assert row is not None
    yield from execute(
        "UPDATE merchant_payments SET refunded = refunded + ? WHERE id = ?", amount, payment_id
    )
    return Refund(int(row[0]), payment_id, amount, fee_returned, transfer_id, now_ms)


def statement(merchant_id: int, before: int | None, limit: int) -> Op[list[Entry]]:
    """Payments and refunds, newest first, paged by ledger transfer id (one order for both)."""
    cursor = 2**62 if before is None else before
    rows = yield from all_rows(
        "SELECT 'payment', p.id, p.id, p.payer_id, p.amount, p.fee, p.transfer_id, p.created_ms"
        " FROM merchant_payments p WHERE p.merchant_id = ? AND p.transfer_id < ?"
        " UNION ALL"
        " SELECT 'refund', r.id, r.payment_id, p.payer_id, r.amount, r.fee_returned,"
        " r.transfer_id, r.created_ms FROM merchant_refunds r"
        " JOIN merchant_payments p ON p.id = r.payment_id"
        " WHERE p.merchant_id = ? AND r.transfer_id < ?"
        " ORDER BY 7 DESC LIMIT ?",
        merchant_id,
        cursor,
        merchant_id,
        cursor,
        limit,
    )
    return [
        Entry(
            str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7])
        )
        for r in rows
    ]


# ---------------------------------------------------------------- settlement


@dataclass(frozen=True)
class ClearingMove:
    """A transfer in or out of a clearing account (a top-up, a withdrawal, ...)."""

    transfer_id: int
    clearing: str
    """The clearing account's name (``bank_clearing``, ``operator_clearing``)."""
    incoming: bool
    """Money from the clearing account into the platform (the clearing account is debited)."""
    kind: str
    state: str
    amount: int
    currency: str
    user_id: int | None
    """The wallet owner on the other side, if a user's wallet."""
    created_ms: int


@dataclass(frozen=True)
class MerchantDay:
    merchant_id: int
    name: str
    currency: str
    payments: int
    gross: int
    fees: int
    refunds: int
    refunded: int
    fees_returned: int


def clearing_moves(since_ms: int, until_ms: int) -> Op[list[ClearingMove]]:
    """Every transfer of ``[since_ms, until_ms)`` that touched a clearing account, by id."""
    names = (ledger.BANK_CLEARING, ledger.OPERATOR_CLEARING)
    rows = yield from all_rows(
        "SELECT id, name FROM ledger_accounts WHERE owner_kind = 'system' AND name = ANY(?)",
        Values(names),
    )
    clearing = {int(r[0]): str(r[1]) for r in rows}
    if not clearing:
        return []
    ids = Values(sorted(clearing))
    rows = yield from all_rows(
        f"SELECT {ledger.TRANSFER_COLUMNS} FROM ledger_transfers"
        " WHERE created_ms >= ? AND created_ms < ? AND (debit_id = ANY(?) OR credit_id = ANY(?))"
        " ORDER BY id",
        since_ms,
        until_ms,
        ids,
        ids,
    )
    transfers = [ledger.transfer_of(r) for r in rows]
    others = sorted({t.credit_id if t.debit_id in clearing else t.debit_id for t in transfers})
    owners: dict[int, int] = {}
    if others:
        rows = yield from all_rows(
            "SELECT id, owner_id FROM ledger_accounts WHERE owner_kind = 'user' AND id = ANY(?)",
            Values(others),
        )
        owners = {int(r[0]): int(r[1]) for r in rows}
    moves = []
    for t in transfers:
        incoming = t.debit_id in clearing
        account, other = (t.debit_id, t.credit_id) if incoming else (t.credit_id, t.debit_id)
        moves.append(
            ClearingMove(
                t.id,
                clearing[account],
                incoming,
                t.kind,
                state_of(t),
                t.amount,
                t.currency,
                owners.get(other),
                t.created_ms,
            )
        )
    return moves


def merchant_days(since_ms: int, until_ms: int) -> Op[list[MerchantDay]]:
    """Per merchant, the payments and the refunds made in ``[since_ms, until_ms)``, by id."""
    paid = yield from all_rows(
        "SELECT merchant_id, COUNT(*), SUM(amount), SUM(fee) FROM merchant_payments"
        " WHERE created_ms >= ? AND created_ms < ? GROUP BY merchant_id",
        since_ms,
        until_ms,
    )
    back = yield from all_rows(
        "SELECT p.merchant_id, COUNT(*), SUM(r.amount), SUM(r.fee_returned)"
        " FROM merchant_refunds r JOIN merchant_payments p ON p.id = r.payment_id"
        " WHERE r.created_ms >= ? AND r.created_ms < ? GROUP BY p.merchant_id",
        since_ms,
        until_ms,
    )
    paid_by = {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in paid}
    back_by = {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in back}
    ids = sorted(paid_by.keys() | back_by.keys())
    if not ids:
        return []
    rows = yield from all_rows(
        "SELECT m.id, m.name, a.currency FROM merchants m"
        " JOIN ledger_accounts a ON a.id = m.account_id WHERE m.id = ANY(?)",
        Values(ids),
    )
    names = {int(r[0]): (str(r[1]), str(r[2])) for r in rows}
    days = []
    for merchant_id in ids:
        name, currency = names[merchant_id]
        payments, gross, fees = paid_by.get(merchant_id, (0, 0, 0))
        refunds, refunded, fees_returned = back_by.get(merchant_id, (0, 0, 0))
        days.append(
            MerchantDay(
                merchant_id,
                name,
                currency,
                payments,
                gross,
                fees,
                refunds,
                refunded,
                fees_returned,
            )
        )
    return days
