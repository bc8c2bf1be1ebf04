"""Idempotency keys (Stripe's model): a money-moving request carries a key; the first response
to it is kept, a retry gets that response again, and the same key with another request is a
conflict. The fingerprint is what "the same request" means."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from wanglai.domain.errors import Conflict, Invalid

MAX_KEY = 64
_encode = msgspec.json.Encoder(order="deterministic").encode


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise Invalid(
            "idempotency_key_required",
            "Send an Idempotency-Key header (a unique string per payment, reused on retries).",
        )
    if len(key) > MAX_KEY or not key.isascii() or not key.isprintable():
        raise Invalid("invalid_idempotency_key", "An idempotency key is 1-64 printable ASCII.")
    return key


def fingerprint(operation: str, *parts: Any) -> str:
    """A digest of the operation and its parameters."""
    return hashlib.sha256(_encode([operation, *parts])).hexdigest()


def reused() -> Conflict:
    return Conflict(
        "idempotency_key_reused",
        "This idempotency key was used for a different request; use a new key.",
    )
