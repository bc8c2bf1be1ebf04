"""Red packets: how a packet's amount is split into shares, the limits on a packet, and who may
claim which share.

"Lucky" packets use the double-mean rule: each share but the last is drawn uniformly from
1 fen up to twice the mean of what is left (keeping at least 1 fen for every share still to
come); the last share takes the rest. "Equal" packets split evenly, the first shares taking
the leftover fen. Shares are drawn when the packet is sent, so a claim only takes the next one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from wanglai.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound

SINGLE = "single"
"""A packet in a one-to-one chat: one share, the whole amount, for the other person."""
LUCKY = "lucky"
EQUAL = "equal"
KINDS = (SINGLE, LUCKY, EQUAL)

OPEN = "open"
FINISHED = "finished"
"""Every share was claimed."""
EXPIRED = "expired"
"""Its time ran out; what nobody claimed went back to the sender."""

DIRECT = "direct"
"""The conversation kind of a one-to-one chat (``conversations.kind``); anything else is a group."""

MIN_SHARE = 1
"""0.01 yuan."""

MAX_GREETING = 64
DEFAULT_GREETING = "恭喜发财，大吉大利"


@dataclass(frozen=True)
class PacketLimits:
    max_amount: int = 20_000
    """200.00 yuan a packet."""
    max_shares: int = 100
    expiry_ms: int = 24 * 3600 * 1000


def check_packet(
    kind: str, amount: int, shares: int, chat: str, members: int, limits: PacketLimits
) -> None:
    """Refuse a packet that breaks a limit. ``chat`` is the conversation's kind and ``members``
    counts everyone in it, the sender too: in a group anyone may claim, the sender included (as
    in WeChat); in a one-to-one chat only the other person, so the packet is ``single``."""
    if kind not in KINDS:
        raise Invalid("invalid_packet_kind", "A red packet is single, lucky or equal.")
    if chat == DIRECT and kind != SINGLE:
        raise Invalid("invalid_packet_kind", "A red packet in a one-to-one chat is 'single'.")
    if chat != DIRECT and kind == SINGLE:
        raise Invalid("invalid_packet_kind", "A red packet in a group is 'lucky' or 'equal'.")
    if isinstance(shares, bool) or not isinstance(shares, int) or shares < 1:
        raise Invalid("invalid_shares", "A red packet has at least one share.")
    if kind == SINGLE and shares != 1:
        raise Invalid("invalid_shares", "A one-to-one red packet has exactly one share.")
    if amount > limits.max_amount:
        raise Invalid("packet_too_large", f"A red packet holds at most {limits.max_amount} fen.")
    if shares > limits.max_shares:
        raise Invalid("too_many_shares", f"A red packet has at most {limits.max_shares} shares.")
    claimers = members - 1 if chat == DIRECT else members
    if shares > claimers:
        raise Invalid(
            "too_many_shares",
            f"A red packet cannot have more shares than people to claim it ({claimers}).",
        )
    if amount < shares * MIN_SHARE:
        raise Invalid("packet_too_small", "Every share must be at least 0.01.")


def check_greeting(greeting: object) -> str:
    if greeting is None or greeting == "":
        return DEFAULT_GREETING
    if not isinstance(greeting, str) or len(greeting) > MAX_GREETING or not greeting.isprintable():
        raise Invalid(
            "invalid_greeting", f"A greeting is up to {MAX_GREETING} printable characters."
        )
    return greeting


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


def best_luck(kind: str, state: str, claims: list[tuple[int, int]]) -> int | None:
    """Whom the packet names as luckiest: only a lucky packet, and only once nobody can claim
    any more (until then the biggest share may still be to come)."""
    if kind != LUCKY or state == OPEN:
        return None
    return luckiest(claims)


# ---------------------------------------------------------------- claiming


def not_found() -> NotFound:
    """Also the answer to people outside the packet's chat: they do not learn it exists."""
    return NotFound("packet_not_found", "No such red packet.")


def empty() -> Conflict:
    return Conflict("packet_empty", "Every share of this red packet has been claimed.")


def expired() -> Gone:
    return Gone("packet_expired", "This red packet expired; what was left went back.")


@dataclass(frozen=True)
class Claim:
    user_id: int
    share_index: int
    amount: int
    at: int


@dataclass
class Packet:
    """What claiming needs of a packet. :meth:`claim` hands out the next share, in order, and
    keeps the counts; the store loads one per packet for a whole batch of claims and writes
    back what changed."""

    id: int
    sender_id: int
    chat: str
    splits: list[int]
    claimed_count: int
    claimed_amount: int
    state: str
    expires_ms: int
    claims: dict[int, Claim] = field(default_factory=dict)
    """Claims already made, by user (only those the caller loaded: the claimants at hand)."""

    def claim(self, user_id: int, member: bool, now_ms: int) -> tuple[Claim, bool]:
        """The claim of ``user_id`` and whether it is new. A second claim gets the first back;
        raises if they may not claim (not in the chat, their own one-to-one packet, none left,
        expired)."""
        if not member:
            raise not_found()
        found = self.claims.get(user_id)
        if found is not None:
            return found, False
        if self.chat == DIRECT and user_id == self.sender_id:
            raise Forbidden("own_packet", "This red packet is for the other person in the chat.")
        if self.state == FINISHED or self.claimed_count >= len(self.splits):
            raise empty()
        if self.state == EXPIRED or now_ms >= self.expires_ms:
            raise expired()
        index = self.claimed_count
        made = Claim(user_id, index, self.splits[index], now_ms)
        self.claims[user_id] = made
        self.claimed_count += 1
        self.claimed_amount += made.amount
        if self.claimed_count == len(self.splits):
            self.state = FINISHED
        return made, True

    def expire(self, now_ms: int) -> int:
        """Close an open packet whose time is up; returns what goes back to the sender."""
        if self.state != OPEN or now_ms < self.expires_ms:
            return 0
        self.state = EXPIRED
        return sum(self.splits) - self.claimed_amount
