"""Paged reads: how many items a page may ask for."""

from __future__ import annotations

from wanglai.domain.errors import Invalid

DEFAULT_MOST = 200


def check_limit(limit: int, most: int = DEFAULT_MOST) -> int:
    if not 1 <= limit <= most:
        raise Invalid("invalid_limit", f"'limit' is between 1 and {most}.")
    return limit
