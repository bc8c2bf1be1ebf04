"""The one HMAC signature of partner traffic: requests to a partner, and its callbacks to us.

A signed message carries the header ``X-Wanglai-Signature: t=<unix ms>,v1=<hex>``, where the hex
is HMAC-SHA256, keyed by the secret both sides share, of ``"<t>." + body`` (the raw bytes sent).
The receiver recomputes it over the bytes it got and refuses a timestamp more than five minutes
from its own clock, so a captured message cannot be replayed later (Stripe's scheme).
"""

from __future__ import annotations

import hashlib
import hmac

from wanglai.domain.errors import Unauthorized

HEADER = "X-Wanglai-Signature"
TOLERANCE_MS = 5 * 60 * 1000


def digest(secret: str, timestamp_ms: int, body: bytes) -> str:
    message = str(timestamp_ms).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now_ms: int) -> str:
    """The header value for ``body`` sent at ``now_ms``."""
    return f"t={now_ms},v1={digest(secret, now_ms, body)}"


def verify(
    secret: str, header: str | None, body: bytes, now_ms: int, tolerance_ms: int = TOLERANCE_MS
) -> int:
    """Check a signature header against ``body``; returns its timestamp, or raises 401."""
    if not header:
        raise Unauthorized("signature_missing", f"Sign the request ({HEADER} header).")
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, value)
    raw_t, given = fields.get("t", ""), fields.get("v1", "")
    if not (raw_t.isascii() and raw_t.isdigit() and len(raw_t) <= 15) or not given:
        raise Unauthorized("signature_malformed", f"{HEADER} is 't=<unix ms>,v1=<hex>'.")
    timestamp = int(raw_t)
    if not hmac.compare_digest(digest(secret, timestamp, body), given):
        raise Unauthorized("signature_invalid", "The signature does not match the body.")
    if abs(now_ms - timestamp) > tolerance_ms:
        raise Unauthorized(
            "signature_expired", "The signature's timestamp is more than 5 minutes off."
        )
    return timestamp
