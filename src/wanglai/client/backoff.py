"""Reconnect delays: exponential, bounded and jittered so that clients don't return in lockstep."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``delay(attempt)`` grows from ``low`` to at most ``high`` seconds, each scaled by a random
    factor in [0.5, 1] (so a crowd of clients reconnecting after a restart spreads out)."""

    low: float = 0.2
    high: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        base = min(self.high, self.low * 2.0 ** min(attempt, 30))
        return base * (0.5 + 0.5 * self.rng.random())
