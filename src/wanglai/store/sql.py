"""Queries as plain generators: a store function yields statements and gets their results back.

Every query lives in ``store/``. A query function is written once, with ``?`` placeholders and
``= ANY(?)`` for lists, and runs on both SQLite and PostgreSQL: the driver (``store/database.py``)
executes each yielded :class:`Stmt` and sends the result back into the generator, the way a
sans-I/O protocol hands bytes to whoever does the I/O. Queries compose with ``yield from``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Row = Sequence[Any]
Mode = Literal["exec", "one", "all", "many"]
Op = Generator["Stmt", Any, T]


class Values(list[Any]):
    """A list parameter, written in SQL as ``col = ANY(?)`` (SQLite gets ``col IN (?, ?, …)``)."""


@dataclass(slots=True, frozen=True)
class Stmt:
    mode: Mode
    sql: str
    params: Sequence[Any]
    pg_sql: str | None = None
    """Text to use on PostgreSQL where the two dialects cannot share one."""
    pg_params: Sequence[Any] | None = None
    """Parameters for ``pg_sql`` when they differ too (arrays where SQLite takes rows)."""


def execute(sql: str, *params: Any, pg_sql: str | None = None) -> Op[int]:
    """Run a statement; returns the number of rows it changed."""
    count = yield Stmt("exec", sql, params, pg_sql)
    return int(count)


def one(sql: str, *params: Any, pg_sql: str | None = None) -> Op[Row | None]:
    """Run a query; returns its first row or ``None``."""
    row = yield Stmt("one", sql, params, pg_sql)
    return row  # type: ignore[no-any-return]


def all_rows(
    sql: str, *params: Any, pg_sql: str | None = None, pg_params: Sequence[Any] | None = None
) -> Op[list[Row]]:
    """Run a query; returns every row."""
    rows = yield Stmt("all", sql, params, pg_sql, pg_params)
    return list(rows)


def many(sql: str, rows: Sequence[Sequence[Any]], pg_sql: str | None = None) -> Op[None]:
    """Run one statement for each parameter row (``executemany``)."""
    if rows:
        yield Stmt("many", sql, rows, pg_sql)


def scalar(sql: str, *params: Any, pg_sql: str | None = None) -> Op[Any]:
    row = yield from one(sql, *params, pg_sql=pg_sql)
    return None if row is None else row[0]


BatchFn = Callable[[list[Any]], Op[list[Any]]]
_BATCHES: dict[Callable[..., Any], BatchFn] = {}
_PORTABLE: set[Callable[..., Any]] = set()


@dataclass(frozen=True)
class Wire:
    """How a portable query's arguments and result cross the pipe to the write process in a
    smaller form than themselves (plain tuples pickle several times faster than dataclasses,
    and a result need not carry back what the caller sent). ``unpack_result`` gets the
    caller's own arguments with the packed result."""

    pack_args: Callable[[tuple[Any, ...]], Any]
    unpack_args: Callable[[Any], tuple[Any, ...]]
    pack_result: Callable[[Any], Any]
    unpack_result: Callable[[tuple[Any, ...], Any], Any]


_WIRES: dict[Callable[..., Any], Wire] = {}


def portable(fn: Callable[..., Any], wire: Wire | None = None) -> None:
    """Declare that ``fn`` takes only plain, picklable arguments and refers to nothing of the
    process that calls it, so another process may run it (see ``store/write_process.py``);
    ``wire`` packs its arguments and results for the trip."""
    _PORTABLE.add(fn)
    if wire is not None:
        _WIRES[fn] = wire


def is_portable(fn: Callable[..., Any]) -> bool:
    return fn in _PORTABLE


def wire_of(fn: Callable[..., Any]) -> Wire | None:
    return _WIRES.get(fn)


def batched(single: Callable[[Any], Op[Any]], many_fn: BatchFn, wire: Wire | None = None) -> None:
    """Declare that the one-argument query ``single`` has a set-wise variant ``many_fn``.

    When the group-commit writer finds several queued calls of ``single`` next to each other,
    it runs ``many_fn`` once with all their arguments instead. ``many_fn`` returns one outcome
    per argument, in order: a result, or the exception that refused that one item.
    """
    _BATCHES[single] = many_fn
    portable(single, wire)


def batch_variant(fn: Callable[..., Any]) -> BatchFn | None:
    return _BATCHES.get(fn)
