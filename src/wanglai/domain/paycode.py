"""Merchant payment rules: payment code tokens and the URI a QR code carries, dynamic codes
(a fixed amount, an expiry, paid once) and static codes (the payer enters the amount), the
platform fee on a payment and what a refund may return, fee included.

Pure: the caller brings the random bytes, the clock reading and the rows.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from wanglai.domain import money
from wanglai.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound

TOKEN_BYTES = 18
"""144 random bits: 24 URL-safe characters, unguessable and short enough for a small QR."""
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{24}$")
URI_PREFIX = "wanglai://pay/"

DEFAULT_EXPIRY_S = 300
MIN_EXPIRY_S = 30
MAX_EXPIRY_S = 24 * 3600
MAX_DESCRIPTION = 140
MAX_NAME = 64


def make_token(random_bytes: bytes) -> str:
    """The token of a new code from ``TOKEN_BYTES`` random bytes (``secrets.token_bytes``)."""
    if len(random_bytes) != TOKEN_BYTES:
        raise ValueError(f"a payment code token takes {TOKEN_BYTES} random bytes")
    return base64.urlsafe_b64encode(random_bytes).decode("ascii")


def payment_uri(token: str) -> str:
    """What the QR code encodes: a payer's app opens it and shows the code."""
    return URI_PREFIX + token


def parse_code(value: object) -> str:
    """The token in what a payer sends: the bare token or the scanned ``wanglai://pay/`` URI.
    Anything else names no code (404), so a guess learns nothing from the error."""
    text = value.strip() if isinstance(value, str) else ""
    if text.startswith(URI_PREFIX):
        text = text[len(URI_PREFIX) :]
    if not TOKEN_RE.match(text):
        raise unknown_code()
    return text


def unknown_code() -> NotFound:
    return NotFound("unknown_code", "No such payment code; scan it again or ask the merchant.")


def check_name(value: object) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise Invalid("invalid_name", f"A merchant name is 1-{MAX_NAME} printable characters.")
    return name


@dataclass(frozen=True)
class CodeSpec:
    """A payment code to make: with an amount a dynamic code, without one a static code."""

    amount: int | None
    description: str
    expires_in_ms: int | None


def check_code(amount: object, description: object, expires_in_s: object) -> CodeSpec:
    """The rules for a new code: a dynamic code expires (by default in five minutes, at most in
    a day); a static code never does, so it takes no expiry."""
    text = "" if description is None else description
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTION or not text.isprintable():
        raise Invalid(
            "invalid_description",
            f"'description' is at most {MAX_DESCRIPTION} printable characters.",
        )
    if amount is None:
        if expires_in_s is not None:
            raise Invalid(
                "expiry_needs_amount",
                "Only a code with an amount expires; a static code (no amount) is for good.",
            )
        return CodeSpec(None, text.strip(), None)
    value = money.amount(amount)
    seconds = DEFAULT_EXPIRY_S if expires_in_s is None else expires_in_s
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not MIN_EXPIRY_S <= seconds <= MAX_EXPIRY_S
    ):
        raise Invalid(
            "invalid_expires_in_s",
            f"'expires_in_s' is a whole number of seconds, {MIN_EXPIRY_S} to {MAX_EXPIRY_S}.",
        )
    return CodeSpec(value, text.strip(), seconds * 1000)


@dataclass(frozen=True)
class Code:
    """A payment code as stored."""

    id: int
    token: str
    merchant_id: int
    amount: int | None
    currency: str
    description: str
    expires_ms: int | None
    paid_id: int | None
    created_ms: int

    @property
    def dynamic(self) -> bool:
        return self.amount is not None


def payment_amount(code: Code, given: object) -> int:
    """What the payer pays with this code: a dynamic code's own amount (which a payer may
    repeat but not change) or, for a static code, the amount the payer entered."""
    if code.amount is not None:
        if given is not None and given != code.amount:
            raise Invalid(
                "amount_fixed",
                f"This code asks for exactly {code.amount} fen; leave 'amount' out to pay it.",
            )
        return code.amount
    if given is None:
        raise Invalid("amount_required", "This merchant's code has no amount: enter the amount.")
    return money.amount(given)


def check_payable(code: Code, now_ms: int) -> None:
    """A dynamic code is paid once and not after its expiry; a static code always takes money."""
    if code.paid_id is not None:
        raise Conflict(
            "code_already_paid", "This payment code was already paid; ask for a new one."
        )
    if code.expires_ms is not None and now_ms >= code.expires_ms:
        raise Gone("code_expired", "This payment code has expired; ask the merchant for a new one.")


def check_payer(payer_id: int, owner_id: int) -> None:
    if payer_id == owner_id:
        raise Forbidden("own_merchant", "You cannot pay your own merchant.")


@dataclass(frozen=True)
class Split:
    """A payment's amount split between the merchant and the platform."""

    fee: int
    net: int


def split(amount: int, fee_ppm: int) -> Split:
    """The platform's fee (rounded half up to the fen) and what the merchant keeps."""
    fee = money.fee(amount, fee_ppm)
    return Split(fee, amount - fee)


def refundable(paid: int, refunded: int) -> int:
    return max(paid - refunded, 0)


def check_refund(amount: object, paid: int, refunded: int) -> int:
    """A refund is a positive amount, and all refunds of a payment never exceed what was paid."""
    value = money.amount(amount)
    left = refundable(paid, refunded)
    if value > left:
        raise Conflict(
            "refund_exceeds_payment",
            f"At most {left} fen of this payment can still be refunded.",
        )
    return value


def fee_back(fee: int, paid: int, refunded_before: int, refund: int) -> int:
    """The part of the fee a refund returns to the merchant: the fee's share of everything
    refunded so far less what earlier refunds returned, so that partial refunds adding up to the
    payment return exactly the whole fee (each share rounds down, the last one catches up)."""
    return money.share(fee, refunded_before + refund, paid) - money.share(
        fee, refunded_before, paid
    )
