"""The ledger's rules on plain accounts: moves, pending transfers posted or voided exactly once,
linked chains that apply all or nothing, and wallets that never go below zero."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanglai.domain.errors import Conflict, Gone, Invalid, NotFound, WanglaiError
from wanglai.domain.ledger import (
    CREDITS_LIMITED,
    DEBITS_LIMITED,
    PENDING,
    POST,
    VOID,
    Account,
    Book,
    InsufficientFunds,
    Request,
    currency_sums,
)

BANK, ALICE, BOB = 1, 2, 3


def book(alice: int = 0) -> Book:
    b = Book(
        {
            BANK: Account(BANK, "CNY"),
            ALICE: Account(ALICE, "CNY", DEBITS_LIMITED),
            BOB: Account(BOB, "CNY", DEBITS_LIMITED),
        }
    )
    if alice:
        b.apply(Request(BANK, ALICE, alice, "CNY", "topup"), 1, 0)
    return b


def sums(b: Book) -> tuple[int, int, int]:
    return b.accounts[BANK].balance, b.accounts[ALICE].balance, b.accounts[BOB].balance


def sums_all(b: Book) -> dict[int, tuple[int, int, int, int]]:
    return {
        i: (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
        for i, a in b.accounts.items()
    }


def test_a_move_debits_one_account_and_credits_the_other() -> None:
    b = book(1_000)
    t = b.apply(Request(ALICE, BOB, 300, "CNY", "chat_transfer", ref="r"), 2, 50)
    assert sums(b) == (-1_000, 700, 300)
    assert (t.id, t.debit_id, t.credit_id, t.amount, t.ref, t.created_ms) == (
        2,
        ALICE,
        BOB,
        300,
        "r",
        50,
    )
    assert b.touched == {BANK, ALICE, BOB}
    assert [m.id for m in b.made] == [1, 2]
    assert currency_sums(b.accounts.values()) == {"CNY": 0}


def test_a_wallet_never_goes_below_zero() -> None:
    b = book(100)
    with pytest.raises(InsufficientFunds) as refused:
        b.apply(Request(ALICE, BOB, 101, "CNY"), 2, 0)
    assert refused.value.code == "insufficient_funds" and refused.value.kind == "conflict"
    assert sums(b) == (-100, 100, 0)
    b.apply(Request(ALICE, BOB, 100, "CNY"), 3, 0)
    assert sums(b) == (-100, 0, 100)


def test_credits_limited_accounts_take_no_more_than_their_debits() -> None:
    b = Book({1: Account(1, "CNY", CREDITS_LIMITED), 2: Account(2, "CNY")})
    with pytest.raises(InsufficientFunds) as refused:
        b.apply(Request(2, 1, 1, "CNY"), 1, 0)
    assert refused.value.code == "credits_exceed_debits"


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (Request(ALICE, BOB, 0, "CNY"), "invalid_amount"),
        (Request(ALICE, BOB, -5, "CNY"), "invalid_amount"),
        (Request(ALICE, BOB, True, "CNY"), "invalid_amount"),
        (Request(ALICE, ALICE, 5, "CNY"), "same_account"),
        (Request(ALICE, BOB, 5, "USD"), "currency_mismatch"),
        (Request(ALICE, BOB, 5, "CNY", flags=8), "invalid_flags"),
        (Request(ALICE, 99, 5, "CNY"), "account_not_found"),
        (Request(ALICE, BOB, 5, "CNY", flags=PENDING, timeout_ms=0), "invalid_timeout"),
        (Request(flags=POST | VOID, pending_id=1), "invalid_flags"),
        (Request(flags=POST), "pending_id_required"),
        (Request(flags=VOID, pending_id=77), "pending_not_found"),
    ],
)
def test_malformed_requests_are_refused_and_change_nothing(request_: Request, code: str) -> None:
    b = book(1_000)
    before = sums(b), len(b.made)
    with pytest.raises(WanglaiError) as refused:
        b.apply(request_, 2, 0)
    assert refused.value.code == code
    assert (sums(b), len(b.made)) == before


def test_pending_reserves_then_post_moves_once() -> None:
    b = book(1_000)
    b.apply(Request(ALICE, BOB, 600, "CNY", flags=PENDING, timeout_ms=1_000), 2, 0)
    alice, bob = b.accounts[ALICE], b.accounts[BOB]
    assert (alice.balance, alice.available, alice.debits_pending) == (1_000, 400, 600)
    assert (bob.balance, bob.credits_pending) == (0, 600)
    # The reservation counts: what is held cannot be spent again.
    with pytest.raises(InsufficientFunds):
        b.apply(Request(ALICE, BOB, 401, "CNY"), 3, 0)
    post = b.apply(Request(flags=POST, pending_id=2), 3, 10)
    assert (post.amount, post.pending_id, post.debit_id, post.credit_id) == (600, 2, ALICE, BOB)
    assert sums(b) == (-1_000, 400, 600)
    assert (alice.debits_pending, bob.credits_pending) == (0, 0)
    assert b.resolved == {2: ("posted", 3)}
    for flags in (POST, VOID):
        with pytest.raises(Conflict) as again:
            b.apply(Request(flags=flags, pending_id=2), 4, 20)
        assert again.value.code == "pending_already_posted"
    assert sums(b) == (-1_000, 400, 600)


def test_void_releases_the_reservation() -> None:
    b = book(1_000)
    b.apply(Request(ALICE, BOB, 600, "CNY", flags=PENDING), 2, 0)
    b.apply(Request(flags=VOID, pending_id=2), 3, 0)
    assert sums(b) == (-1_000, 1_000, 0)
    assert b.accounts[ALICE].available == 1_000
    with pytest.raises(Conflict) as again:
        b.apply(Request(flags=POST, pending_id=2), 4, 0)
    assert again.value.code == "pending_already_voided"


def test_an_expired_pending_transfer_cannot_post_but_can_void() -> None:
    b = book(1_000)
    t = b.apply(Request(ALICE, BOB, 600, "CNY", flags=PENDING, timeout_ms=1_000), 2, 5_000)
    assert t.expires_ms == 6_000
    b.apply(Request(flags=POST, pending_id=2), 9, 5_999)  # just in time is fine ...
    b2 = book(1_000)
    b2.apply(Request(ALICE, BOB, 600, "CNY", flags=PENDING, timeout_ms=1_000), 2, 5_000)
    with pytest.raises(Gone) as late:
        b2.apply(Request(flags=POST, pending_id=2), 3, 6_000)  # ... one ms late is not
    assert late.value.code == "pending_expired"
    assert b2.accounts[ALICE].debits_pending == 600
    b2.apply(Request(flags=VOID, pending_id=2), 3, 6_000)
    assert sums(b2) == (-1_000, 1_000, 0)


def test_a_linked_chain_is_all_or_nothing() -> None:
    b = book(1_000)
    b.apply(Request(ALICE, BOB, 200, "CNY", flags=PENDING), 2, 0)
    accounts_before = sums_all(b)
    chain = [
        Request(flags=POST, pending_id=2),  # would succeed ...
        Request(ALICE, BOB, 300, "CNY", flags=PENDING),  # ... and so would this ...
        Request(ALICE, BOB, 600, "CNY"),  # ... but this overdraws: none of them happens
    ]
    with pytest.raises(InsufficientFunds):
        b.apply_linked(chain, 3, 0)
    assert sums_all(b) == accounts_before
    assert [t.id for t in b.made] == [1, 2]
    assert b.pendings[2].state == "pending" and 4 not in b.pendings
    assert b.resolved == {}
    made = b.apply_linked(chain[:2], 3, 0)
    assert [t.id for t in made] == [3, 4]
    assert sums(b) == (-1_000, 800, 200)
    assert b.accounts[ALICE].available == 500


def test_unknown_pending_and_account_are_not_found() -> None:
    b = book()
    with pytest.raises(NotFound):
        b.apply(Request(flags=POST, pending_id=5), 1, 0)
    with pytest.raises(Invalid):
        b.apply(Request(BANK, BOB, 1, "CNY", flags=PENDING, timeout_ms=-1), 1, 0)


operations = st.lists(
    st.tuples(
        st.sampled_from(["move", "pending", "post", "void"]),
        st.sampled_from([BANK, ALICE, BOB]),
        st.sampled_from([BANK, ALICE, BOB]),
        st.integers(1, 500),
        st.integers(0, 10),
    ),
    max_size=40,
)


@given(operations)
def test_any_sequence_keeps_the_books_balanced(ops: list[tuple[str, int, int, int, int]]) -> None:
    b = book(1_000)
    next_id = 2
    for op, debit, credit, amount, pick in ops:
        pendings = sorted(b.pendings)
        if op == "move":
            request = Request(debit, credit, amount, "CNY")
        elif op == "pending":
            request = Request(debit, credit, amount, "CNY", flags=PENDING, timeout_ms=5)
        elif pendings:
            flag = POST if op == "post" else VOID
            request = Request(flags=flag, pending_id=pendings[pick % len(pendings)])
        else:
            continue
        with contextlib.suppress(WanglaiError):
            b.apply(request, next_id, next_id)
        next_id += 1
        assert currency_sums(b.accounts.values()) == {"CNY": 0}
        for account in (b.accounts[ALICE], b.accounts[BOB]):
            assert account.available >= 0 and account.balance >= 0
        assert sum(a.debits_pending for a in b.accounts.values()) == sum(
            p.amount for p in b.pendings.values() if p.state == "pending"
        )
    assert all(state in ("posted", "voided") for state, _ in b.resolved.values())
