"""Wallet rows around the ledger: each user's wallet (account, PIN, limits, settings), the daily
spend counter, idempotency keys, and the events that tell people their money moved.

Use cases compose these with ``store.ledger.apply`` in one transaction, so a payment, its
idempotency record and its events commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from wanglai.domain import ledger as rules
from wanglai.domain import limits as spend_rules
from wanglai.domain import pin as pin_rules
from wanglai.domain.errors import NotFound
from wanglai.domain.idempotency import reused
from wanglai.domain.ledger import Transfer
from wanglai.store import ledger
from wanglai.store.events import Notice
from wanglai.store.ledger import Loaded
from wanglai.store.sql import Op, Values, all_rows, execute, many, one, scalar

T = TypeVar("T")

WALLET_COLUMNS = (
    "w.user_id, w.account_id, w.pin_hash, w.pin_failures, w.locked_until_ms, w.verified,"
    " w.strangers, w.pin_free_limit"
)


@dataclass(frozen=True)
class Wallet:
    user_id: int
    account_id: int
    pin_hash: str | None
    pin_failures: int
    locked_until_ms: int
    verified: bool
    strangers: bool
    """Whether people who are not friends may send this user money."""
    pin_free_limit: int


def _wallet(row: Sequence[object]) -> Wallet:
    return Wallet(
        int(row[0]),  # type: ignore[call-overload]
        int(row[1]),  # type: ignore[call-overload]
        None if row[2] is None else str(row[2]),
        int(row[3]),  # type: ignore[call-overload]
        int(row[4]),  # type: ignore[call-overload]
        bool(row[5]),
        bool(row[6]),
        int(row[7]),  # type: ignore[call-overload]
    )


def wallet(user_id: int) -> Op[Wallet | None]:
    row = yield from one(f"SELECT {WALLET_COLUMNS} FROM wallets w WHERE w.user_id = ?", user_id)
    return None if row is None else _wallet(row)


def wallets(user_ids: Sequence[int]) -> Op[dict[int, Wallet]]:
    """The wallets of these users (those who have one), by user id."""
    rows = yield from all_rows(
        f"SELECT {WALLET_COLUMNS} FROM wallets w WHERE w.user_id = ANY(?)", Values(user_ids)
    )
    return {int(r[0]): _wallet(r) for r in rows}


def open_wallet(user_id: int, currency: str, now_ms: int) -> Op[Wallet]:
    """The user's wallet, made on first use (a user who was never paid has none yet)."""
    found = yield from wallet(user_id)
    if found is not None:
        return found
    exists = yield from scalar("SELECT 1 FROM users WHERE id = ? AND placeholder = 0", user_id)
    if exists is None:
        raise NotFound("user_not_found", "No such user.")
    account_id = yield from ledger.open_account("user", user_id, "wallet", currency, now_ms)
    yield from execute(
        "INSERT INTO wallets (user_id, account_id, created_ms) VALUES (?, ?, ?)",
        user_id,
        account_id,
        now_ms,
    )
    made = yield from wallet(user_id)
    assert made is not None
    return made


def set_pin(user_id: int, pin_hash: str, currency: str, now_ms: int) -> Op[None]:
    yield from open_wallet(user_id, currency, now_ms)
    yield from execute(
        "UPDATE wallets SET pin_hash = ?, pin_failures = 0, locked_until_ms = 0 WHERE user_id = ?",
        pin_hash,
        user_id,
    )


def pin_failed(user_id: int, now_ms: int, policy: pin_rules.PinPolicy) -> Op[int]:
    """Count a wrong PIN; returns the failures so far (0 once payments got locked)."""
    row = yield from one(
        "SELECT pin_failures, locked_until_ms FROM wallets WHERE user_id = ?",
        user_id,
        pg_sql="SELECT pin_failures, locked_until_ms FROM wallets WHERE user_id = $1 FOR UPDATE",
    )
    if row is None:
        return 0
    pin_rules.check_unlocked(int(row[1]), now_ms)
    failures, locked = pin_rules.after_failure(int(row[0]), now_ms, policy)
    yield from execute(
        "UPDATE wallets SET pin_failures = ?, locked_until_ms = ? WHERE user_id = ?",
        failures,
        locked,
        user_id,
    )
    return failures


