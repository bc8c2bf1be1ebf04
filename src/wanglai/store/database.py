"""The two database drivers behind one interface, with a group-commit writer for each.

``read(fn, *args)`` runs a query function on a snapshot. ``write(fn, *args)`` queues it for the
writer, which runs everything queued together in one transaction and commits it to disk (SQLite
WAL with ``synchronous=FULL``; a PostgreSQL commit) before any caller is answered. When one
function in a batch fails, the batch is rolled back and each function is run again in its own
transaction, so one caller's bad input never costs another caller its write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, TypeVar

from wanglai.store.sql import Op, Stmt, Values, is_portable
from wanglai.store.sqlite_run import (
    Callback as Callback,
)
from wanglai.store.sqlite_run import (
    _batch_op,
    _commit_sqlite,
    _Job,
    _run_sqlite,
    _sqlite_connect,
)

if TYPE_CHECKING:
    from wanglai.store.write_process import WriteProcess

T = TypeVar("T")
log = logging.getLogger("wanglai.store")

OpFn = Callable[..., Op[Any]]
Outcomes = list[tuple["_Job[Any]", bool, Any]]
BatchObserver = Callable[[int, float], None]


class Database:
    """What services and the store see of a database."""

    dialect = "none"

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def read(self, fn: Callable[..., Op[T]], *args: Any) -> T:
        raise NotImplementedError

    async def read_point(self, fn: Callable[..., Op[T]], *args: Any) -> T:
        """A read of a few rows by key (a session by its token, a wallet by its owner). Where a
        hop to a reader thread costs more than the lookup itself (SQLite), it runs at once on
        the calling thread; so only indexed point lookups may use it."""
        return await self.read(fn, *args)

    async def write(self, fn: Callable[..., Op[T]], *args: Any) -> T:
        """Run ``fn`` in the next group commit; returns once it is durable."""
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., Op[T]], *args: Any) -> asyncio.Future[T]:
        """Queue ``fn`` for the next group commit without waiting: the future resolves once it
        is durable. Calls are committed in the order they were submitted."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.enqueue(_Job(fn, args, future))
        return future

    def submit_callback(self, callback: Callback, fn: Callable[..., Op[Any]], *args: Any) -> None:
        """Like :meth:`submit`, but call ``callback(ok, value)`` on the loop when settled: no
        future and no scheduling hop, for the hottest path (WebSocket sends)."""
        self.enqueue(_Job(fn, args, None, callback))

    def enqueue(self, job: _Job[Any]) -> None:
        raise NotImplementedError

    def on_batch(self, observer: BatchObserver) -> None:
        """Call ``observer(size, seconds)`` after each committed batch (for metrics)."""
        self._observers.append(observer)

    def __init__(self) -> None:
        self._observers: list[BatchObserver] = []

    def _observe(self, size: int, seconds: float) -> None:
        for observer in self._observers:
            observer(size, seconds)


# ---------------------------------------------------------------- SQLite


class _Lane:
    """A queue of writes and the thread that commits them in batches.

    ``submit`` is called on the event loop; everything submitted during one turn of the loop is
    handed to the thread with one queue operation. The thread takes what has accumulated (up to
    ``max_batch``), calls ``commit(batch)`` and settles the callers' futures on the loop.
    """

    def __init__(
        self,
        name: str,
        commit: Callable[[list[_Job[Any]]], list[tuple[_Job[Any], bool, Any]]] | None,
        observe: BatchObserver,
        max_batch: int,
        finish: Callable[[], None] = lambda: None,
        ship: Callable[[list[_Job[Any]], Callable[[Outcomes], None]], None] | None = None,
    ) -> None:
        self.name = name
        self.commit = commit
        self.ship = ship
        """Instead of ``commit``: hand the batch on and return; the callback settles it."""
        self.observe = observe
        self.max_batch = max_batch
        self.finish = finish
        self._queue: queue.SimpleQueue[list[_Job[Any]] | None] = queue.SimpleQueue()
        self._outbox: list[_Job[Any]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def enqueue(self, job: _Job[Any]) -> None:
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._handoff)
        self._outbox.append(job)

    def _handoff(self) -> None:
        jobs, self._outbox = self._outbox, []
        if jobs:
            self._queue.put(jobs)

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._handoff()
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._thread = None

    def _run(self) -> None:
        assert self._loop is not None
        stop = False
        try:
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                batch: list[_Job[Any]] = list(first)
                while len(batch) < self.max_batch:
                    try:
                        jobs = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if jobs is None:
                        stop = True
                        break
                    batch.extend(jobs)
                started = time.perf_counter()
                if self.ship is not None:
                    self.ship(batch, partial(self._done, started))
                    continue
                assert self.commit is not None
                self._done(started, self.commit(batch))
        finally:
            self.finish()

    def _done(self, started: float, outcomes: Outcomes) -> None:
        assert self._loop is not None
        elapsed = time.perf_counter() - started
        self._loop.call_soon_threadsafe(self.observe, len(outcomes), elapsed)
        self._loop.call_soon_threadsafe(_settle, outcomes)


