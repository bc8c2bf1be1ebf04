"""The payment PIN's format and the lock after five wrong tries."""

from __future__ import annotations

import pytest

from wanglai.domain import pin
from wanglai.domain.errors import Invalid, RateLimited


def test_six_digits_pass() -> None:
    assert pin.check_format("246810") == "246810"


@pytest.mark.parametrize("value", ["12345", "1234567", "12a456", "١٢٣٤٥٦", "", None, 246810])
def test_other_formats_are_refused(value: object) -> None:
    with pytest.raises(Invalid) as refused:
        pin.check_format(value)
    assert refused.value.code == "invalid_pin"


@pytest.mark.parametrize("value", ["000000", "777777", "123456", "654321"])
def test_weak_pins_are_refused(value: str) -> None:
    with pytest.raises(Invalid) as refused:
        pin.check_format(value)
    assert refused.value.code == "weak_pin"


def test_the_fifth_failure_locks_for_three_hours_and_restarts_the_count() -> None:
    policy = pin.PinPolicy()
    failures, locked = 0, 0
    for expected in (1, 2, 3, 4):
        failures, locked = pin.after_failure(failures, 1_000, policy)
        assert (failures, locked) == (expected, 0)
    failures, locked = pin.after_failure(failures, 1_000, policy)
    assert failures == 0
    assert locked == 1_000 + 3 * 3600 * 1000


def test_a_lock_holds_until_its_end() -> None:
    pin.check_unlocked(0, 5)
    pin.check_unlocked(100, 100)
    with pytest.raises(RateLimited) as locked:
        pin.check_unlocked(10_000, 4_000)
    assert locked.value.code == "payments_locked"
    assert locked.value.retry_after == 6


def test_wrong_pin_says_how_many_tries_are_left() -> None:
    error = pin.wrong_pin(3, pin.PinPolicy())
    assert error.code == "wrong_pin" and "2 tries" in error.message
