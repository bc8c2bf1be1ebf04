"""An independent model of the ledger for property tests: each account's four sums as plain
numbers, and which requests the ledger must accept. Written from the rules in the docs, not
from ``domain.ledger``, so the two can disagree when one is wrong."""

from __future__ import annotations

from collections.abc import Iterable

from wanglai.domain.ledger import (
    DEBITS_LIMITED,
    OPEN,
    PENDING,
    POST,
    POSTED,
    VOID,
    VOIDED,
    Account,
    Request,
)

Sums = tuple[int, int, int, int]
"""debits_pending, debits_posted, credits_pending, credits_posted."""


class Model:
    def __init__(self, accounts: Iterable[Account]) -> None:
        self.currency: dict[int, str] = {}
        self.limited: set[int] = set()
        self.sums: dict[int, list[int]] = {}
        for a in accounts:
            self.add(a)
        self.pendings: dict[int, tuple[int, int, int, int | None]] = {}
        """pending id -> debit, credit, amount, expires."""
        self.state: dict[int, str] = {}

    def add(self, a: Account) -> None:
        """Start following an account as it is now."""
        self.currency[a.id] = a.currency
        if a.flags & DEBITS_LIMITED:
            self.limited.add(a.id)
        self.sums[a.id] = [a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted]

    def copy(self) -> Model:
        other = Model(())
        other.currency, other.limited = self.currency, self.limited
        other.sums = {i: list(s) for i, s in self.sums.items()}
        other.pendings, other.state = dict(self.pendings), dict(self.state)
        return other

    def of(self, account_id: int) -> Sums:
        s = self.sums[account_id]
        return (s[0], s[1], s[2], s[3])

    def available(self, account_id: int) -> int:
        dp, dpo, _, cpo = self.sums[account_id]
        return cpo - dpo - dp

    def accepts(self, r: Request, transfer_id: int, now: int) -> bool:
        """Apply ``r`` to the model if the ledger must accept it; say whether it did."""
        if r.flags in (POST, VOID):
            pid = r.pending_id
            if pid is None or self.state.get(pid) != OPEN:
                return False
            debit, credit, amount, expires = self.pendings[pid]
            if r.flags == POST and expires is not None and now >= expires:
                return False
            self.sums[debit][0] -= amount
            self.sums[credit][2] -= amount
            if r.flags == POST:
                self.sums[debit][1] += amount
                self.sums[credit][3] += amount
            self.state[pid] = POSTED if r.flags == POST else VOIDED
            return True
        if r.flags not in (0, PENDING) or r.amount <= 0 or r.debit_id == r.credit_id:
            return False
        if r.debit_id not in self.currency or r.credit_id not in self.currency:
            return False
        if not r.currency == self.currency[r.debit_id] == self.currency[r.credit_id]:
            return False
        if r.debit_id in self.limited and r.amount > self.available(r.debit_id):
            return False
        if r.flags == PENDING and r.timeout_ms is not None and r.timeout_ms <= 0:
            return False
        if r.flags == PENDING:
            self.sums[r.debit_id][0] += r.amount
            self.sums[r.credit_id][2] += r.amount
            expires = None if r.timeout_ms is None else now + r.timeout_ms
            self.pendings[transfer_id] = (r.debit_id, r.credit_id, r.amount, expires)
            self.state[transfer_id] = OPEN
        else:
            self.sums[r.debit_id][1] += r.amount
            self.sums[r.credit_id][3] += r.amount
        return True

    def accepts_linked(self, requests: list[Request], first_id: int, now: int) -> bool:
        """All or none: the model changes only if every request is accepted."""
        trial = self.copy()
        if not all(trial.accepts(r, first_id + i, now) for i, r in enumerate(requests)):
            return False
        self.sums, self.pendings, self.state = trial.sums, trial.pendings, trial.state
        return True
