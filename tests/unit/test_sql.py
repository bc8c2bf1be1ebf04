from __future__ import annotations

import sqlite3

import pytest

from wanglai.store.database import _pg_text
from wanglai.store.sql import Op, Row, Values, all_rows, execute, one
from wanglai.store.sqlite_run import _run_sqlite, _sqlite_params, _sqlite_text


def test_list_parameters_expand_for_sqlite() -> None:
    _, shape, flat = _sqlite_params((1, Values([2, 3, 4]), "x"))
    assert shape == (-1, 3, -1) and flat == [1, 2, 3, 4, "x"]
    sql = "SELECT * FROM t WHERE a = ? AND b = ANY(?) AND c = ?"
    assert _sqlite_text(sql, shape) == "SELECT * FROM t WHERE a = ? AND b IN (?, ?, ?) AND c = ?"
    assert "IN (NULL)" in _sqlite_text("SELECT 1 WHERE b = ANY(?)", (0,))
    with pytest.raises(ValueError):
        _sqlite_text("SELECT 1 WHERE b IN (?)", (2,))


def test_placeholders_for_postgres() -> None:
    assert _pg_text("UPDATE t SET a = ? WHERE b = ? AND c = ANY(?)") == (
        "UPDATE t SET a = $1 WHERE b = $2 AND c = ANY($3)"
    )


def test_generators_run_and_compose() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")

    def insert(values: list[str]) -> Op[int]:
        total = 0
        for v in values:
            total += yield from execute("INSERT INTO t (v) VALUES (?)", v)
        return total

    def both() -> Op[tuple[int, list[Row], Row | None]]:
        n = yield from insert(["a", "b", "c"])
        rows = yield from all_rows("SELECT v FROM t WHERE id = ANY(?) ORDER BY id", Values([1, 3]))
        missing = yield from one("SELECT v FROM t WHERE id = ?", 99)
        return n, rows, missing

    n, rows, missing = _run_sqlite(conn, both, ())
    assert n == 3 and [r[0] for r in rows] == ["a", "c"] and missing is None
