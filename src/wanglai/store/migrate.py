"""Bring a database to the newest schema with Alembic; skipped cheaply when it is already there."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

MIGRATIONS = Path(__file__).parent / "migrations"


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


def upgrade(url: str, known_head: str | None = None) -> None:
    """Apply every pending migration to the database at ``url``.

    For SQLite the current revision is read first with the stdlib driver, so a server whose
    database is up to date starts without importing Alembic (``known_head`` is the newest
    revision id, checked by the tests against the version files).
    """
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        if known_head is not None and _sqlite_current(url) == known_head:
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
