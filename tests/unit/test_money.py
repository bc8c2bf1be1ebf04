"""Amounts in fen: only positive whole numbers pass, nothing is rounded or coerced."""

from __future__ import annotations

import pytest

from wanglai.domain import money
from wanglai.domain.errors import Invalid


@pytest.mark.parametrize("value", [1, 1250, money.MAX_AMOUNT])
def test_whole_positive_amounts_pass(value: int) -> None:
    assert money.amount(value) == value


@pytest.mark.parametrize(
    "value", [0, -1, 1.5, 100.0, "100", True, False, None, money.MAX_AMOUNT + 1, 2**70, [1]]
)
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(Invalid) as refused:
        money.amount(value)
    assert refused.value.code == "invalid_amount"


def test_the_field_name_is_in_the_code() -> None:
    with pytest.raises(Invalid) as refused:
        money.amount(0, "refund")
    assert refused.value.code == "invalid_refund"


def test_currencies() -> None:
    assert money.currency("CNY") == "CNY"
    for bad in ("USD", "cny", "", None, 1):
        with pytest.raises(Invalid) as refused:
            money.currency(bad)
        assert refused.value.code == "unsupported_currency"


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        (10_000, 6_000, 60),  # 0.6% of 100.00
        (83, 6_000, 0),  # 0.498 fen rounds down
        (84, 6_000, 1),  # 0.504 fen rounds up
        (250, 2_000, 1),  # exactly half a fen rounds up
        (5, 0, 0),
        (5, -1, 0),
        (3, 2 * money.PPM, 3),  # never above the amount
    ],
)
def test_fee_rounds_half_up_and_never_exceeds_the_amount(
    amount: int, rate: int, expected: int
) -> None:
    assert money.fee(amount, rate) == expected


def test_share_rounds_down() -> None:
    assert money.share(60, 1, 3) == 20
    assert money.share(61, 1, 3) == 20
    assert money.share(61, 3, 3) == 61
    assert money.share(61, 1, 0) == 0


@pytest.mark.parametrize(
    ("fen", "text"), [(1250, "12.50"), (5, "0.05"), (0, "0.00"), (-1250, "-12.50"), (100, "1.00")]
)
def test_display(fen: int, text: str) -> None:
    assert money.display(fen) == text
