"""One-time login codes: how long they live, how often they may be sent and tried.

Pure rules; the service stores the code's hash and the send history and asks these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from wanglai.domain.errors import Gone, Invalid, RateLimited
from wanglai.domain.ratelimit import check_window


@dataclass(frozen=True)
class OtpPolicy:
    digits: int = 6
    ttl_ms: int = 5 * 60_000
    max_tries: int = 5
    window_ms: int = 10 * 60_000
    sends_per_number: int = 3
    sends_per_address: int = 10
    sends_per_prefix: int = 30
    address_window_ms: int = 60 * 60_000


@dataclass(frozen=True)
class SendHistory:
    """Send timestamps (ms) already recorded, newest last."""

    number: list[int]
    address: list[int]
    prefix: list[int]


def check_send(policy: OtpPolicy, history: SendHistory, now_ms: int) -> None:
    """Raise ``RateLimited`` when another code may not be sent now."""
    checks = (
        (
            history.number,
            policy.sends_per_number,
            policy.window_ms,
            "otp_number_limit",
            "Too many codes for this number; wait before asking again.",
        ),
        (
            history.address,
            policy.sends_per_address,
            policy.address_window_ms,
            "otp_address_limit",
            "Too many codes from this address; wait before asking again.",
        ),
        (
            history.prefix,
            policy.sends_per_prefix,
            policy.window_ms,
            "otp_prefix_limit",
            "Too many codes to this number range right now; try again later.",
        ),
    )
    for stamps, limit, window, code, message in checks:
        check_window(stamps, limit, window, now_ms, code, message)


@dataclass(frozen=True)
class PendingCode:
    code_hash: bytes
    expires_ms: int
    tries: int


def check_attempt(policy: OtpPolicy, pending: PendingCode | None, now_ms: int) -> None:
    """Raise when the stored code can no longer be tried (missing, expired or tried too often)."""
    if pending is None:
        raise Invalid("otp_not_requested", "Ask for a login code first.")
    if now_ms >= pending.expires_ms:
        raise Gone("otp_expired", "This code has expired; ask for a new one.")
    if pending.tries >= policy.max_tries:
        raise RateLimited("otp_too_many_tries", "Too many wrong codes; ask for a new one.")


def looks_like_code(policy: OtpPolicy, code: object) -> bool:
    return isinstance(code, str) and len(code) == policy.digits and code.isdigit()
