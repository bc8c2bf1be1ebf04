"""The contact rules with plain inputs: phone books, rate limits, friend requests, answers."""

from __future__ import annotations

import pytest

from wanglai.domain import contacts as rules
from wanglai.domain.contacts import PairFacts, PhonebookPolicy, RequestAction
from wanglai.domain.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
)
from wanglai.domain.ratelimit import check_window


def facts(**changes: object) -> PairFacts:
    base: dict[str, object] = {
        "exists": True,
        "blocked_by_me": False,
        "blocked_by_them": False,
        "friends": False,
        "outgoing": None,
        "incoming": None,
    }
    base.update(changes)
    return PairFacts(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------- phone book


def test_phonebook_normalises_dedupes_and_reports_invalid_entries() -> None:
    book = rules.sort_phonebook(
        ["13800138000", "+86 138 0013 8000", "not a number", "", "+8613900139000", "12"] * 2,
        "CN",
        PhonebookPolicy(),
    )
    assert book.numbers == {"+8613800138000": "13800138000", "+8613900139000": "+8613900139000"}
    assert book.invalid == ["not a number", "", "12"]


def test_phonebook_reads_numbers_without_plus_in_the_region() -> None:
    book = rules.sort_phonebook(["(415) 555-2671"], "US", PhonebookPolicy())
    assert book.numbers == {"+14155552671": "(415) 555-2671"}


def test_phonebook_over_the_limit_is_refused() -> None:
    policy = PhonebookPolicy(max_numbers=3)
    assert len(rules.sort_phonebook(["13800138000"] * 3, "CN", policy).numbers) == 1
    with pytest.raises(TooLarge) as info:
        rules.sort_phonebook(["13800138000"] * 4, "CN", policy)
    assert info.value.code == "phonebook_too_large"


def test_rate_counts_only_hits_inside_the_window() -> None:
    now = 10_000_000
    window = 3_600_000
    old = [now - window - 1] * 50
    check_window([*old, now - 10, now - 5], 3, window, now, "x_limited", "wait")
    with pytest.raises(RateLimited) as info:
        check_window([*old, now - 30_000, now - 10, now - 5], 3, window, now, "x_limited", "w")
    assert info.value.code == "x_limited"
    # The oldest hit inside the window leaves it in an hour minus 30 s.
    assert info.value.retry_after == pytest.approx(3570.0)


# ---------------------------------------------------------------- friend requests


def test_note_is_trimmed_and_limited() -> None:
    assert rules.check_note("  hi there \n") == "hi there"
    assert rules.check_note("x" * 200) == "x" * 200
    with pytest.raises(TooLarge) as info:
        rules.check_note("x" * 201)
    assert info.value.code == "note_too_long"
    with pytest.raises(Invalid):
        rules.check_note(42)


def test_not_self() -> None:
    rules.check_not_self(1, 2, "cannot_befriend_self")
    with pytest.raises(Invalid) as info:
        rules.check_not_self(3, 3, "cannot_befriend_self")
    assert info.value.code == "cannot_befriend_self"


def test_request_decisions() -> None:
    assert rules.decide_request(facts()) is RequestAction.CREATE
    assert rules.decide_request(facts(outgoing=7)) is RequestAction.EXISTING
    assert rules.decide_request(facts(incoming=8)) is RequestAction.ACCEPT_INCOMING
    assert rules.decide_request(facts(incoming=8, outgoing=7)) is RequestAction.ACCEPT_INCOMING


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"exists": False}, NotFound, "user_not_found"),
        # A blocker looks exactly like nobody: the same error as an unknown user.
        ({"blocked_by_them": True}, NotFound, "user_not_found"),
        ({"blocked_by_them": True, "friends": True}, NotFound, "user_not_found"),
        ({"blocked_by_me": True}, Forbidden, "peer_blocked"),
        ({"friends": True}, Conflict, "already_friends"),
        ({"friends": True, "incoming": 3}, Conflict, "already_friends"),
    ],
)
def test_request_refusals(changes: dict[str, object], error: type[Exception], code: str) -> None:
    with pytest.raises(error) as info:
        rules.decide_request(facts(**changes))
    assert info.value.code == code  # type: ignore[attr-defined]


def test_visibility() -> None:
    assert rules.is_visible(facts())
    assert rules.is_visible(facts(blocked_by_me=True))
    assert not rules.is_visible(facts(blocked_by_them=True))
    assert not rules.is_visible(facts(exists=False))


def test_answers() -> None:
    assert rules.decide_answer(5, 5, "pending", "accepted") is True
    assert rules.decide_answer(5, 5, "pending", "declined") is True
    # The same answer again is a retry: nothing to do, no error.
    assert rules.decide_answer(5, 5, "accepted", "accepted") is False
    assert rules.decide_answer(5, 5, "declined", "declined") is False


@pytest.mark.parametrize(
    ("to_id", "state", "answer", "error", "code"),
    [
        (None, None, "accepted", NotFound, "friend_request_not_found"),
        (6, "pending", "accepted", NotFound, "friend_request_not_found"),
        (6, "pending", "declined", NotFound, "friend_request_not_found"),
        (5, "declined", "accepted", Conflict, "friend_request_closed"),
        (5, "accepted", "declined", Conflict, "friend_request_closed"),
        (5, "cancelled", "accepted", Conflict, "friend_request_closed"),
    ],
)
def test_answer_refusals(
    to_id: int | None, state: str | None, answer: str, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as info:
        rules.decide_answer(5, to_id, state, answer)
    assert info.value.code == code  # type: ignore[attr-defined]
