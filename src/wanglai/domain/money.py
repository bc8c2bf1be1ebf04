"""Money as integers: amounts in minor units (fen) with an ISO 4217 currency; never floats.

An amount that reaches the wallet is checked here once: a JSON ``1.5`` or ``"100"`` or
``true`` is refused, not rounded or coerced.
"""

from __future__ import annotations

from decimal import Decimal

from wanglai.domain.errors import Invalid

DEFAULT_CURRENCY = "CNY"
CURRENCIES: dict[str, int] = {"CNY": 2}
"""The currencies the ledger keeps, with their number of minor-unit digits."""

MAX_AMOUNT = 10**13
"""A hundred billion yuan: more than any single movement, far below 2**63 after sums."""

PPM = 1_000_000
"""Rates (fees) are parts per million: 0.6% is 6,000."""


def amount(value: object, name: str = "amount") -> int:
    """A positive amount in minor units, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(
            "invalid_" + name,
            f"'{name}' must be a whole number of fen (minor units), e.g. 1250 for 12.50.",
        )
    if value <= 0:
        raise Invalid("invalid_" + name, f"'{name}' must be at least 1 fen.")
    if value > MAX_AMOUNT:
        raise Invalid("invalid_" + name, f"'{name}' is larger than any wallet can move.")
    return value


def currency(value: object) -> str:
    """A currency the ledger keeps (ISO 4217 code)."""
    if not isinstance(value, str) or value not in CURRENCIES:
        known = ", ".join(sorted(CURRENCIES))
        raise Invalid("unsupported_currency", f"The currency must be one of: {known}.")
    return value


def fee(amount: int, rate_ppm: int) -> int:
    """The fee on ``amount`` at ``rate_ppm``, rounded half up to the fen, never above the amount."""
    if rate_ppm <= 0:
        return 0
    return min(amount, (amount * rate_ppm + PPM // 2) // PPM)


def share(total: int, part: int, of: int) -> int:
    """``total * part / of`` rounded down: the portion of a fee that a partial refund returns."""
    if of <= 0:
        return 0
    return total * part // of


def display(amount: int, currency_code: str = DEFAULT_CURRENCY) -> str:
    """``12.50`` for 1250 fen: for people (CSV, CLI), never parsed back."""
    digits = CURRENCIES.get(currency_code, 2)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def major(amount_minor: int, currency_code: str = DEFAULT_CURRENCY) -> Decimal:
    """1250 fen as ``Decimal("12.50")``: the exact amount in major units, for partners whose
    APIs count in yuan (the operator's carrier billing)."""
    digits = CURRENCIES.get(currency_code, 2)
    return Decimal(amount_minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def minor(amount_major: Decimal, currency_code: str = DEFAULT_CURRENCY) -> int:
    """``Decimal("12.50")`` as 1250 fen; an amount finer than one minor unit is refused."""
    digits = CURRENCIES.get(currency_code, 2)
    scaled = amount_major.scaleb(digits)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise Invalid("invalid_amount", f"{amount_major} is not a whole number of minor units.")
    return int(scaled)
