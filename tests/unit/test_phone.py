from __future__ import annotations

import pytest

from wanglai.domain.errors import Invalid
from wanglai.domain.phone import mask, normalise, prefix, try_normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138 0013 8000", "+8613800138000"),
        ("13800138000", "+8613800138000"),
        ("+1 (650) 253-0000", "+16502530000"),
        ("0086-138-0013-8000", "+8613800138000"),
    ],
)
def test_normalises_to_e164(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "hello", "123", "+86 1", "+999 123456", "1" * 40])
def test_refuses_invalid_numbers(raw: str) -> None:
    with pytest.raises(Invalid) as info:
        normalise(raw)
    assert info.value.code == "invalid_phone"
    assert try_normalise(raw) is None


def test_region_decides_numbers_without_plus() -> None:
    assert normalise("6502530000", "US") == "+16502530000"


def test_prefix_and_mask() -> None:
    assert prefix("+8613800138000") == "+861380"
    assert mask("+8613800138000") == "+86138****8000"
    assert "0013" not in mask("+8613800138000")
