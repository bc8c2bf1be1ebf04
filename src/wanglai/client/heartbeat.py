"""How often an idle client pings: as rarely as the network path allows.

A phone's radio wakes for every heartbeat, and a NAT or a carrier's firewall drops a TCP
connection that stays silent too long — how long varies by network, from a minute or so to half
an hour. :class:`AdaptiveHeartbeat` starts at the server's advertised interval and lengthens it
step by step while pings are answered, up to the server's maximum; when a connection dies at an
interval, that interval becomes a ceiling, the next connection goes back to the last one that
worked, and later probes go half-way to the ceiling until they are close to it. Pure: the
connection tells it what happened and asks for the next interval.
"""

from __future__ import annotations

from dataclasses import dataclass

REFINE = 0.1
"""Below a known ceiling, probe longer intervals until within this fraction of it."""


@dataclass
class AdaptiveHeartbeat:
    low: float
    """The server's advertised interval: always safe."""
    high: float
    """The server's maximum: it closes connections silent for longer."""
    growth: float = 1.5
    confirm: int = 1
    """Answered pings at an interval before trying a longer one."""
    interval: float = 0.0
    good: float = 0.0
    """The longest interval whose ping was answered."""
    ceiling: float = 0.0
    """The shortest interval at which a connection died (0: none known)."""
    _answered: int = 0

    def __post_init__(self) -> None:
        self.low = max(1.0, self.low)
        self.high = max(self.low, self.high)
        self.interval = self.interval or self.low
        self.good = self.good or self.low

    def bounds(self, low: float, high: float) -> None:
        """The server's bounds from its hello (they may change between connections)."""
        self.low, self.high = max(1.0, low), max(max(1.0, low), high)
        self.interval = min(max(self.interval, self.low), self.high)
        self.good = min(max(self.good, self.low), self.interval)

    def answered(self) -> None:
        """A ping sent after ``interval`` of silence was answered: that interval works."""
        self.good = max(self.good, self.interval)
        self._answered += 1
        if self._answered < self.confirm:
            return
        self._answered = 0
        longer = min(self.high, self.interval * self.growth)
        if self.ceiling and longer >= self.ceiling:
            # known to die at the ceiling: try half-way to it while that is still a real step
            gap = self.ceiling - self.interval
            longer = self.interval + gap / 2 if gap > self.interval * REFINE else self.interval
        self.interval = longer

    def lost(self) -> None:
        """The connection died while pinging at ``interval``: never go that far again, and
        resume from the last interval that was answered."""
        if self.interval > self.good:
            self.ceiling = self.interval if not self.ceiling else min(self.ceiling, self.interval)
            self.interval = self.good
        else:
            # it died at an interval that had worked: a flaky path, not the NAT; be cautious
            self.interval = max(self.low, self.interval / self.growth)
            self.good = min(self.good, self.interval)
        self._answered = 0
