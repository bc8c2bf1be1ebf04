"""Rules of money in and out of the wallet: the top-up channels, the monthly cap on top-ups
charged to the phone bill, card and bank-account numbers, and the states of a funding order."""

from __future__ import annotations

import datetime

from wanglai.domain.errors import Forbidden, Invalid
from wanglai.domain.limits import CHINA_OFFSET_MS

TOPUP = "topup"
WITHDRAW = "withdraw"
CARRIER = "carrier"
BANK = "bank"
CHANNELS = (CARRIER, BANK)

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"

MAX_REASON = 64


def month_of(now_ms: int) -> int:
    """The China-time month (yyyymm) that ``now_ms`` falls in; the carrier cap is per month."""
    day = datetime.datetime.fromtimestamp((now_ms + CHINA_OFFSET_MS) / 1000, datetime.UTC)
    return day.year * 100 + day.month


def check_channel(value: object) -> str:
    if value not in CHANNELS:
        raise Invalid("invalid_channel", "'channel' is 'carrier' (phone bill) or 'bank' (card).")
    return str(value)


def check_carrier_cap(amount: int, used: int, cap: int) -> None:
    """Refuse a phone-bill top-up that would take this month's total over ``cap``."""
    if used + amount > cap:
        left = max(cap - used, 0)
        raise Forbidden(
            "carrier_monthly_cap",
            f"Top-ups charged to your phone bill are limited to {cap} fen a month;"
            f" {left} fen are left this month. Top up from a bank card instead.",
        )


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def check_card(value: object) -> str:
    """A payment card number: 12 to 19 digits (spaces allowed) with a valid check digit."""
    if value is None or value == "":
        raise Invalid("card_required", "A bank top-up needs the 'card' number to charge.")
    if not isinstance(value, str):
        raise Invalid("invalid_card", "'card' is the card number as a string of digits.")
    digits = value.replace(" ", "")
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19) or not luhn_ok(
        digits
    ):
        raise Invalid("invalid_card", "'card' is not a valid card number (12-19 digits).")
    return digits


def check_account(value: object) -> str:
    """A bank account number to pay out to: 8 to 34 letters and digits (an IBAN fits)."""
    if not isinstance(value, str) or not value:
        raise Invalid("account_required", "Give the bank 'account' number to pay out to.")
    account = value.replace(" ", "").upper()
    if not (account.isascii() and account.isalnum() and 8 <= len(account) <= 34):
        raise Invalid("invalid_account", "'account' is 8-34 letters and digits.")
    return account


def mask(number: str) -> str:
    """What a statement shows of a card or account number: its last four characters."""
    return "*" * 4 + number[-4:]


def check_reason(value: object) -> str:
    """A partner's failure reason, kept as a short code."""
    if not isinstance(value, str) or not value:
        return "failed"
    return value[:MAX_REASON]