def pin_passed(user_id: int) -> Op[None]:
    yield from execute(
        "UPDATE wallets SET pin_failures = 0 WHERE user_id = ? AND pin_failures > 0", user_id
    )


def update_settings(
    user_id: int, strangers: bool | None, pin_free_limit: int | None, currency: str, now_ms: int
) -> Op[Wallet]:
    yield from open_wallet(user_id, currency, now_ms)
    if strangers is not None:
        yield from execute(
            "UPDATE wallets SET strangers = ? WHERE user_id = ?", int(strangers), user_id
        )
    if pin_free_limit is not None:
        yield from execute(
            "UPDATE wallets SET pin_free_limit = ? WHERE user_id = ?", pin_free_limit, user_id
        )
    updated = yield from wallet(user_id)
    assert updated is not None
    return updated


def set_verified(user_id: int, verified: bool, currency: str, now_ms: int) -> Op[Wallet]:
    """An admin records that the owner's real name was (or is no longer) verified."""
    yield from open_wallet(user_id, currency, now_ms)
    yield from execute("UPDATE wallets SET verified = ? WHERE user_id = ?", int(verified), user_id)
    updated = yield from wallet(user_id)
    assert updated is not None
    return updated


def spend(user_id: int, amount: int, now_ms: int, limits: spend_rules.SpendLimits) -> Op[Wallet]:
    """Count an outgoing payment against the payer's caps (refusing it if over) and check that
    payments are not locked; the caller then moves the money in the same transaction."""
    found = yield from wallet(user_id)
    if found is None:
        raise ledger_empty()
    pin_rules.check_unlocked(found.locked_until_ms, now_ms)
    day = spend_rules.day_of(now_ms)
    # Counted first and checked after, in one statement: the upsert takes the row's lock, so
    # concurrent payments (other processes on PostgreSQL) are counted one after the other. A
    # refusal raises and the transaction, count included, is rolled back.
    total = yield from scalar(
        "INSERT INTO wallet_spend (user_id, day, amount) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, day) DO UPDATE SET amount = wallet_spend.amount + excluded.amount"
        " RETURNING amount",
        user_id,
        day,
        amount,
    )
    spend_rules.check_spend(amount, int(total) - amount, found.verified, limits)
    return found


def spent_on(user_ids: Sequence[int], days: Sequence[int]) -> Op[dict[tuple[int, int], int]]:
    """What these users have paid out on these days: (user, day) -> amount."""
    rows = yield from all_rows(
        "SELECT user_id, day, amount FROM wallet_spend WHERE user_id = ANY(?) AND day = ANY(?)",
        Values(user_ids),
        Values(days),
    )
    return {(int(r[0]), int(r[1])): int(r[2]) for r in rows}


def add_spend(rows: Sequence[tuple[int, int, int]]) -> Op[None]:
    """Count (user, day, amount) payments against the daily caps (already checked)."""
    yield from many(
        "INSERT INTO wallet_spend (user_id, day, amount) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, day) DO UPDATE SET amount = wallet_spend.amount + excluded.amount",
        rows,
    )


def unspend(user_id: int, amount: int, day: int) -> Op[None]:
    """Give back what a payment counted against the cap when its money came back the same day
    (a returned transfer, a failed withdrawal)."""
    yield from execute(
        "UPDATE wallet_spend SET amount = MAX(amount - ?, 0) WHERE user_id = ? AND day = ?",
        amount,
        user_id,
        day,
        pg_sql="UPDATE wallet_spend SET amount = GREATEST(amount - $1, 0)"
        " WHERE user_id = $2 AND day = $3",
    )


def ledger_empty() -> rules.InsufficientFunds:
    return rules.InsufficientFunds("insufficient_funds", "Your wallet is empty; top it up first.")


# ---------------------------------------------------------------- idempotency


def idempotent(
    user_id: int,
    key: str,
    fingerprint: str,
    run: Callable[[], Op[T]],
    encode: Callable[[T], str],
    decode: Callable[[str], T],
    now_ms: int,
) -> Op[tuple[T, bool]]:
    """Run ``run`` once per (user, key): a retry with the same fingerprint returns the first
    result (``replayed`` True), another fingerprint is refused with 409. A refusal raised by
    ``run`` is not remembered: nothing was done, so the retry may run again."""
    row = yield from one(
        "SELECT fingerprint, response FROM idempotency_keys WHERE user_id = ? AND key = ?",
        user_id,
        key,
    )
    if row is not None:
        if str(row[0]) != fingerprint:
            raise reused()
        return decode(str(row[1])), True
    result = yield from run()
    yield from execute(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, response, created_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        user_id,
        key,
        fingerprint,
        encode(result),
        now_ms,
    )
    return result, False


