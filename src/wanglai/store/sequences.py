"""Sequence counters kept on rows (``users.seq`` for event logs, ``conversations.seq`` for
messages): read, bumped and written back set-wise, locked in id order on PostgreSQL."""

from __future__ import annotations

from wanglai.store.sql import Op, Values, all_rows, many


def read(table: str, ids: list[int]) -> Op[dict[int, int]]:
    """The sequence counters of these rows, locked until commit on PostgreSQL (in id order)."""
    rows = yield from all_rows(
        f"SELECT id, seq FROM {table} WHERE id = ANY(?)",
        Values(sorted(ids)),
        pg_sql=f"SELECT id, seq FROM {table} WHERE id = ANY(?) ORDER BY id FOR UPDATE",
    )
    return {int(r[0]): int(r[1]) for r in rows}


def write(table: str, values: dict[int, int]) -> Op[None]:
    yield from many(
        f"UPDATE {table} SET seq = ? WHERE id = ?", [(values[i], i) for i in sorted(values)]
    )


def take(table: str, counts: dict[int, int]) -> Op[dict[int, int]]:
    """Reserve ``counts[id]`` sequence numbers on each row; returns each row's seq before."""
    before = yield from read(table, list(counts))
    yield from write(table, {i: before[i] + counts[i] for i in before})
    return before
