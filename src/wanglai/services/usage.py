"""Usage records for sponsored data: sums kept in memory, flushed to ``usage_daily`` in batches,
and the daily export an operator zero-rates by (docs/operations.md, Usage records)."""

from __future__ import annotations

from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid
from wanglai.domain.usage import FORMATS, Sponsor, Tally, parse_date, records, to_csv, to_json
from wanglai.store import usage as usage_store
from wanglai.store.database import Database


class UsageService:
    """Counts arrive through :meth:`record` (the gateway calls it; a dictionary update, no I/O)
    and reach the database with :meth:`flush`, which the app runs every ``usage_flush_s``, just
    before each China-time midnight and at shutdown."""

    def __init__(self, db: Database, clock: Clock, sponsor: Sponsor) -> None:
        self.db = db
        self.clock = clock
        self.sponsor = sponsor
        self.tally = Tally()

    def record(
        self,
        user_id: int,
        device_id: int,
        up: int,
        down: int,
        connects: int = 0,
        heartbeats: int = 0,
        pushes: int = 0,
        requests: int = 0,
    ) -> None:
        self.tally.add(
            self.clock.now_ms(),
            user_id,
            device_id,
            up,
            down,
            connects,
            heartbeats,
            pushes,
            requests,
        )

    def unattributed(self, up: int, down: int) -> None:
        """Bytes of exchanges without a subscriber (no valid token): in no record."""
        self.tally.unattributed_up += up
        self.tally.unattributed_down += down

    async def flush(self) -> int:
        """Add what was counted since the last flush to the database; returns how many rows.
        If the write fails the sums stay in memory for the next flush."""
        rows = self.tally.drain()
        if not rows:
            return 0
        try:
            await self.db.write(usage_store.add, rows)
        except BaseException:
            self.tally.restore(rows)
            raise
        return len(rows)

    async def export(self, date: str, fmt: str = "csv") -> str:
        """The records of a China-time ``YYYY-MM-DD`` as CSV or JSON (what is flushed so far)."""
        if fmt not in FORMATS:
            raise Invalid("invalid_format", f"The format is one of {', '.join(FORMATS)}.")
        day = parse_date(date)
        rows = await self.db.read(usage_store.day_rows, day)
        recs = records(day, rows, self.sponsor)
        return to_csv(recs) if fmt == "csv" else to_json(day, recs)
