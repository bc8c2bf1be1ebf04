"""Running query generators on a sqlite3 connection: what the server's writer thread and the
SQLite write process (``store/write_process.py``) share. Nothing here imports asyncio, so the
write process does not load it (with ``ssl``, ~7 MB of its memory)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from wanglai.store.sql import Op, Stmt, Values, batch_variant

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")

Callback = Callable[[bool, Any], None]
"""Called on the event loop with (True, result) or (False, exception) once a write is settled."""


class _Job(Generic[T]):
    __slots__ = ("args", "callback", "fn", "future")

    def __init__(
        self,
        fn: Callable[..., Op[T]],
        args: tuple[Any, ...],
        future: asyncio.Future[T] | None,
        callback: Callback | None = None,
    ):
        self.fn = fn
        self.args = args
        self.future = future
        self.callback = callback


@lru_cache(maxsize=4096)
def _sqlite_text(sql: str, shape: tuple[int, ...]) -> str:
    """Expand ``= ANY(?)`` into ``IN (?, …)``; ``shape`` gives each list parameter's length."""
    if not shape:
        return sql
    parts = sql.split("?")
    out = [parts[0]]
    list_index = 0
    for i, part in enumerate(parts[1:]):
        length = shape[i] if i < len(shape) else -1
        if length >= 0:
            head = out[-1]
            cut = head.rstrip()
            if not cut.upper().endswith("= ANY("):
                raise ValueError(f"list parameter {i} must be written '= ANY(?)': {sql}")
            out[-1] = cut[: -len("= ANY(")] + "IN ("
            out.append(", ".join("?" * length) if length else "NULL")
            list_index += 1
        else:
            out.append("?")
        out.append(part)
    return "".join(out)


def _sqlite_params(params: Sequence[Any]) -> tuple[str, tuple[int, ...], list[Any]]:
    shape: list[int] = []
    flat: list[Any] = []
    has_list = False
    for p in params:
        if isinstance(p, Values):
            has_list = True
            shape.append(len(p))
            flat.extend(p)
        else:
            shape.append(-1)
            flat.append(p)
    return ("", tuple(shape) if has_list else (), flat)


def _run_sqlite(conn: sqlite3.Connection, fn: Callable[..., Op[T]], args: tuple[Any, ...]) -> T:
    gen = fn(*args)
    result: Any = None
    try:
        while True:
            stmt: Stmt = gen.send(result)
            if stmt.mode == "many":
                conn.executemany(stmt.sql, stmt.params)
                result = None
                continue
            _, shape, flat = _sqlite_params(stmt.params)
            cur = conn.execute(_sqlite_text(stmt.sql, shape), flat)
            if stmt.mode == "exec":
                result = cur.rowcount
            elif stmt.mode == "one":
                result = cur.fetchone()
                cur.close()
            else:
                result = cur.fetchall()
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def _sqlite_connect(path: str, cache_mb: int = 16) -> sqlite3.Connection:
    """A connection as every part of the server uses it; ``cache_mb`` is its page cache (the
    operating system's file cache sits behind it, so a small one mostly saves memory)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
    return conn


def _commit_sqlite(
    conn: sqlite3.Connection, batch: list[_Job[Any]]
) -> list[tuple[_Job[Any], bool, Any]]:
    """Run a batch in one transaction; if anything in it fails, run each write alone."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        results = _run_sqlite(conn, _batch_op, (batch,))
        conn.execute("COMMIT")
        return results
    except Exception as exc:
        conn.execute("ROLLBACK")
        if len(batch) == 1:
            return [(batch[0], False, exc)]
    return [_alone_sqlite(conn, job) for job in batch]


def _alone_sqlite(conn: sqlite3.Connection, job: _Job[Any]) -> tuple[_Job[Any], bool, Any]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        value = _run_sqlite(conn, job.fn, job.args)
    except Exception as exc:
        conn.execute("ROLLBACK")
        return (job, False, exc)
    conn.execute("COMMIT")
    return (job, True, value)


def _batch_op(batch: list[_Job[Any]]) -> Op[list[tuple[_Job[Any], bool, Any]]]:
    """Everything a batch does, as one query function: neighbouring calls of a query that has a
    set-wise variant (see ``store.sql.batched``) run together through that variant."""
    results: list[tuple[_Job[Any], bool, Any]] = []
    i = 0
    while i < len(batch):
        job = batch[i]
        many_fn = batch_variant(job.fn)
        if many_fn is None:
            value = yield from job.fn(*job.args)
            results.append((job, True, value))
            i += 1
            continue
        j = i + 1
        while j < len(batch) and batch[j].fn is job.fn:
            j += 1
        group = batch[i:j]
        outcomes = yield from many_fn([g.args[0] for g in group])
        results.extend(
            (g, not isinstance(o, Exception), o) for g, o in zip(group, outcomes, strict=True)
        )
        i = j
    return results
