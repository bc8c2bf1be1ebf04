"""The double-entry ledger's rules, after TigerBeetle's accounts and transfers.

An account keeps four running sums: debits and credits, each pending and posted. A transfer
debits one account and credits another by a positive amount in one currency, and never changes
after it is made; a correction is a new transfer. A *pending* transfer reserves its amount on
both sides until a later transfer *posts* it (the amount moves) or *voids* it (the reservation is
released), exactly once, or until it times out and may only be voided. Accounts flagged
``DEBITS_LIMITED`` (every user's and merchant's wallet) can never have their posted and pending
debits exceed their posted credits: a wallet never goes below zero, even counting reservations.

:class:`Book` applies requests to the accounts and pending transfers it has been given, in
order, with no I/O: the store loads what a batch touches, applies, and writes the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from wanglai.domain.errors import Conflict, Gone, Invalid, NotFound, WanglaiError

# Account flags
DEBITS_LIMITED = 1
"""Debits (posted plus pending) may not exceed posted credits: the balance stays >= 0."""
CREDITS_LIMITED = 2
"""Credits (posted plus pending) may not exceed posted debits."""

# Transfer flags
PENDING = 1
POST = 2
VOID = 4

# Pending states
OPEN = "pending"
POSTED = "posted"
VOIDED = "voided"


class InsufficientFunds(WanglaiError):
    kind = "conflict"

    def __init__(self, code: str = "insufficient_funds", message: str = "") -> None:
        super().__init__(code, message or "The balance is too low for this amount.")


@dataclass(slots=True)
class Account:
    id: int
    currency: str
    flags: int = 0
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def balance(self) -> int:
        """Posted credits minus posted debits: what a wallet holds."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """The balance less what pending debits reserve: what a wallet may still spend."""
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(slots=True)
class Pending:
    """A pending transfer and what became of it."""

    id: int
    debit_id: int
    credit_id: int
    amount: int
    currency: str
    expires_ms: int | None
    state: str = OPEN


@dataclass(frozen=True, slots=True)
class Request:
    """What to do. For ``POST``/``VOID`` only ``pending_id`` (and ``kind``/``ref``) matter: the
    accounts and amount are the pending transfer's."""

    debit_id: int = 0
    credit_id: int = 0
    amount: int = 0
    currency: str = ""
    kind: str = "transfer"
    flags: int = 0
    pending_id: int | None = None
    timeout_ms: int | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    id: int
    debit_id: int
    credit_id: int
    amount: int
    currency: str
    kind: str
    flags: int
    pending_id: int | None
    expires_ms: int | None
    ref: str | None
    created_ms: int


