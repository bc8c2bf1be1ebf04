"""Phone-number identity: every number is normalised to E.164 before it is stored or compared."""

from __future__ import annotations

import phonenumbers

from wanglai.domain.errors import Invalid


def normalise(raw: str, default_region: str = "CN") -> str:
    """Return ``raw`` in E.164 (``+8613800138000``) or raise ``Invalid('invalid_phone')``.

    Numbers without a leading ``+`` are read in ``default_region``.
    """
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 32:
        raise Invalid("invalid_phone", "Give a phone number, e.g. +8613800138000.")
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise Invalid("invalid_phone", f"{raw!r} is not a phone number.") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid("invalid_phone", f"{raw!r} is not a valid phone number.")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def try_normalise(raw: str, default_region: str = "CN") -> str | None:
    """Like :func:`normalise` but returns ``None`` for a number that is not valid."""
    try:
        return normalise(raw, default_region)
    except Invalid:
        return None


def prefix(e164: str, digits: int = 6) -> str:
    """The number's leading digits (country code and range), used to spot SMS-pumping runs."""
    return e164[: digits + 1]


def mask(e164: str) -> str:
    """A number safe to print in logs: ``+86138****8000``."""
    if len(e164) <= 8:
        return e164
    return e164[:6] + "*" * (len(e164) - 10) + e164[-4:]
