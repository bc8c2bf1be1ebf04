"""The ledger's rows: accounts, transfers and pending transfers, loaded into a
``domain.ledger.Book`` and written back after the book has applied a batch of requests.

``apply`` is the one way money moves: every use case composes it (``yield from``) with its own
rows in one transaction. ``create_transfers`` is the engine's batch interface (TigerBeetle's
``create_transfers``): many independent requests, one outcome each, set-wise.
On PostgreSQL the accounts a batch touches are locked in id order, so concurrent writers (and
processes) serialise per account instead of overwriting each other's sums.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wanglai.domain import ledger as rules
from wanglai.domain.errors import WanglaiError
from wanglai.domain.ledger import Account, Book, Pending, Request, Transfer
from wanglai.store.sql import Op, Row, Values, all_rows, execute, many, one, portable, scalar

BANK_CLEARING = "bank_clearing"
OPERATOR_CLEARING = "operator_clearing"
REDPACKET_ESCROW = "redpacket_escrow"
FEES = "fees"
SYSTEM_ACCOUNTS = (BANK_CLEARING, OPERATOR_CLEARING, REDPACKET_ESCROW, FEES)

ACCOUNT_COLUMNS = (
    "id, currency, flags, debits_pending, debits_posted, credits_pending, credits_posted"
)
TRANSFER_COLUMNS = (
    "id, debit_id, credit_id, amount, currency, kind, flags, pending_id, expires_ms, ref,"
    " created_ms"
)
_OWNER = (
    "CASE a.owner_kind WHEN 'user' THEN a.owner_id"
    " WHEN 'merchant' THEN (SELECT m.owner_id FROM merchants m WHERE m.id = a.owner_id)"
    " ELSE 0 END"
)


@dataclass
class Loaded:
    """A book and, for each account in it, the user who sees its movements (0: nobody)."""

    book: Book
    owners: dict[int, int]


def account_of(row: Row) -> Account:
    return Account(
        int(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]), int(row[6])
    )


def transfer_of(row: Row) -> Transfer:
    return Transfer(
        int(row[0]),
        int(row[1]),
        int(row[2]),
        int(row[3]),
        str(row[4]),
        str(row[5]),
        int(row[6]),
        None if row[7] is None else int(row[7]),
        None if row[8] is None else int(row[8]),
        None if row[9] is None else str(row[9]),
        int(row[10]),
    )


# ---------------------------------------------------------------- accounts


def ensure_system(currencies: Iterable[str], now_ms: int) -> Op[None]:
    """Create the system accounts and the transfer id counter if they are missing."""
    for currency in currencies:
        for name in SYSTEM_ACCOUNTS:
            yield from execute(
                "INSERT INTO ledger_accounts (owner_kind, owner_id, name, currency, flags,"
                " created_ms) VALUES ('system', 0, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
                name,
                currency,
                now_ms,
            )
    yield from execute(
        "INSERT INTO ledger_counters (name, value) VALUES ('transfer', 0) ON CONFLICT DO NOTHING"
    )


def system_accounts() -> Op[dict[tuple[str, str], int]]:
    """(name, currency) -> account id of every system account."""
    rows = yield from all_rows(
        "SELECT name, currency, id FROM ledger_accounts WHERE owner_kind = 'system'"
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def open_account(owner_kind: str, owner_id: int, name: str, currency: str, now_ms: int) -> Op[int]:
    """The account of this owner, made (limited to its credits) if it does not exist yet."""
    found = yield from scalar(
        "SELECT id FROM ledger_accounts WHERE owner_kind = ? AND owner_id = ? AND name = ?"
        " AND currency = ?",
        owner_kind,
        owner_id,
        name,
        currency,
    )
    if found is not None:
        return int(found)
    row = yield from one(
        "INSERT INTO ledger_accounts (owner_kind, owner_id, name, currency, flags, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        owner_kind,
        owner_id,
        name,
        currency,
        rules.DEBITS_LIMITED,
        now_ms,
    )
    assert row is not None
    return int(row[0])


def accounts(account_ids: Sequence[int]) -> Op[dict[int, Account]]:
    rows = yield from all_rows(
        f"SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ANY(?)", Values(account_ids)
    )
    return {int(r[0]): account_of(r) for r in rows}


def all_accounts() -> Op[list[tuple[Account, str, int, str]]]:
    """Every account with its owner kind, owner id and name (for the checker)."""
    rows = yield from all_rows(
        f"SELECT {ACCOUNT_COLUMNS}, owner_kind, owner_id, name FROM ledger_accounts ORDER BY id"
    )
    return [(account_of(r), str(r[7]), int(r[8]), str(r[9])) for r in rows]


# ---------------------------------------------------------------- applying requests


def load(account_ids: Iterable[int], pending_ids: Iterable[int] = ()) -> Op[Loaded]:
    """The accounts and open pending transfers named (and the pendings' accounts), locked on
    PostgreSQL in id order."""
    pending: dict[int, Pending] = {}
    wanted = set(account_ids)
    pids = sorted(set(pending_ids))
    if pids:
        rows = yield from all_rows(
            "SELECT t.id, t.debit_id, t.credit_id, t.amount, t.currency, t.expires_ms, p.state"
            " FROM ledger_transfers t JOIN ledger_pending p ON p.transfer_id = t.id"
            " WHERE t.id = ANY(?)",
            Values(pids),
        )
        for r in rows:
            pid = int(r[0])
            pending[pid] = Pending(
                pid,
                int(r[1]),
                int(r[2]),
                int(r[3]),
                str(r[4]),
                None if r[5] is None else int(r[5]),
                str(r[6]),
            )
            wanted.update((int(r[1]), int(r[2])))
    ids = sorted(wanted)
    rows = yield from all_rows(
        f"SELECT {ACCOUNT_COLUMNS}, {_OWNER} FROM ledger_accounts a WHERE id = ANY(?)",
        Values(ids),
        pg_sql=f"SELECT {ACCOUNT_COLUMNS}, {_OWNER} FROM ledger_accounts a WHERE id = ANY($1)"
        " ORDER BY id FOR UPDATE",
    )
    book = Book({int(r[0]): account_of(r) for r in rows}, pending)
    return Loaded(book, {int(r[0]): int(r[7] or 0) for r in rows})


def reserve_ids(count: int) -> Op[int]:
    """The first of ``count`` new transfer ids."""
    row = yield from one(
        "UPDATE ledger_counters SET value = value + ? WHERE name = 'transfer' RETURNING value",
        count,
    )
    assert row is not None, "ledger_counters is seeded by ensure_system"
    return int(row[0]) - count + 1


def save(book: Book, start: int = 0) -> Op[None]:
    """Write what ``book`` made from ``book.made[start:]`` on: transfers, pending rows, sums."""
    made = book.made[start:]
    if not made:
        return
    yield from many(
        f"INSERT INTO ledger_transfers ({TRANSFER_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                t.id,
                t.debit_id,
                t.credit_id,
                t.amount,
                t.currency,
                t.kind,
                t.flags,
                t.pending_id,
                t.expires_ms,
                t.ref,
                t.created_ms,
            )
            for t in made
        ],
    )
    new_pending = [(t.id, t.expires_ms) for t in made if t.flags & rules.PENDING]
    yield from many(
        "INSERT INTO ledger_pending (transfer_id, state, expires_ms) VALUES (?, 'pending', ?)",
        new_pending,
    )
    resolved = [(t.flags, t.id, t.pending_id) for t in made if t.pending_id is not None]
    yield from many(
        "UPDATE ledger_pending SET state = ?, resolved_by = ? WHERE transfer_id = ?",
        [
            (rules.POSTED if flags & rules.POST else rules.VOIDED, tid, pid)
            for flags, tid, pid in resolved
        ],
    )
    touched = {i for t in made for i in (t.debit_id, t.credit_id)}
    yield from many(
        "UPDATE ledger_accounts SET debits_pending = ?, debits_posted = ?, credits_pending = ?,"
        " credits_posted = ? WHERE id = ?",
        [
            (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.id)
            for a in (book.accounts[i] for i in sorted(touched))
        ],
    )


def apply(requests: Sequence[Request], now_ms: int) -> Op[tuple[list[Transfer], Loaded]]:
    """Apply ``requests`` all or none (linked); returns the transfers and the book after them.

    Raises the first refusal (``InsufficientFunds``, ``pending_already_posted``, …) and writes
    nothing then.
    """
    loaded = yield from load(
        (i for r in requests for i in (r.debit_id, r.credit_id) if i),
        (r.pending_id for r in requests if r.pending_id is not None),
    )
    first = yield from reserve_ids(len(requests))
    transfers = loaded.book.apply_linked(requests, first, now_ms)
    yield from save(loaded.book)
    return transfers, loaded


def create_transfers(requests: Sequence[Request], now_ms: int) -> Op[list[Transfer | WanglaiError]]:
    """Many independent requests in one go: each is applied or refused on its own, in order."""
    loaded = yield from load(
        (i for r in requests for i in (r.debit_id, r.credit_id) if i),
        (r.pending_id for r in requests if r.pending_id is not None),
    )
    first = yield from reserve_ids(len(requests))
    outcomes: list[Transfer | WanglaiError] = []
    book = loaded.book
    for i, request in enumerate(requests):
        try:
            outcomes.append(book.apply(request, first + i, now_ms))
        except WanglaiError as refused:
            outcomes.append(refused)
    yield from save(book)
    return outcomes


# ---------------------------------------------------------------- reading


def transfer(transfer_id: int) -> Op[Transfer | None]:
    row = yield from one(
        f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = ?", transfer_id
    )
    return None if row is None else transfer_of(row)


def statement(
    account_id: int,
    before: int | None,
    limit: int,
    kinds: Sequence[str] = (),
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> Op[list[Transfer]]:
    """Transfers in or out of an account, newest first, paged by id; filtered by kind and time."""
    where = ["(debit_id = ? OR credit_id = ?)"]
    params: list[object] = [account_id, account_id]
    if before is not None:
        where.append("id < ?")
        params.append(before)
    if kinds:
        where.append("kind = ANY(?)")
        params.append(Values(kinds))
    if since_ms is not None:
        where.append("created_ms >= ?")
        params.append(since_ms)
    if until_ms is not None:
        where.append("created_ms < ?")
        params.append(until_ms)
    params.append(limit)
    rows = yield from all_rows(
        f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE {' AND '.join(where)}"
        " ORDER BY id DESC LIMIT ?",
        *params,
    )
    return [transfer_of(r) for r in rows]


portable(create_transfers)
portable(apply)
