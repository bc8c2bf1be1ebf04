"""Opaque random tokens and codes, and the hashes under which they are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    """An opaque bearer token (256 bits of randomness)."""
    return secrets.token_urlsafe(32)


def new_code(digits: int = 6) -> str:
    """A numeric one-time code with a uniform distribution."""
    return str(secrets.randbelow(10**digits)).zfill(digits)


def hash_token(token: str) -> bytes:
    """Tokens have full entropy, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).digest()


def hash_code(code: str, salt: str, pepper: bytes) -> bytes:
    """Codes have little entropy: keyed with a server secret and salted with the phone number."""
    return hmac.new(pepper, f"{salt}:{code}".encode(), hashlib.sha256).digest()


def same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
