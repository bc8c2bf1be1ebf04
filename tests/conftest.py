"""Shared pytest fixtures: database URLs for every backend we support.

`db_url` is parametrized over SQLite and PostgreSQL, so any test that takes it
runs against both. PostgreSQL comes from ``WANGLAI_TEST_PG_URL`` (set by
``scripts/test.sh``) or, when that is unset, from a throwaway cluster that
this file starts itself via ``scripts/pg.sh`` (so plain ``pytest`` works).

Kept generic on purpose: nothing from ``wanglai`` is imported here.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_SCRIPT = REPO_ROOT / "scripts" / "pg.sh"
PG_URL_ENV = "WANGLAI_TEST_PG_URL"

T = TypeVar("T")


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion in a private thread and event loop.

    A separate thread keeps us clear of whatever event loop pytest-asyncio has
    installed (or is running) in the main thread.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        async def main() -> T:
            return await fn()

        try:
            result.append(asyncio.run(main()))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="conftest-run-async")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def with_database(url: str, dbname: str) -> str:
    """Return ``url`` pointing at database ``dbname`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def pg_admin(url: str, sql: str) -> None:
    """Execute one statement on the cluster's ``postgres`` database."""
    import asyncpg  # imported lazily: SQLite-only runs don't need it

    async def go() -> None:
        conn: Any = await asyncpg.connect(with_database(url, "postgres"), timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(go)


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL database (``.../wanglai_test``) on a test cluster."""
    env_url = os.environ.get(PG_URL_ENV)
    if env_url:
        yield env_url
        return

    state_dir = tmp_path_factory.mktemp("pg")
    proc = subprocess.run(
        ["bash", str(PG_SCRIPT), "start", str(state_dir)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    url = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        if proc.returncode != 0 or not url:
            raise RuntimeError(
                f"scripts/pg.sh start failed (exit {proc.returncode}); see stderr above"
            )
        yield url
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", str(state_dir)], check=False)


@pytest.fixture(params=["sqlite", "postgres"], ids=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database, once per backend.

    sqlite:   ``sqlite:///<tmp_path>/wanglai.db``
    postgres: a new database ``t_<hex>`` on the test cluster, dropped afterwards.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/wanglai.db"
        return

    cluster_url: str = request.getfixturevalue("pg_url")
    dbname = f"t_{secrets.token_hex(8)}"
    pg_admin(cluster_url, f'CREATE DATABASE "{dbname}"')
    try:
        yield with_database(cluster_url, dbname)
    finally:
        pg_admin(cluster_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture
def smsc(tmp_path: Path) -> Iterator[Any]:
    """The test SMSC (``tests/smsc``: the npm ``smpp`` package, not ours), stopped after."""
    from .smsc.harness import TestSmsc

    server = TestSmsc(tmp_path / "smsc").start()
    try:
        yield server
    finally:
        server.stop()