def known_keys(keys: Sequence[tuple[int, str]]) -> Op[dict[tuple[int, str], tuple[str, str]]]:
    """Stored idempotency keys among these (user, key) pairs, read set-wise for a batch of
    payments: (fingerprint, response) by (user, key). Looked up pair by pair through the
    primary key (a VALUES join), not as users x keys."""
    if not keys:
        return {}
    rows = yield from all_rows(
        f"WITH v(u, k) AS (VALUES {', '.join(['(?, ?)'] * len(keys))})"
        " SELECT i.user_id, i.key, i.fingerprint, i.response"
        " FROM v JOIN idempotency_keys i ON i.user_id = v.u AND i.key = v.k",
        *[x for key in keys for x in key],
        pg_sql="SELECT i.user_id, i.key, i.fingerprint, i.response"
        " FROM unnest(?::bigint[], ?::text[]) AS v(u, k)"
        " JOIN idempotency_keys i ON i.user_id = v.u AND i.key = v.k",
        pg_params=[[u for u, _ in keys], [k for _, k in keys]],
    )
    return {(int(r[0]), str(r[1])): (str(r[2]), str(r[3])) for r in rows}


def remember_keys(rows: Sequence[tuple[int, str, str, str, int]]) -> Op[None]:
    """Store (user, key, fingerprint, response, created_ms) idempotency records."""
    yield from many(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, response, created_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        rows,
    )


@dataclass(frozen=True)
class Same:
    """In a set-wise batch: this item repeats the key of item ``index`` and gets its answer."""

    index: int


class BatchKeys:
    """Idempotency inside one set-wise batch of payments: ``check`` says whether an item is new,
    answered before (the stored response), or a repeat of an earlier item of the same batch
    (``Same``); ``take`` records an accepted item's key for the items after it."""

    def __init__(self, known: dict[tuple[int, str], tuple[str, str]]) -> None:
        self.known = known
        self.taken: dict[tuple[int, str], tuple[int, str]] = {}

    def check(self, user_id: int, key: str, fingerprint: str) -> str | Same | None:
        """Raises ``idempotency_key_reused`` if the key was used for another request."""
        stored = self.known.get((user_id, key))
        earlier = self.taken.get((user_id, key))
        if stored is None and earlier is None:
            return None
        first_print = stored[0] if stored is not None else earlier[1]  # type: ignore[index]
        if first_print != fingerprint:
            raise reused()
        return stored[1] if stored is not None else Same(earlier[0])  # type: ignore[index]

    def take(self, n: int, user_id: int, key: str, fingerprint: str) -> None:
        self.taken[(user_id, key)] = (n, fingerprint)


def settle(out: Sequence[object], replay: Callable[[object], object]) -> list[object]:
    """A batch's answers in order, each ``Same`` replaced by its item's: ``replay(first)`` when
    that was done, the same refusal when it was refused."""
    done: list[object] = []
    for value in out:
        if isinstance(value, Same):
            first = done[value.index]
            done.append(first if isinstance(first, Exception) else replay(first))
        else:
            assert value is not None
            done.append(value)
    return done


# ---------------------------------------------------------------- movements


def movement_notices(loaded: Loaded, transfers: Sequence[Transfer]) -> list[Notice]:
    """A ``wallet.movement`` event for the owner of each account the transfers touched."""
    notices: list[Notice] = []
    for t in transfers:
        for account_id, direction in ((t.debit_id, "out"), (t.credit_id, "in")):
            owner = loaded.owners.get(account_id, 0)
            if not owner:
                continue
            account = loaded.book.accounts[account_id]
            data = {
                "transfer": {
                    "id": t.id,
                    "kind": t.kind,
                    "amount": t.amount,
                    "currency": t.currency,
                    "direction": direction,
                    "state": rules.state_of(t),
                    "pending_id": t.pending_id,
                    "ref": t.ref,
                    "at": t.created_ms,
                },
                "account": account_id,
                "balance": account.balance,
                "available": account.available,
            }
            notices.append(Notice([owner], "wallet.movement", data))
    return notices
