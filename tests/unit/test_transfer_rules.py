"""Who may be paid in a chat, what a note may say, and when a transfer may be resolved."""

from __future__ import annotations

import pytest

from wanglai.domain import transfers as rules
from wanglai.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from wanglai.domain.policy import PeerFacts


def facts(
    friends: bool = True, blocked_by_me: bool = False, blocked_by_peer: bool = False
) -> PeerFacts:
    return PeerFacts(blocked_by_me, blocked_by_peer, friends, "friends")


def test_friends_may_be_paid() -> None:
    rules.check_may_pay(facts(), accepts_strangers=False)


def test_strangers_only_when_the_receiver_allows_it() -> None:
    with pytest.raises(Forbidden) as refused:
        rules.check_may_pay(facts(friends=False), accepts_strangers=False)
    assert refused.value.code == "transfer_to_stranger"
    rules.check_may_pay(facts(friends=False), accepts_strangers=True)


@pytest.mark.parametrize(
    ("pair", "code"),
    [
        (facts(blocked_by_peer=True), "peer_unreachable"),
        (facts(friends=False, blocked_by_peer=True), "peer_unreachable"),
        (facts(blocked_by_me=True), "peer_blocked"),
    ],
)
def test_blocks_refuse_even_where_strangers_are_welcome(pair: PeerFacts, code: str) -> None:
    with pytest.raises(Forbidden) as refused:
        rules.check_may_pay(pair, accepts_strangers=True)
    assert refused.value.code == code


def test_nobody_pays_themself() -> None:
    rules.check_payee(1, 2)
    with pytest.raises(Invalid) as refused:
        rules.check_payee(3, 3)
    assert refused.value.code == "cannot_pay_self"


def test_notes() -> None:
    assert rules.check_note("  for lunch ") == "for lunch"
    assert rules.check_note("") == ""
    assert rules.check_note("红包" * 70) == "红包" * 70
    for bad in ("x" * 141, "a\x00b", "two\nlines", 5, None):
        with pytest.raises(Invalid) as refused:
            rules.check_note(bad)
        assert refused.value.code == "invalid_note"


def test_only_the_two_people_see_a_transfer_and_only_the_receiver_resolves_it() -> None:
    rules.check_visible(1, 1, 2)
    rules.check_visible(2, 1, 2)
    with pytest.raises(NotFound):
        rules.check_visible(3, 1, 2)
    rules.check_receiver(2, 2)
    with pytest.raises(Forbidden) as refused:
        rules.check_receiver(1, 2)
    assert refused.value.code == "not_your_transfer"


def test_resolution_happens_once_and_in_its_time() -> None:
    expires = 1_000
    rules.check_resolution(rules.ACCEPTED, rules.PENDING, expires, 999)
    rules.check_resolution(rules.DECLINED, rules.PENDING, expires, 5_000)
    rules.check_resolution(rules.RETURNED, rules.PENDING, expires, 1_000)
    with pytest.raises(Gone) as late:
        rules.check_resolution(rules.ACCEPTED, rules.PENDING, expires, 1_000)
    assert late.value.code == "transfer_expired"
    with pytest.raises(Conflict) as early:
        rules.check_resolution(rules.RETURNED, rules.PENDING, expires, 999)
    assert early.value.code == "transfer_not_due"
    for state in (rules.ACCEPTED, rules.DECLINED, rules.RETURNED):
        for target in (rules.ACCEPTED, rules.DECLINED, rules.RETURNED):
            with pytest.raises(Conflict) as again:
                rules.check_resolution(target, state, expires, 0)
            assert again.value.code == f"transfer_already_{state}"