@dataclass
class Book:
    """The accounts and pending transfers a batch touches, and the transfers it made.

    ``apply`` and ``apply_linked`` change the accounts in place; ``touched`` and ``resolved``
    tell the store which rows to write back.
    """

    accounts: dict[int, Account]
    pendings: dict[int, Pending] = field(default_factory=dict)
    made: list[Transfer] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)
    resolved: dict[int, tuple[str, int]] = field(default_factory=dict)
    """pending id -> (new state, id of the transfer that resolved it)."""

    def apply(self, request: Request, transfer_id: int, now_ms: int) -> Transfer:
        """Apply one request as transfer ``transfer_id``; raises (changing nothing) if refused."""
        if request.flags & (POST | VOID):
            return self._resolve(request, transfer_id, now_ms)
        return self._move(request, transfer_id, now_ms)

    def apply_linked(
        self, requests: Sequence[Request], first_id: int, now_ms: int
    ) -> list[Transfer]:
        """All of ``requests`` or none (TigerBeetle's linked chain): ids from ``first_id`` on."""
        pending_ids = {r.pending_id for r in requests if r.pending_id is not None}
        saved_pending = {p: replace(self.pendings[p]) for p in pending_ids if p in self.pendings}
        ids = {i for r in requests for i in (r.debit_id, r.credit_id)}
        ids.update(i for p in saved_pending.values() for i in (p.debit_id, p.credit_id))
        saved = {i: replace(self.accounts[i]) for i in ids if i in self.accounts}
        made, touched, resolved = len(self.made), set(self.touched), dict(self.resolved)
        try:
            return [self.apply(request, first_id + i, now_ms) for i, request in enumerate(requests)]
        except WanglaiError:
            self.accounts.update(saved)
            for transfer in self.made[made:]:
                self.pendings.pop(transfer.id, None)
            self.pendings.update(saved_pending)
            del self.made[made:]
            self.touched, self.resolved = touched, resolved
            raise

    def check_funds(self, account_id: int, amount: int) -> None:
        """Refuse a debit of ``amount`` that a limited account cannot cover."""
        debit = self._account(account_id)
        if debit.flags & DEBITS_LIMITED and amount > debit.available:
            raise InsufficientFunds()

    # ------------------------------------------------------------------ internals

    def _account(self, account_id: int) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise NotFound("account_not_found", f"No ledger account {account_id}.")
        return account

    def _move(self, request: Request, transfer_id: int, now_ms: int) -> Transfer:
        amount = request.amount
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise Invalid("invalid_amount", "A transfer moves a positive whole number of fen.")
        if request.debit_id == request.credit_id:
            raise Invalid("same_account", "A transfer needs two different accounts.")
        if request.flags & ~PENDING:
            raise Invalid("invalid_flags", "Flags are PENDING, POST or VOID.")
        debit = self._account(request.debit_id)
        credit = self._account(request.credit_id)
        if not (request.currency == debit.currency == credit.currency):
            raise Invalid("currency_mismatch", "Both accounts and the transfer share a currency.")
        pending = bool(request.flags & PENDING)
        expires = None
        if pending and request.timeout_ms is not None:
            # checked before any sum changes: a refused request must leave the book as it was
            if request.timeout_ms <= 0:
                raise Invalid("invalid_timeout", "A timeout is a positive number of ms.")
            expires = now_ms + request.timeout_ms
        self.check_funds(debit.id, amount)
        if credit.flags & CREDITS_LIMITED and (
            credit.credits_posted + credit.credits_pending + amount > credit.debits_posted
        ):
            raise InsufficientFunds("credits_exceed_debits", "That account cannot take more.")
        if pending:
            debit.debits_pending += amount
            credit.credits_pending += amount
        else:
            debit.debits_posted += amount
            credit.credits_posted += amount
        transfer = Transfer(
            transfer_id,
            debit.id,
            credit.id,
            amount,
            request.currency,
            request.kind,
            request.flags,
            None,
            expires,
            request.ref,
            now_ms,
        )
        if pending:
            self.pendings[transfer_id] = Pending(
                transfer_id, debit.id, credit.id, amount, request.currency, expires
            )
        self.touched.update((debit.id, credit.id))
        self.made.append(transfer)
        return transfer

    def _resolve(self, request: Request, transfer_id: int, now_ms: int) -> Transfer:
        posting = bool(request.flags & POST)
        if request.flags not in (POST, VOID):
            raise Invalid("invalid_flags", "A transfer either posts or voids, not both.")
        if request.pending_id is None:
            raise Invalid("pending_id_required", "Posting or voiding names a pending transfer.")
        pending = self.pendings.get(request.pending_id)
        if pending is None:
            raise NotFound("pending_not_found", "No such pending transfer.")
        if pending.state != OPEN:
            raise Conflict(
                "pending_already_" + pending.state,
                f"That pending transfer was already {pending.state}.",
            )
        if posting and pending.expires_ms is not None and now_ms >= pending.expires_ms:
            raise Gone("pending_expired", "That pending transfer timed out; it can only be voided.")
        debit = self._account(pending.debit_id)
        credit = self._account(pending.credit_id)
        debit.debits_pending -= pending.amount
        credit.credits_pending -= pending.amount
        if posting:
            debit.debits_posted += pending.amount
            credit.credits_posted += pending.amount
        pending.state = POSTED if posting else VOIDED
        transfer = Transfer(
            transfer_id,
            debit.id,
            credit.id,
            pending.amount,
            pending.currency,
            request.kind,
            request.flags,
            pending.id,
            None,
            request.ref,
            now_ms,
        )
        self.resolved[pending.id] = (pending.state, transfer_id)
        self.touched.update((debit.id, credit.id))
        self.made.append(transfer)
        return transfer


def state_of(transfer: Transfer) -> str:
    """What a transfer did: reserved (``pending``), released a reservation (``voided``), or
    moved money (``posted``: a plain transfer or the post of a pending one)."""
    if transfer.flags & PENDING:
        return OPEN
    if transfer.flags & VOID:
        return VOIDED
    return POSTED


def currency_sums(accounts: Iterable[Account]) -> dict[str, int]:
    """Per currency, the sum of every account's posted balance; double entry keeps each at 0."""
    sums: dict[str, int] = {}
    for account in accounts:
        sums[account.currency] = sums.get(account.currency, 0) + account.balance
    return sums
