"""The event cursor as a pure object: which pushed events to hand over, drop, or resync for."""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    DELIVER = "deliver"
    """The next event after the cursor: hand it over (the cursor moved to it)."""
    DUPLICATE = "duplicate"
    """At or before the cursor: already handed over; drop it."""
    GAP = "gap"
    """Events are missing before this one: fetch them with sync (it returns this one too)."""


class Cursor:
    """The seq of the last event handed to the caller; events are handed over in seq order, once.

    Call :meth:`offer` with each live event's seq. Events from a sync page are offered too:
    sync returns events in order with no gaps after ``since``, so each one is either DELIVER or
    DUPLICATE there; a page's first event may skip ahead only if the log itself has no such seq,
    which :meth:`advance` accepts.
    """

    def __init__(self, seq: int = 0) -> None:
        if seq < 0:
            raise ValueError("a cursor is 0 or a seq the server gave you")
        self.seq = seq

    def offer(self, seq: int) -> Verdict:
        if seq <= self.seq:
            return Verdict.DUPLICATE
        if seq == self.seq + 1:
            self.seq = seq
            return Verdict.DELIVER
        return Verdict.GAP

    def advance(self, seq: int) -> bool:
        """Accept an event that sync returned (sync has no gaps); False if already seen."""
        if seq <= self.seq:
            return False
        self.seq = seq
        return True
