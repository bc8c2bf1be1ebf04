"""Sliding-window rate limits: the one rule behind login codes, phone-book uploads and look-ups."""

from __future__ import annotations

from collections.abc import Sequence

from wanglai.domain.errors import RateLimited


def check_window(
    stamps: Sequence[int], limit: int, window_ms: int, now_ms: int, code: str, message: str
) -> None:
    """Raise ``RateLimited(code, message)`` when ``limit`` hits already fall inside the window
    ending now; ``retry_after`` is when the oldest of them leaves it."""
    recent = sorted(t for t in stamps if t > now_ms - window_ms)
    if len(recent) >= limit:
        retry_after = (recent[len(recent) - limit] + window_ms - now_ms) / 1000
        raise RateLimited(code, message, retry_after=max(retry_after, 1.0))
