"""Usage rows: additive upserts of in-memory sums, and one day's rows with the subscriber's
number for the export."""

from __future__ import annotations

from collections.abc import Sequence

from wanglai.domain.usage import UsageRow
from wanglai.store.sql import Op, all_rows, many

_COLUMNS = (
    "day, user_id, device_id, uplink_bytes, downlink_bytes, connects, heartbeats, pushes,"
    " requests, first_ms, last_ms"
)
_ADD = (
    f"INSERT INTO usage_daily ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (day, user_id, device_id) DO UPDATE SET"
    " uplink_bytes = usage_daily.uplink_bytes + excluded.uplink_bytes,"
    " downlink_bytes = usage_daily.downlink_bytes + excluded.downlink_bytes,"
    " connects = usage_daily.connects + excluded.connects,"
    " heartbeats = usage_daily.heartbeats + excluded.heartbeats,"
    " pushes = usage_daily.pushes + excluded.pushes,"
    " requests = usage_daily.requests + excluded.requests,"
)
_SQLITE_SPAN = (
    " first_ms = MIN(usage_daily.first_ms, excluded.first_ms),"
    " last_ms = MAX(usage_daily.last_ms, excluded.last_ms)"
)
_PG_SPAN = (
    " first_ms = LEAST(usage_daily.first_ms, excluded.first_ms),"
    " last_ms = GREATEST(usage_daily.last_ms, excluded.last_ms)"
)


def add(rows: Sequence[UsageRow]) -> Op[None]:
    """Add sums to their (day, user, device) rows; a row that is not there yet is created.

    One statement per row, each an atomic read-and-add in the database, so several server
    processes may flush into the same row."""
    yield from many(
        _ADD + _SQLITE_SPAN,
        [
            (
                r.day,
                r.user_id,
                r.device_id,
                r.uplink_bytes,
                r.downlink_bytes,
                r.connects,
                r.heartbeats,
                r.pushes,
                r.requests,
                r.first_ms,
                r.last_ms,
            )
            for r in rows
        ],
        pg_sql=_ADD + _PG_SPAN,
    )


def day_rows(day: int) -> Op[list[tuple[UsageRow, str | None]]]:
    """Every row of ``day`` with the user's phone number (``None`` if the user is gone)."""
    rows = yield from all_rows(
        f"SELECT {', '.join('u.' + c.strip() for c in _COLUMNS.split(','))}, users.phone"
        " FROM usage_daily u LEFT JOIN users ON users.id = u.user_id"
        " WHERE u.day = ? ORDER BY u.user_id, u.device_id",
        day,
    )
    return [(UsageRow(*(int(v) for v in row[:11])), row[11]) for row in rows]
