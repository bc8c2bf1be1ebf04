"""Bring a database to the newest schema with Alembic; skipped cheaply when it is already there."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0006_interworking"
"""The newest revision (checked by the tests against the version files): a database at it
needs no migration, which is found out without importing Alembic."""


def _config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision id, read from the version files without importing Alembic."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config()).get_current_head())


def _sqlalchemy_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_current(url: str) -> str | None:
    path = url[len("sqlite:///") :]
    if not Path(path).exists():
        return None
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None if row is None else str(row[0])


def _postgres_current(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return None if row is None else str(row[0])


def current(url: str) -> str | None:
    """The database's revision, read with the plain driver (``None``: not migrated yet)."""
    if url.startswith("sqlite:///"):
        return _sqlite_current(url)
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres_current(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://…")


def upgrade(url: str, known_head: str | None = None) -> None:
    """Apply every pending migration to the database at ``url``.

    The current revision is read first with the plain driver, so a server whose database is
    up to date starts without importing Alembic (``known_head`` is the newest revision id,
    checked by the tests against the version files).
    """
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    if known_head is not None and current(url) == known_head:
        return
    from alembic import command
    from sqlalchemy import create_engine

    engine = create_engine(_sqlalchemy_url(url))
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


class Apart:
    """A migration running in a child process (or nothing to run); :meth:`wait` for it."""

    def __init__(self, url: str, process: subprocess.Popen[str] | None) -> None:
        self.url = url
        self.process = process

    def wait(self) -> None:
        """Return once the database is at the head; ``RuntimeError`` with the child's error
        output if the migration failed."""
        if self.process is None:
            return
        _, err = self.process.communicate()
        if self.process.returncode != 0:
            lines = err.strip().splitlines()
            last = lines[-1] if lines else f"exit status {self.process.returncode}"
            raise RuntimeError(f"migrating {self.url} failed: {last}")


def begin_apart(url: str, known_head: str | None = HEAD) -> Apart:
    """Start :func:`upgrade` in a short-lived child process if there is anything to do.

    Alembic and SQLAlchemy take ~26 MB of a process once imported and the server never needs
    them again, so a server that has to migrate lets a child do it and does not keep them. The
    child runs while the server imports and builds itself; ``wait`` before using the database.
    """
    if known_head is not None and current(url) == known_head:
        return Apart(url, None)
    code = "import sys; from wanglai.store.migrate import upgrade; upgrade(sys.argv[1])"
    process = subprocess.Popen(
        [sys.executable, "-c", code, url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Apart(url, process)
