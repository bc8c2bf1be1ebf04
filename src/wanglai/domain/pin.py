"""The payment PIN: six digits, and the lock after too many wrong tries.

Hashing (argon2id) is the service's job; here is what a PIN may be and what a wrong or right
try does to the wallet's counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from wanglai.domain.errors import Forbidden, Invalid, RateLimited


@dataclass(frozen=True)
class PinPolicy:
    max_failures: int = 5
    lock_ms: int = 3 * 3600 * 1000


def check_format(pin: object) -> str:
    if not isinstance(pin, str) or len(pin) != 6 or not pin.isascii() or not pin.isdigit():
        raise Invalid("invalid_pin", "A payment PIN is exactly 6 digits.")
    if len(set(pin)) == 1 or pin in ("123456", "654321"):
        raise Invalid("weak_pin", "Choose a PIN that is not one digit repeated or a run.")
    return pin


def check_unlocked(locked_until_ms: int, now_ms: int) -> None:
    if locked_until_ms > now_ms:
        wait = (locked_until_ms - now_ms) / 1000
        raise RateLimited(
            "payments_locked",
            "Too many wrong PINs: payments are locked; try again later.",
            retry_after=wait,
        )


def after_failure(failures: int, now_ms: int, policy: PinPolicy) -> tuple[int, int]:
    """(failures, locked_until_ms) after one more wrong PIN; the count restarts once locked."""
    failures += 1
    if failures >= policy.max_failures:
        return 0, now_ms + policy.lock_ms
    return failures, 0


def wrong_pin(failures: int, policy: PinPolicy) -> Forbidden:
    left = policy.max_failures - failures
    return Forbidden("wrong_pin", f"Wrong payment PIN; {left} tries left before a 3-hour lock.")
