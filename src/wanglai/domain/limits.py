"""How much a wallet may send: per payment and per day, lower until the owner's real name is
verified; and which small payments may go without a PIN (when the owner allowed it)."""

from __future__ import annotations

from dataclasses import dataclass

from wanglai.domain.errors import Forbidden, Invalid

DAY_MS = 24 * 3600 * 1000
CHINA_OFFSET_MS = 8 * 3600 * 1000
"""Days for the daily cap start at midnight China time (UTC+8)."""


@dataclass(frozen=True)
class SpendLimits:
    per_payment_verified: int = 5_000_000  # 50,000.00
    daily_verified: int = 20_000_000  # 200,000.00
    per_payment_unverified: int = 50_000  # 500.00
    daily_unverified: int = 100_000  # 1,000.00
    pin_free_max: int = 20_000
    """The most a user may allow per payment without a PIN (200.00)."""


def day_of(now_ms: int) -> int:
    return (now_ms + CHINA_OFFSET_MS) // DAY_MS


def caps(verified: bool, limits: SpendLimits) -> tuple[int, int]:
    """(per payment, per day) for a wallet whose owner is or is not verified."""
    if verified:
        return limits.per_payment_verified, limits.daily_verified
    return limits.per_payment_unverified, limits.daily_unverified


def check_spend(amount: int, spent_today: int, verified: bool, limits: SpendLimits) -> None:
    per, daily = caps(verified, limits)
    hint = "" if verified else " Verify your real name for higher limits."
    if amount > per:
        raise Forbidden("over_payment_limit", f"At most {per} fen in one payment.{hint}")
    if spent_today + amount > daily:
        raise Forbidden("over_daily_limit", f"At most {daily} fen a day.{hint}")


def needs_pin(amount: int, pin_free_limit: int) -> bool:
    """Whether this payment needs the PIN: above the owner's PIN-free amount, it does."""
    return amount > pin_free_limit


def check_pin_free_limit(value: object, limits: SpendLimits) -> int:
    """The amount an owner allows without a PIN: 0 (always ask) up to ``pin_free_max``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= limits.pin_free_max
    ):
        raise Invalid(
            "invalid_pin_free_limit", f"'pin_free_limit' is 0 to {limits.pin_free_max} fen."
        )
    return value
