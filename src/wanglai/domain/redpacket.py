"""Red packets: how a packet's amount is split into shares, and the limits on a packet.

"Lucky" packets use the double-mean rule: each share but the last is drawn uniformly from
1 fen up to twice the mean of what is left (keeping at least 1 fen for every share still to
come); the last share takes the rest. "Equal" packets split evenly, the first shares taking
the leftover fen. Shares are drawn when the packet is sent, so a claim only takes the next one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from wanglai.domain.errors import Invalid

SINGLE = "single"
"""A packet in a one-to-one chat: one share, the whole amount."""
LUCKY = "lucky"
EQUAL = "equal"
KINDS = (SINGLE, LUCKY, EQUAL)

MIN_SHARE = 1
"""0.01 yuan."""


@dataclass(frozen=True)
class PacketLimits:
    max_amount: int = 20_000
    """200.00 yuan a packet."""
    max_shares: int = 100
    expiry_ms: int = 24 * 3600 * 1000


def check_packet(kind: str, amount: int, shares: int, members: int, limits: PacketLimits) -> None:
    """Refuse a packet that breaks a limit; ``members`` counts everyone in the chat but the
    sender (who may not claim their own group packet)."""
    if kind not in KINDS:
        raise Invalid("invalid_packet_kind", "A red packet is single, lucky or equal.")
    if isinstance(shares, bool) or not isinstance(shares, int) or shares < 1:
        raise Invalid("invalid_shares", "A red packet has at least one share.")
    if kind == SINGLE and shares != 1:
        raise Invalid("invalid_shares", "A one-to-one red packet has exactly one share.")
    if amount > limits.max_amount:
        raise Invalid("packet_too_large", f"A red packet holds at most {limits.max_amount} fen.")
    if shares > limits.max_shares:
        raise Invalid("too_many_shares", f"A red packet has at most {limits.max_shares} shares.")
    if shares > members:
        raise Invalid(
            "too_many_shares", "A red packet cannot have more shares than people to claim it."
        )
    if amount < shares * MIN_SHARE:
        raise Invalid("packet_too_small", "Every share must be at least 0.01.")


def split(kind: str, amount: int, shares: int, rng: random.Random) -> list[int]:
    """The shares, in claim order; they sum to ``amount`` and each is at least ``MIN_SHARE``."""
    if kind in (EQUAL, SINGLE):
        base, extra = divmod(amount, shares)
        return [base + (1 if i < extra else 0) for i in range(shares)]
    out: list[int] = []
    remaining = amount
    for left in range(shares, 1, -1):
        ceiling = min(2 * remaining // left, remaining - (left - 1) * MIN_SHARE)
        share = rng.randint(MIN_SHARE, max(MIN_SHARE, ceiling))
        out.append(share)
        remaining -= share
    out.append(remaining)
    return out


def luckiest(claims: list[tuple[int, int]]) -> int | None:
    """Who got most (user id), the earliest of equals; ``claims`` are (user, amount) in order."""
    best: tuple[int, int] | None = None
    for user, amount in claims:
        if best is None or amount > best[1]:
            best = (user, amount)
    return None if best is None else best[0]
