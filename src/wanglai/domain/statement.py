"""What a wallet statement may be filtered on: a page before an id, kinds, a time range."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wanglai.domain.errors import Invalid
from wanglai.domain.paging import check_limit

KIND = re.compile(r"^[a-z][a-z_.]{0,31}$")
MAX_KINDS = 16


@dataclass(frozen=True)
class StatementFilter:
    before: int | None
    limit: int
    kinds: tuple[str, ...]
    since_ms: int | None
    until_ms: int | None


def _at_least(name: str, value: int | None, least: int) -> int | None:
    if value is not None and value < least:
        raise Invalid("invalid_" + name, f"'{name}' must be at least {least}.")
    return value


def kinds_of(raw: Sequence[str]) -> tuple[str, ...]:
    """``kind`` given as repeated parameters, comma-separated lists, or both."""
    kinds: list[str] = []
    for given in raw:
        for kind in given.split(","):
            if not KIND.match(kind):
                raise Invalid("invalid_kind", "A kind is a lower-case name such as 'topup'.")
            if kind not in kinds:
                kinds.append(kind)
    if len(kinds) > MAX_KINDS:
        raise Invalid("invalid_kind", f"Filter on at most {MAX_KINDS} kinds.")
    return tuple(kinds)


def check_filter(
    before: int | None,
    limit: int,
    kinds: Sequence[str],
    since_ms: int | None,
    until_ms: int | None,
) -> StatementFilter:
    before = _at_least("before", before, 1)
    since_ms = _at_least("since", since_ms, 0)
    until_ms = _at_least("until", until_ms, 0)
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise Invalid("invalid_range", "'since' must come before 'until'.")
    chosen = kinds_of(kinds)
    return StatementFilter(before, check_limit(limit), chosen, since_ms, until_ms)
