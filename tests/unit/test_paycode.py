from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanglai.domain import paycode
from wanglai.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from wanglai.services.settlement import day_bounds

NOW = 1_700_000_000_000


def code(
    amount: int | None = 1000, expires_ms: int | None = NOW + 60_000, paid_id: int | None = None
) -> paycode.Code:
    return paycode.Code(1, "A" * 24, 7, amount, "CNY", "", expires_ms, paid_id, NOW)


def test_tokens_are_url_safe_and_parse_back_from_the_uri() -> None:
    token = paycode.make_token(bytes(range(paycode.TOKEN_BYTES)))
    assert len(token) == 24 and paycode.TOKEN_RE.match(token)
    assert paycode.payment_uri(token) == "wanglai://pay/" + token
    assert paycode.parse_code(paycode.payment_uri(token)) == token
    assert paycode.parse_code(f"  {token} ") == token
    with pytest.raises(ValueError):
        paycode.make_token(b"short")


@pytest.mark.parametrize(
    "value", [None, 5, "", "x" * 24 + "y", "wanglai://pay/", "wanglai://pay/abc", "A" * 23 + "!"]
)
def test_anything_but_a_token_names_no_code(value: object) -> None:
    with pytest.raises(NotFound) as info:
        paycode.parse_code(value)
    assert info.value.code == "unknown_code"


def test_dynamic_code_has_an_expiry_static_code_none() -> None:
    spec = paycode.check_code(1250, " lunch ", None)
    assert spec == paycode.CodeSpec(1250, "lunch", paycode.DEFAULT_EXPIRY_S * 1000)
    assert paycode.check_code(1, None, 60).expires_in_ms == 60_000
    assert paycode.check_code(None, "tips", None) == paycode.CodeSpec(None, "tips", None)
    with pytest.raises(Invalid) as info:
        paycode.check_code(None, None, 60)
    assert info.value.code == "expiry_needs_amount"


@pytest.mark.parametrize(
    ("amount", "description", "expires", "error"),
    [
        (0, None, None, "invalid_amount"),
        (-5, None, None, "invalid_amount"),
        (1.5, None, None, "invalid_amount"),
        ("100", None, None, "invalid_amount"),
        (True, None, None, "invalid_amount"),
        (10**14, None, None, "invalid_amount"),
        (100, "x" * 141, None, "invalid_description"),
        (100, "bad\x00text", None, "invalid_description"),
        (100, None, 29, "invalid_expires_in_s"),
        (100, None, 86_401, "invalid_expires_in_s"),
        (100, None, True, "invalid_expires_in_s"),
    ],
)
def test_bad_codes_are_refused(
    amount: object, description: object, expires: object, error: str
) -> None:
    with pytest.raises(Invalid) as info:
        paycode.check_code(amount, description, expires)
    assert info.value.code == error


def test_a_dynamic_code_amount_cannot_be_overridden() -> None:
    assert paycode.payment_amount(code(1000), None) == 1000
    assert paycode.payment_amount(code(1000), 1000) == 1000
    with pytest.raises(Invalid) as info:
        paycode.payment_amount(code(1000), 999)
    assert info.value.code == "amount_fixed"


def test_a_static_code_takes_the_payers_amount() -> None:
    static = code(None, None)
    assert paycode.payment_amount(static, 321) == 321
    with pytest.raises(Invalid) as info:
        paycode.payment_amount(static, None)
    assert info.value.code == "amount_required"
    for bad in (0, -1, 2.5, "7"):
        with pytest.raises(Invalid):
            paycode.payment_amount(static, bad)


def test_a_dynamic_code_is_paid_once_and_not_after_expiry() -> None:
    paycode.check_payable(code(), NOW)
    paycode.check_payable(code(), NOW + 59_999)
    with pytest.raises(Gone) as gone:
        paycode.check_payable(code(), NOW + 60_000)
    assert gone.value.code == "code_expired"
    with pytest.raises(Conflict) as paid:
        paycode.check_payable(code(paid_id=3), NOW)
    assert paid.value.code == "code_already_paid"
    paycode.check_payable(code(None, None), NOW + 10**12)  # a static code never expires


def test_nobody_pays_their_own_merchant() -> None:
    paycode.check_payer(1, 2)
    with pytest.raises(Forbidden):
        paycode.check_payer(2, 2)


def test_fee_split_rounds_half_up_to_the_fen() -> None:
    assert paycode.split(10_000, 6_000) == paycode.Split(60, 9_940)
    assert paycode.split(12_345, 6_000) == paycode.Split(74, 12_271)  # 74.07 -> 74
    assert paycode.split(250, 6_000) == paycode.Split(2, 248)  # 1.5 -> 2
    assert paycode.split(83, 6_000) == paycode.Split(0, 83)  # 0.498 -> 0
    assert paycode.split(1000, 0) == paycode.Split(0, 1000)


def test_refunds_never_exceed_what_was_paid() -> None:
    assert paycode.check_refund(400, 1000, 0) == 400
    assert paycode.check_refund(600, 1000, 400) == 600
    with pytest.raises(Conflict) as info:
        paycode.check_refund(601, 1000, 400)
    assert info.value.code == "refund_exceeds_payment"
    with pytest.raises(Conflict):
        paycode.check_refund(1, 1000, 1000)
    with pytest.raises(Invalid):
        paycode.check_refund(0, 1000, 0)


def test_fee_back_is_proportional_and_partial_refunds_return_the_whole_fee() -> None:
    # 12,345 fen at 0.6%: fee 74. A third back returns 24 (24.66 rounded down) ...
    assert paycode.fee_back(74, 12_345, 0, 4_115) == 24
    # ... and the rest returns the other 50, so the whole fee comes back in the end
    assert paycode.fee_back(74, 12_345, 4_115, 8_230) == 50
    assert paycode.fee_back(74, 12_345, 0, 12_345) == 74


@given(
    st.integers(1, 10**9),
    st.integers(0, 50_000),
    st.lists(st.integers(1, 10**9), min_size=1, max_size=8),
)
def test_any_series_of_refunds_returns_at_most_the_fee_and_all_of_it_when_full(
    amount: int, ppm: int, parts: list[int]
) -> None:
    fee = paycode.split(amount, ppm).fee
    refunded = returned = 0
    for part in parts:
        part = min(part, amount - refunded)
        if part == 0:
            break
        back = paycode.fee_back(fee, amount, refunded, part)
        assert 0 <= back <= part
        refunded += part
        returned += back
        assert returned <= fee
    rest = amount - refunded
    if rest:
        returned += paycode.fee_back(fee, amount, refunded, rest)
    assert returned == fee


def test_merchant_names() -> None:
    assert paycode.check_name("  Noodle Bar ") == "Noodle Bar"
    for bad in ("", "   ", "x" * 65, "a\nb", 5, None):
        with pytest.raises(Invalid):
            paycode.check_name(bad)


def test_settlement_days_are_china_days() -> None:
    since, until = day_bounds("2023-11-15")
    # 2023-11-15 00:00 in UTC+8 is 2023-11-14 16:00 UTC
    assert since == 1_699_977_600_000 and until - since == 86_400_000
    for bad in ("2023-11-31", "20231115", "2023-1-5", "", "2023-11-15T00:00"):
        with pytest.raises(Invalid):
            day_bounds(bad)
