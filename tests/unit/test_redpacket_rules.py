"""The red-packet rules with plain inputs: limits, splits, claiming in order, expiry."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanglai.domain import redpacket as rules
from wanglai.domain.errors import WanglaiError
from wanglai.domain.redpacket import Packet, PacketLimits

LIMITS = PacketLimits()


@given(
    st.integers(1, 100).flatmap(lambda n: st.tuples(st.just(n), st.integers(n, 20_000))),
    st.integers(0, 2**32),
)
def test_lucky_shares_sum_exactly_and_follow_the_double_mean_rule(
    sizes: tuple[int, int], seed: int
) -> None:
    shares, amount = sizes
    out = rules.split(rules.LUCKY, amount, shares, random.Random(seed))
    assert len(out) == shares and sum(out) == amount and min(out) >= rules.MIN_SHARE
    remaining = amount
    for left, share in zip(range(shares, 1, -1), out, strict=False):
        assert share <= max(1, 2 * remaining // left)
        remaining -= share


def test_equal_shares_give_the_leftover_to_the_first() -> None:
    assert rules.split(rules.EQUAL, 1_001, 3, random.Random(0)) == [334, 334, 333]
    assert rules.split(rules.SINGLE, 777, 1, random.Random(0)) == [777]


@pytest.mark.parametrize(
    ("kind", "amount", "shares", "chat", "members", "code"),
    [
        ("lucky", 20_001, 2, "group", 3, "packet_too_large"),
        ("lucky", 100, 101, "group", 500, "too_many_shares"),
        ("equal", 100, 4, "group", 3, "too_many_shares"),
        ("lucky", 2, 3, "group", 3, "packet_too_small"),
        ("lucky", 100, 0, "group", 3, "invalid_shares"),
        ("lucky", 100, True, "group", 3, "invalid_shares"),
        ("single", 100, 1, "group", 3, "invalid_packet_kind"),
        ("lucky", 100, 1, "direct", 2, "invalid_packet_kind"),
        ("single", 100, 2, "direct", 2, "invalid_shares"),
        ("gold", 100, 1, "group", 3, "invalid_packet_kind"),
    ],
)
def test_check_packet_refuses(
    kind: str, amount: int, shares: int, chat: str, members: int, code: str
) -> None:
    with pytest.raises(WanglaiError) as caught:
        rules.check_packet(kind, amount, shares, chat, members, LIMITS)
    assert caught.value.code == code


def test_check_packet_counts_the_sender_in_a_group() -> None:
    rules.check_packet("equal", 300, 3, "group", 3, LIMITS)
    rules.check_packet("single", 20_000, 1, "direct", 2, LIMITS)
    rules.check_packet("lucky", 100, 100, "group", 500, LIMITS)


def test_greeting() -> None:
    assert rules.check_greeting(None) == rules.DEFAULT_GREETING
    assert rules.check_greeting("新年快乐") == "新年快乐"
    for bad in ("x" * 65, "a\nb", 5):
        with pytest.raises(WanglaiError):
            rules.check_greeting(bad)


def packet(splits: list[int], chat: str = "group", expires: int = 1_000) -> Packet:
    return Packet(1, 10, chat, splits, 0, 0, rules.OPEN, expires)


def test_claims_take_shares_in_order_once_each() -> None:
    p = packet([5, 3, 2])
    first, new = p.claim(11, True, 0)
    assert (first.share_index, first.amount, new) == (0, 5, True)
    again, new = p.claim(11, True, 1)
    assert again == first and not new
    assert p.claim(10, True, 2)[0].amount == 3  # the sender, in a group
    assert p.claim(12, True, 3)[0].amount == 2
    assert (p.state, p.claimed_count, p.claimed_amount) == (rules.FINISHED, 3, 10)
    with pytest.raises(WanglaiError) as caught:
        p.claim(13, True, 4)
    assert caught.value.code == "packet_empty"
    assert p.expire(5_000) == 0 and p.state == rules.FINISHED


def test_claim_refusals() -> None:
    p = packet([5], chat="direct")
    for user, member, now, code in (
        (11, False, 0, "packet_not_found"),
        (10, True, 0, "own_packet"),
        (11, True, 1_000, "packet_expired"),
    ):
        with pytest.raises(WanglaiError) as caught:
            p.claim(user, member, now)
        assert caught.value.code == code
    assert p.claimed_count == 0


def test_expiry_returns_the_unclaimed_rest() -> None:
    p = packet([5, 3, 2])
    p.claim(11, True, 0)
    assert p.expire(999) == 0 and p.state == rules.OPEN
    assert p.expire(1_000) == 5 and p.state == rules.EXPIRED
    assert p.expire(2_000) == 0


def test_best_luck_only_for_closed_lucky_packets() -> None:
    claims = [(1, 5), (2, 9), (3, 9)]
    assert rules.best_luck(rules.LUCKY, rules.OPEN, claims) is None
    assert rules.best_luck(rules.LUCKY, rules.FINISHED, claims) == 2
    assert rules.best_luck(rules.EQUAL, rules.FINISHED, claims) is None
    assert rules.luckiest([]) is None
