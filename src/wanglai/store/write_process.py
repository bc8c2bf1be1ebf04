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

import contextlib
import logging
import multiprocessing
import threading
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("wanglai.store")


def _serve(path: str, pipe: Connection) -> None:
    """The child: receive batches of (query, args), commit each batch, send back outcomes."""
    from wanglai.store.database import _commit_sqlite, _Job, _sqlite_connect

    conn = _sqlite_connect(path)
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the parent's checkpoint thread does it
    try:
        while True:
            try:
                request = pipe.recv()
            except EOFError:
                return
            if request is None:
                return
            jobs = [_Job(fn, args, None) for fn, args in request]  # type: ignore[arg-type]
            outcomes = _commit_sqlite(conn, jobs)
            pipe.send([(ok, value) for _job, ok, value in outcomes])
    finally:
        conn.close()


class WriteProcess:
    """The parent's handle: ``commit(batch)`` runs a batch in the child and waits (called from
    a writer thread, so the wait releases the GIL)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pipe: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        # spawn, not fork: the parent has threads, and a forked copy of their locks is unsafe
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_serve, args=(self.path, child), name="wanglai-writer", daemon=True
        )
        process.start()
        child.close()
        self._pipe, self._process = parent, process

    def commit(self, batch: list[Any]) -> list[tuple[Any, bool, Any]]:
        with self._lock:
            if self._pipe is None:
                self.start()
            assert self._pipe is not None
            try:
                self._pipe.send([(job.fn, job.args) for job in batch])
                answers = self._pipe.recv()
            except (EOFError, OSError) as exc:
                # The child died mid-batch: what it committed is durable, what it did not is
                # not; the callers are told it failed (a retry with the same client id is safe).
                log.error("write process lost (%s); starting a new one", exc)
                self._discard()
                error = RuntimeError("the write process stopped; retry")
                return [(job, False, error) for job in batch]
        return [(job, ok, value) for job, (ok, value) in zip(batch, answers, strict=True)]

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
            if self._pipe is not None:
                with contextlib.suppress(OSError):
                    self._pipe.send(None)
            if self._process is not None:
                self._process.join(10)
            self._discard()
