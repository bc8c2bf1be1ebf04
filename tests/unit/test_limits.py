"""Spending caps per payment and per day, lower until the owner's real name is verified."""

from __future__ import annotations

import pytest

from wanglai.domain import limits
from wanglai.domain.errors import Forbidden

LIMITS = limits.SpendLimits(
    per_payment_verified=1_000,
    daily_verified=3_000,
    per_payment_unverified=100,
    daily_unverified=250,
)


def test_within_the_caps_passes() -> None:
    limits.check_spend(100, 150, False, LIMITS)
    limits.check_spend(1_000, 2_000, True, LIMITS)


@pytest.mark.parametrize(
    ("amount", "spent", "verified", "code"),
    [
        (101, 0, False, "over_payment_limit"),
        (100, 151, False, "over_daily_limit"),
        (1_001, 0, True, "over_payment_limit"),
        (1_000, 2_001, True, "over_daily_limit"),
    ],
)
def test_over_a_cap_is_refused(amount: int, spent: int, verified: bool, code: str) -> None:
    with pytest.raises(Forbidden) as refused:
        limits.check_spend(amount, spent, verified, LIMITS)
    assert refused.value.code == code
    assert ("Verify your real name" in refused.value.message) is not verified


def test_days_start_at_midnight_china_time() -> None:
    midnight_beijing = 1_700_000_000_000 - (1_700_000_000_000 + limits.CHINA_OFFSET_MS) % (
        limits.DAY_MS
    )
    assert limits.day_of(midnight_beijing - 1) + 1 == limits.day_of(midnight_beijing)
    assert limits.day_of(midnight_beijing) == limits.day_of(midnight_beijing + limits.DAY_MS - 1)


def test_a_pin_is_needed_above_the_pin_free_amount() -> None:
    assert limits.needs_pin(1, 0)
    assert not limits.needs_pin(500, 500)
    assert limits.needs_pin(501, 500)
