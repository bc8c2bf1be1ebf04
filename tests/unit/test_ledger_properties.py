"""Property-based tests of the ledger's rules (``domain.ledger.Book``) and the red-packet splitter.

A state machine sends random moves, pendings, posts and voids (double posts, posts after a void
or a timeout, voids after a timeout, unknown pendings, bad amounts and timeouts) and linked
chains that may fail midway, over wallets limited to their credits. After every step the
invariants the ledger promises must hold, an independent model must agree on what was accepted
and refused, and a refused request must have changed nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wanglai.domain import ledger_audit
from wanglai.domain import redpacket as packets
from wanglai.domain.errors import WanglaiError
from wanglai.domain.ledger import (
    DEBITS_LIMITED,
    OPEN,
    PENDING,
    POST,
    VOID,
    Account,
    Book,
    Request,
    Transfer,
    currency_sums,
)

from ..ledger_model import Model

BANK, ESCROW = 1, 2
WALLETS = (3, 4, 5, 6, 7)
FOREIGN_BANK, FOREIGN_WALLET = 8, 9
MISSING = 99
ACCOUNT_IDS = (BANK, ESCROW, *WALLETS, FOREIGN_BANK, FOREIGN_WALLET, MISSING)


def fresh_accounts() -> dict[int, Account]:
    accounts = {BANK: Account(BANK, "CNY"), ESCROW: Account(ESCROW, "CNY")}
    for w in WALLETS:
        accounts[w] = Account(w, "CNY", DEBITS_LIMITED)
    accounts[FOREIGN_BANK] = Account(FOREIGN_BANK, "USD")
    accounts[FOREIGN_WALLET] = Account(FOREIGN_WALLET, "USD", DEBITS_LIMITED)
    return accounts


@dataclass(frozen=True)
class Snapshot:
    accounts: dict[int, Account]
    pendings: dict[int, Any]
    made: int
    touched: frozenset[int]
    resolved: dict[int, tuple[str, int]]


def snapshot(book: Book) -> Snapshot:
    return Snapshot(
        {i: replace(a) for i, a in book.accounts.items()},
        {i: replace(p) for i, p in book.pendings.items()},
        len(book.made),
        frozenset(book.touched),
        dict(book.resolved),
    )


account_ids = st.sampled_from(ACCOUNT_IDS)
cny_ids = st.sampled_from((BANK, ESCROW, *WALLETS))
amounts = st.one_of(st.integers(1, 3_000), st.integers(-5, 0), st.integers(3_000, 50_000))
timeouts = st.one_of(st.none(), st.integers(1, 5_000), st.integers(-10, 0))


@st.composite
def moves(draw: st.DrawFn, sizes: st.SearchStrategy[int] = amounts) -> Request:
    """A plain or pending move, mostly sensible, sometimes wrong in one way or another."""
    wrong = draw(st.integers(0, 9)) == 0
    debit = draw(account_ids if wrong else cny_ids)
    credit = draw(account_ids if wrong else cny_ids)
    currency = draw(st.sampled_from(("CNY", "USD"))) if wrong else "CNY"
    pending = draw(st.booleans())
    return Request(
        debit,
        credit,
        draw(sizes),
        currency,
        "test",
        PENDING if pending else 0,
        timeout_ms=draw(timeouts) if pending else None,
    )


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = Book(fresh_accounts())
        self.model = Model(self.book.accounts.values())
        self.now = 1_000
        self.next_id = 1

    # ------------------------------------------------------------ helpers

    def known_pendings(self) -> list[int]:
        return sorted(self.book.pendings)

    def apply_one(self, request: Request) -> Transfer | None:
        before = snapshot(self.book)
        expected = self.model.accepts(request, self.next_id, self.now)
        try:
            made = self.book.apply(request, self.next_id, self.now)
        except WanglaiError:
            assert not expected, f"refused what the model accepts: {request}"
            assert snapshot(self.book) == before, "a refused request changed the book"
            event("refused")
            return None
        assert expected, f"accepted what the model refuses: {request}"
        event(f"applied flags={request.flags}")
        assert made.id == self.next_id and self.book.made[-1] == made
        self.next_id += 1
        return made

    # ------------------------------------------------------------ rules

    @rule(
        wallet=st.sampled_from(WALLETS),
        amount=st.integers(1, 5_000),
    )
    def top_up(self, wallet: int, amount: int) -> None:
        assert self.apply_one(Request(BANK, wallet, amount, "CNY", "topup")) is not None

    @rule(request=moves())
    def move(self, request: Request) -> None:
        self.apply_one(request)

    @rule(data=st.data(), flag=st.sampled_from((POST, VOID)))
    def resolve(self, data: st.DataObject, flag: int) -> None:
        """Post or void a pending transfer — open, already resolved, expired or unknown."""
        choices = [*self.known_pendings(), MISSING * 1000]
        pid = data.draw(st.sampled_from(choices))
        self.apply_one(Request(flags=flag, pending_id=pid, kind="resolve"))

    @precondition(lambda self: bool(self.book.pendings))
    @rule(data=st.data())
    def resolve_twice(self, data: st.DataObject) -> None:
        """Resolving the same pending transfer a second time is always refused."""
        pid = data.draw(st.sampled_from(self.known_pendings()))
        first = data.draw(st.sampled_from((POST, VOID)))
        second = data.draw(st.sampled_from((POST, VOID)))
        self.apply_one(Request(flags=first, pending_id=pid))
        assert self.book.pendings[pid].state != OPEN or self.book.pendings[pid].expires_ms
        if self.book.pendings[pid].state != OPEN:
            assert self.apply_one(Request(flags=second, pending_id=pid)) is None

    @rule(seconds=st.integers(0, 6))
    def advance(self, seconds: int) -> None:
        self.now += seconds * 1_000

    @rule(
        chain=st.lists(
            st.one_of(
                moves(st.integers(1, 600)),
                st.tuples(st.sampled_from((POST, VOID)), st.integers(0, 50)),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def linked(self, chain: list[Request | tuple[int, int]]) -> None:
        """A linked chain: every request or none, whichever step fails."""
        pendings = [*self.known_pendings(), self.next_id, self.next_id + 1]
        requests = [
            step
            if isinstance(step, Request)
            else Request(flags=step[0], pending_id=pendings[step[1] % len(pendings)])
            for step in chain
        ]
        self.run_chain(requests)

    @rule(
        payer=st.sampled_from(WALLETS),
        payees=st.lists(st.sampled_from(WALLETS), min_size=1, max_size=4),
        share=st.integers(1, 400),
        overdraw=st.booleans(),
    )
    def escrow_chain(self, payer: int, payees: list[int], share: int, overdraw: bool) -> None:
        """A red packet's life as one chain: reserve into escrow, post, pay every share out;
        with ``overdraw`` a last step asks more than the payer has left, failing the chain."""
        total = share * len(payees)
        first = self.next_id
        requests = [
            Request(payer, ESCROW, total, "CNY", "redpacket", PENDING, timeout_ms=60_000),
            Request(flags=POST, pending_id=first),
            *(Request(ESCROW, p, share, "CNY", "redpacket_claim") for p in payees),
        ]
        if overdraw:
            left = self.book.accounts[payer].available - total
            requests.append(Request(payer, ESCROW, max(left, 0) + 1, "CNY", "redpacket"))
        self.run_chain(requests)

    def run_chain(self, requests: list[Request]) -> None:
        before = snapshot(self.book)
        expected = self.model.accepts_linked(requests, self.next_id, self.now)
        try:
            made = self.book.apply_linked(requests, self.next_id, self.now)
        except WanglaiError:
            assert not expected, f"chain refused, model accepts: {requests}"
            assert snapshot(self.book) == before, "a refused chain left something behind"
            event("chain refused")
            return
        assert expected, f"chain accepted, model refuses: {requests}"
        assert [t.id for t in made] == list(range(self.next_id, self.next_id + len(requests)))
        self.next_id += len(requests)
        event(f"chain of {len(requests)} applied")

    # ------------------------------------------------------------ invariants

    @invariant()
    def currencies_sum_to_zero(self) -> None:
        assert set(currency_sums(self.book.accounts.values()).values()) <= {0}
        for currency in ("CNY", "USD"):
            accounts = [a for a in self.book.accounts.values() if a.currency == currency]
            assert sum(a.debits_pending for a in accounts) == sum(
                a.credits_pending for a in accounts
            )

    @invariant()
    def limited_accounts_never_negative(self) -> None:
        for a in self.book.accounts.values():
            if a.flags & DEBITS_LIMITED:
                assert a.balance >= 0 and a.available >= 0, a

    @invariant()
    def model_agrees(self) -> None:
        for i, a in self.book.accounts.items():
            sums = (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
            assert sums == self.model.of(i)
        assert {p.id: p.state for p in self.book.pendings.values()} == self.model.state

    @invariant()
    def each_pending_resolved_at_most_once(self) -> None:
        resolutions: dict[int, int] = {}
        for t in self.book.made:
            if t.pending_id is not None:
                resolutions[t.pending_id] = resolutions.get(t.pending_id, 0) + 1
        assert all(n == 1 for n in resolutions.values())
        for pid, p in self.book.pendings.items():
            assert (p.state != OPEN) == (pid in resolutions)

    @invariant()
    def the_checker_finds_nothing(self) -> None:
        """The ledger checker's rules agree with the book: sums recomputed from the transfers
        equal the accounts', and each pending's state matches what resolved it."""
        facts = facts_of(self.book)
        report = ledger_audit.audit(facts)
        assert report.ok, report.breaches


def facts_of(book: Book) -> ledger_audit.Facts:
    movements: dict[tuple[int, str, int], int] = {}
    for t in book.made:
        for account, side in ((t.debit_id, "debit"), (t.credit_id, "credit")):
            key = (account, side, t.flags)
            movements[key] = movements.get(key, 0) + t.amount
    pendings = [t for t in book.made if t.flags & PENDING]
    resolvers = {t.pending_id: t.id for t in book.made if t.pending_id is not None}
    return ledger_audit.Facts(
        accounts=[
            ledger_audit.OwnedAccount(a, "user" if a.flags else "system", a.id, "wallet")
            for a in book.accounts.values()
        ],
        movements=[ledger_audit.Movement(a, s, f, total) for (a, s, f), total in movements.items()],
        pendings=[
            ledger_audit.PendingTransfer(t.id, t.debit_id, t.credit_id, t.amount) for t in pendings
        ],
        pending_states=[
            ledger_audit.PendingState(p.id, p.state, resolvers.get(p.id))
            for p in book.pendings.values()
        ],
        resolutions=[
            ledger_audit.Resolution(t.id, t.flags, t.pending_id, t.debit_id, t.credit_id, t.amount)
            for t in book.made
            if t.flags & (POST | VOID)
        ],
    )


TestLedger = LedgerMachine.TestCase
TestLedger.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


# ---------------------------------------------------------------- targeted cases


def funded_book() -> tuple[Book, int]:
    book = Book(fresh_accounts())
    book.apply(Request(BANK, 3, 1_000, "CNY", "topup"), 1, 0)
    return book, 2


def test_timed_out_pending_can_be_voided_but_not_posted() -> None:
    book, tid = funded_book()
    book.apply(Request(3, 4, 400, "CNY", flags=PENDING, timeout_ms=1_000), tid, 0)
    before = snapshot(book)
    try:
        book.apply(Request(flags=POST, pending_id=tid), tid + 1, 1_000)
        raise AssertionError("posted after its timeout")
    except WanglaiError as refused:
        assert refused.code == "pending_expired"
    assert snapshot(book) == before
    book.apply(Request(flags=VOID, pending_id=tid), tid + 1, 1_000)
    assert book.accounts[3].available == 1_000 and book.accounts[4].balance == 0


def test_a_refused_bad_timeout_leaves_the_accounts_as_they_were() -> None:
    book, tid = funded_book()
    before = snapshot(book)
    for timeout in (0, -5):
        try:
            book.apply(Request(3, 4, 100, "CNY", flags=PENDING, timeout_ms=timeout), tid, 0)
            raise AssertionError("a non-positive timeout was accepted")
        except WanglaiError as refused:
            assert refused.code == "invalid_timeout"
        assert snapshot(book) == before


def test_a_chain_failing_at_its_last_step_leaves_nothing() -> None:
    book, tid = funded_book()
    before = snapshot(book)
    chain = [
        Request(3, 4, 600, "CNY"),
        Request(4, 5, 600, "CNY", flags=PENDING),
        Request(flags=POST, pending_id=tid + 1),
        Request(5, 6, 601, "CNY"),  # 5 only got 600
    ]
    try:
        book.apply_linked(chain, tid, 0)
        raise AssertionError("an overdrawing chain was applied")
    except WanglaiError as refused:
        assert refused.code == "insufficient_funds"
    assert snapshot(book) == before
    assert tid + 1 not in book.pendings


# ---------------------------------------------------------------- red packets


@given(
    amount=st.integers(1, 20_000),
    shares=st.integers(1, 100),
    rng=st.randoms(use_true_random=False),
)
def test_lucky_split_is_exact_and_double_mean_bounded(
    amount: int, shares: int, rng: random.Random
) -> None:
    shares = min(shares, amount)
    split = packets.split(packets.LUCKY, amount, shares, rng)
    assert len(split) == shares
    assert sum(split) == amount
    assert min(split) >= packets.MIN_SHARE
    remaining = amount
    for i, share in enumerate(split[:-1]):
        left = shares - i
        assert share * left <= 2 * remaining, (share, remaining, left)
        remaining -= share


@given(amount=st.integers(1, 20_000), shares=st.integers(1, 100))
def test_equal_split_is_exact_and_even(amount: int, shares: int) -> None:
    shares = min(shares, amount)
    split = packets.split(packets.EQUAL, amount, shares, random.Random(0))
    assert len(split) == shares and sum(split) == amount
    assert min(split) >= packets.MIN_SHARE and max(split) - min(split) <= 1


@given(claims=st.lists(st.tuples(st.integers(1, 50), st.integers(1, 500)), min_size=1, max_size=20))
def test_luckiest_is_the_first_with_the_most(claims: list[tuple[int, int]]) -> None:
    most = max(a for _, a in claims)
    assert packets.luckiest(claims) == next(u for u, a in claims if a == most)