class SqliteDatabase(Database):
    """SQLite in WAL mode: group-commit writers, a small pool of reader threads, and a thread
    for checkpoints.

    With ``write_process`` the hottest writes — queries declared portable in ``store.sql``
    (message batches, search indexing) — are committed by a second process with its own
    connection, so their SQL and Python do not share the server's GIL; everything else is
    committed by a thread in this process. SQLite serialises the two writers with its lock.
    """

    dialect = "sqlite"

    def __init__(
        self,
        path: str,
        max_batch: int = 2000,
        readers: int = 2,
        checkpoint_s: float = 0.5,
        write_process: bool = False,
        cache_mb: int = 16,
    ) -> None:
        super().__init__()
        if cache_mb < 1:
            raise ValueError(f"the SQLite page cache is at least 1 MiB, not {cache_mb}")
        self.path = path
        self.cache_mb = cache_mb
        self.checkpoint_s = checkpoint_s
        self.max_batch = max_batch
        self._stopping = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-read")
        self._lane: _Lane | None = None
        self._remote: _Lane | None = None
        self._worker: WriteProcess | None = None
        self.write_process = write_process

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        writer = _sqlite_connect(self.path, self.cache_mb)
        # Checkpoints copy the WAL into the database file and fsync it; done inline they would
        # stall every Nth commit, so a thread of their own does them instead (PASSIVE: never
        # blocks the writer or readers).
        writer.execute("PRAGMA wal_autocheckpoint=0")
        self._lane = _Lane(
            "sqlite-writer",
            lambda batch: _commit_sqlite(writer, batch),
            self._observe,
            self.max_batch,
            writer.close,
        )
        self._lane.start(loop)
        if self.write_process:
            from wanglai.store.write_process import WriteProcess

            worker = WriteProcess(self.path, self.cache_mb)
            await loop.run_in_executor(None, worker.start)
            self._worker = worker
            self._remote = _Lane(
                "sqlite-write-process",
                None,
                self._observe,
                self.max_batch,
                worker.stop,
                ship=worker.send,
            )
            self._remote.start(loop)
        self._stopping.clear()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for lane in (self._remote, self._lane):
            if lane is not None:
                await lane.stop()
        self._remote = self._lane = self._worker = None
        if self._checkpointer is not None:
            self._stopping.set()
            await loop.run_in_executor(None, self._checkpointer.join)
            self._checkpointer = None
        self._readers.shutdown(wait=True)

    def _checkpoint_loop(self) -> None:
        conn = _sqlite_connect(self.path, 1)  # it copies the WAL into the file, reads nothing
        try:
            while not self._stopping.wait(self.checkpoint_s):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            log.exception("checkpoint failed")
        finally:
            conn.close()

    async def read(self, fn: Callable[..., Op[T]], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_sync, fn, args)

    async def read_point(self, fn: Callable[..., Op[T]], *args: Any) -> T:
        return self._read_sync(fn, args)

    def _read_sync(self, fn: Callable[..., Op[T]], args: tuple[Any, ...]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _sqlite_connect(self.path, self.cache_mb)
            self._local.conn = conn
        conn.execute("BEGIN")
        try:
            return _run_sqlite(conn, fn, args)
        finally:
            conn.execute("COMMIT")

    def enqueue(self, job: _Job[Any]) -> None:
        if self._lane is None:
            raise RuntimeError("database is not started")
        if self._remote is not None and is_portable(job.fn):
            self._remote.enqueue(job)
        else:
            self._lane.enqueue(job)


def _settle(outcomes: list[tuple[_Job[Any], bool, Any]]) -> None:
    for job, ok, value in outcomes:
        future = job.future
        if future is None:
            assert job.callback is not None
            try:
                job.callback(ok, value)
            except Exception:
                log.exception("write callback failed")
        elif future.done():
            continue
        elif ok:
            future.set_result(value)
        else:
            future.set_exception(value)


# ---------------------------------------------------------------- PostgreSQL

_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=4096)
def _pg_text(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


async def _run_pg(conn: Any, fn: Callable[..., Op[T]], args: tuple[Any, ...]) -> T:
    gen = fn(*args)
    result: Any = None
    try:
        while True:
            stmt: Stmt = gen.send(result)
            text = _pg_text(stmt.pg_sql or stmt.sql)
            raw = stmt.pg_params if stmt.pg_params is not None else stmt.params
            params = [list(p) if isinstance(p, Values) else p for p in raw]
            if stmt.mode == "many":
                await conn.executemany(text, stmt.params)
                result = None
            elif stmt.mode == "exec":
                status = await conn.execute(text, *params)
                tail = status.rsplit(" ", 1)[-1]
                result = int(tail) if tail.isdigit() else 0
            elif stmt.mode == "one":
                result = await conn.fetchrow(text, *params)
            else:
                result = await conn.fetch(text, *params)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


class PostgresDatabase(Database):
    """asyncpg pool; writers take batches from one queue, each batch one transaction."""

    dialect = "postgresql"

    def __init__(self, dsn: str, max_batch: int = 500, writers: int = 1, pool_size: int = 8):
        super().__init__()
        self.dsn = dsn
        self.max_batch = max_batch
        self.writers = writers
        self.pool_size = pool_size
        self._pool: Any = None
        self._queue: asyncio.Queue[_Job[Any] | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        import asyncpg

        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.pool_size + self.writers
        )
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"pg-writer-{i}") for i in range(self.writers)
        ]

    async def close(self) -> None:
        for _ in self._tasks:
            await self._queue.put(None)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def read(self, fn: Callable[..., Op[T]], *args: Any) -> T:
        async with self._pool.acquire() as conn:
            return await _run_pg(conn, fn, args)

    def enqueue(self, job: _Job[Any]) -> None:
        self._queue.put_nowait(job)

    async def _writer(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch: list[_Job[Any]] = [first]
            stop = False
            while len(batch) < self.max_batch and not self._queue.empty():
                job = self._queue.get_nowait()
                if job is None:
                    stop = True
                    break
                batch.append(job)
            started = time.perf_counter()
            try:
                async with self._pool.acquire() as conn:
                    outcomes = await self._commit_batch(conn, batch)
            except Exception as exc:  # connection lost: every caller in the batch hears it
                outcomes = [(job, False, exc) for job in batch]
            self._observe(len(batch), time.perf_counter() - started)
            _settle(outcomes)
            if stop:
                return

    async def _commit_batch(
        self, conn: Any, batch: list[_Job[Any]]
    ) -> list[tuple[_Job[Any], bool, Any]]:
        try:
            async with conn.transaction():
                return await _run_pg(conn, _batch_op, (batch,))
        except Exception:
            pass
        outcomes: list[tuple[_Job[Any], bool, Any]] = []
        for job in batch:
            for attempt in range(_PG_ATTEMPTS):
                try:
                    async with conn.transaction():
                        value = await _run_pg(conn, job.fn, job.args)
                    outcomes.append((job, True, value))
                    break
                except Exception as exc:
                    if attempt + 1 < _PG_ATTEMPTS and _retryable(exc):
                        # The other writer (or process) holds rows this job needs in another
                        # order, or made the row this job was about to make: the transaction
                        # was rolled back, so running it again is safe and sees their commit.
                        await asyncio.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
                        continue
                    outcomes.append((job, False, exc))
                    break
        return outcomes


_PG_ATTEMPTS = 5
_RETRYABLE = {"40P01", "40001", "23505"}
"""deadlock_detected, serialization_failure, unique_violation."""


def _retryable(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) in _RETRYABLE


def connect(url: str, write_process: bool = False, sqlite_cache_mb: int = 16) -> Database:
    """Build the driver for a ``sqlite:///path`` or ``postgresql://…`` URL."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        return SqliteDatabase(path, write_process=write_process, cache_mb=sqlite_cache_mb)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://…")
