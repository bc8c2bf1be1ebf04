"""The pure parts of the operator's billing client: exact amounts, payments read from the
operator's JSON, its error codes, and the sink tokens that name one order each."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wanglai.carrier import billing
from wanglai.domain import money
from wanglai.domain.errors import Invalid
from wanglai.partners.http import Unreachable


def test_amounts_convert_exactly_between_fen_and_yuan() -> None:
    assert str(money.major(5000)) == "50.00" and str(money.major(1)) == "0.01"
    assert money.minor(Decimal("50.1")) == 5010 and money.minor(Decimal(3)) == 300
    for finer in ("0.001", "1.005", "NaN", "Infinity"):
        with pytest.raises(Invalid):
            money.minor(Decimal(finer))


def answer(amount: object = Decimal("12.34"), **changes: object) -> dict[str, object]:
    charging = {"amount": amount, "currency": "CNY", "description": "t"}
    out: dict[str, object] = {
        "paymentId": "p1",
        "paymentStatus": "processing",
        "paymentCreationDate": "2024-05-01T00:00:00.000Z",
        "amountTransaction": {
            "phoneNumber": "+8613800138000",
            "clientCorrelator": "c",
            "referenceCode": "r",
            "paymentAmount": {"chargingInformation": charging},
        },
    }
    out.update(changes)
    return out


def test_a_payment_is_read_from_the_operators_answer() -> None:
    paid = billing.payment_of(answer())
    assert (paid.payment_id, paid.status, paid.amount, paid.correlator) == (
        "p1",
        "processing",
        1234,
        "c",
    )
    assert billing.payment_of(answer("12.34")).amount == 1234  # a decimal string too
    assert billing.payment_of(answer(12)).amount == 1200
    for bad in (
        answer(True),
        answer("1.001"),
        answer(None),
        {"paymentId": "p1"},
        [],
        answer(paymentId=""),
    ):
        with pytest.raises(Unreachable):
            billing.payment_of(bad)


def test_operator_error_codes_become_short_reasons() -> None:
    assert billing.reason_of({"code": "CARRIER_BILLING.PAYMENT_DENIED"}, 403) == "payment_denied"
    assert billing.reason_of({"code": "INVALID_ARGUMENT"}, 400) == "invalid_argument"
    assert billing.reason_of(None, 418) == "refused_418"


def test_a_sink_token_speaks_for_one_order_only() -> None:
    token = billing.sink_token("s", 42)
    assert billing.sink_order("s", token) == 42
    assert billing.sink_order("other", token) is None
    forged = "43." + token.split(".", 1)[1]
    for bad in (None, "", forged, "42", "42.", "x.y", "-42." + token.split(".", 1)[1], "0.abc"):
        assert billing.sink_order("s", bad) is None


def test_bad_charges_are_refused_before_anything_is_sent() -> None:
    ok = billing.charge_body("+8613800138000", 100, "CNY", "d", "r", "c-1")
    charging = ok["amountTransaction"]["paymentAmount"]["chargingInformation"]
    assert charging["amount"] == Decimal("1.00")
    with pytest.raises(Invalid, match=r"E\.164"):
        billing.charge_body("13800138000", 100, "CNY", "d", "r", None)
    with pytest.raises(Invalid):
        billing.charge_body("+8613800138000", 0, "CNY", "d", "r", None)
    with pytest.raises(Invalid):
        billing.charge_body("+8613800138000", 100, "CNY", "d", "r", "has spaces")


def test_what_the_operator_says_is_kept_only_if_it_is_plain_text() -> None:
    assert billing.reason_of({"code": "BAD\x00CODE"}, 400) == "refused_400"
    assert billing.reason_of({"code": "CARRIER_BILLING."}, 422) == "refused_422"
    with pytest.raises(Unreachable):
        billing.payment_of(answer(paymentId="p\x001"))
