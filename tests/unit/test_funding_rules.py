"""Funding rules and the partner signature, with plain inputs."""

from __future__ import annotations

import pytest

from wanglai.domain import funding
from wanglai.domain.errors import Forbidden, Invalid, Unauthorized
from wanglai.partners import signing

NOW = 1_700_000_000_000


def test_month_is_china_time() -> None:
    # 2024-01-31 16:00 UTC is 2024-02-01 00:00 in China.
    assert funding.month_of(1_706_716_800_000) == 202402
    assert funding.month_of(1_706_716_800_000 - 1) == 202401


def test_carrier_cap_counts_what_is_used() -> None:
    funding.check_carrier_cap(10_000, 20_000, 30_000)
    with pytest.raises(Forbidden) as refused:
        funding.check_carrier_cap(10_001, 20_000, 30_000)
    assert refused.value.code == "carrier_monthly_cap" and "10000 fen are left" in str(
        refused.value
    )


@pytest.mark.parametrize("card", ["4242424242424242", "4242 4242 4242 4242", "6011111111111117"])
def test_valid_cards(card: str) -> None:
    assert funding.check_card(card) == card.replace(" ", "")


@pytest.mark.parametrize(
    ("card", "code"),
    [
        (None, "card_required"),
        ("", "card_required"),
        (4242424242424242, "invalid_card"),
        ("4242424242424241", "invalid_card"),  # check digit
        ("42424242424", "invalid_card"),  # too short
        ("4242x42424242424", "invalid_card"),
        ("４２４２４２４２４２４２４２４２", "invalid_card"),  # full-width digits
    ],
)
def test_invalid_cards(card: object, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        funding.check_card(card)
    assert refused.value.code == code


def test_accounts_and_masks() -> None:
    assert funding.check_account("de89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    for bad, code in ((None, "account_required"), ("1234567", "invalid_account")):
        with pytest.raises(Invalid) as refused:
            funding.check_account(bad)
        assert refused.value.code == code
    assert funding.mask("6222020200112233445") == "****3445"
    assert funding.check_channel("bank") == "bank"
    with pytest.raises(Invalid):
        funding.check_channel("paypal")


def test_a_signature_verifies_only_its_body_secret_and_time() -> None:
    body = b'{"order":1}'
    header = signing.sign("s", body, NOW)
    assert signing.verify("s", header, body, NOW + 299_000) == NOW
    cases = [
        ("t", header, body, NOW, "signature_invalid"),
        ("s", header, body + b" ", NOW, "signature_invalid"),
        ("s", header, body, NOW + 301_000, "signature_expired"),
        ("s", header, body, NOW - 301_000, "signature_expired"),
        ("s", None, body, NOW, "signature_missing"),
        ("s", "t=abc,v1=00", body, NOW, "signature_malformed"),
        ("s", f"t={NOW}", body, NOW, "signature_malformed"),
        ("s", header.replace(f"t={NOW}", f"t={NOW + 1}"), body, NOW, "signature_invalid"),
    ]
    for secret, given, sent, now, code in cases:
        with pytest.raises(Unauthorized) as refused:
            signing.verify(secret, given, sent, now)
        assert refused.value.code == code
