"""A second process that commits the hottest writes, so their SQL does not share the GIL.

Python runs one thread at a time per process. With SQLite's writer as a thread of the server,
the writer's Python work (binding parameters, building results) and the event loop's (frames,
sockets) take turns; measured under a 1,000-user load the server process sat at one core while
the machine had two. Message batches and search indexing — the queries ``store.sql`` declares
portable — are therefore sent over a pipe to this process, which runs them on its own
connection exactly as the in-process writer would (one transaction a batch, durable before the
answer goes back).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from wanglai.store.sql import wire_of

log = logging.getLogger("wanglai.store")
Done = Callable[[list[tuple[Any, bool, Any]]], None]


def _serve(path: str, cache_mb: int, pipe: Connection) -> None:
    """The child: receive batches of (query, args), commit each batch, send back outcomes."""
    from wanglai.store.sqlite_run import _commit_sqlite, _Job, _sqlite_connect

    conn = _sqlite_connect(path, cache_mb)
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the parent's checkpoint thread does it
    try:
        while True:
            try:
                request = pipe.recv()
            except EOFError:
                return
            if request is None:
                return
            jobs = []
            for fn, data in request:
                wire = wire_of(fn)
                jobs.append(_Job(fn, data if wire is None else wire.unpack_args(data), None))
            outcomes = _commit_sqlite(conn, jobs)
            answers = []
            for job, ok, value in outcomes:
                wire = wire_of(job.fn) if ok else None
                answers.append((ok, value if wire is None else wire.pack_result(value)))
            pipe.send(answers)
    finally:
        conn.close()


def _pack(job: Any) -> Any:
    wire = wire_of(job.fn)
    return job.args if wire is None else wire.pack_args(job.args)


def _unpack(job: Any, ok: bool, value: Any) -> tuple[Any, bool, Any]:
    wire = wire_of(job.fn) if ok else None
    return job, ok, value if wire is None else wire.unpack_result(job.args, value)


class WriteProcess:
    """The parent's handle. ``send(batch, done)`` ships a batch to the child and returns at once
    (blocking only while ``depth`` batches are already in flight); a reader thread receives each
    batch's outcomes, in order, and calls its ``done``. So the child commits batch N+1 while
    the parent is still pickling N+2 and settling N."""

    def __init__(self, path: str, cache_mb: int = 16, depth: int = 2) -> None:
        self.path = path
        self.cache_mb = cache_mb
        self._pipe: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._room = threading.Semaphore(depth)
        self._in_flight: collections.deque[tuple[list[Any], Done]] = collections.deque()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        # spawn, not fork: the parent has threads, and a forked copy of their locks is unsafe
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(self.path, self.cache_mb, child),
            name="wanglai-writer",
            daemon=True,
        )
        process.start()
        child.close()
        self._pipe, self._process = parent, process
        self._reader = threading.Thread(
            target=self._read, args=(parent,), name="write-process-reader", daemon=True
        )
        self._reader.start()

    def send(self, batch: list[Any], done: Done) -> None:
        self._room.acquire()
        with self._lock:
            if self._pipe is None:
                self.start()
            assert self._pipe is not None
            self._in_flight.append((batch, done))
            try:
                self._pipe.send([(job.fn, _pack(job)) for job in batch])
            except (OSError, ValueError) as exc:
                log.error("write process lost (%s)", exc)  # the reader fails what is in flight

    def _read(self, pipe: Connection) -> None:
        while True:
            try:
                answers = pipe.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                batch, done = self._in_flight.popleft()
            self._room.release()
            done([_unpack(job, ok, value) for job, (ok, value) in zip(batch, answers, strict=True)])
        # The child is gone: what it committed is durable, what it did not is not; the callers
        # still waiting are told it failed (a retry with the same client id is safe).
        with self._lock:
            lost = list(self._in_flight)
            self._in_flight.clear()
            if self._pipe is pipe:
                self._discard()
        error = RuntimeError("the write process stopped; retry")
        for batch, done in lost:
            self._room.release()
            done([(job, False, error) for job in batch])

    def _discard(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        if self._process is not None:
            self._process.join(5)
        self._pipe = self._process = None

    def stop(self) -> None:
        with self._lock:
            pipe, process, reader = self._pipe, self._process, self._reader
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.send(None)
        if process is not None:
            process.join(10)
        if reader is not None:
            reader.join(10)
        with self._lock:
            self._discard()
