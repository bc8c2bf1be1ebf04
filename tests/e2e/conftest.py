"""A real ``wanglai serve`` process per test, on a free port and a temporary data directory.

The database is SQLite under the data directory unless ``WANGLAI_E2E_DB=postgres`` is set, in
which case each test gets a fresh database on the test PostgreSQL cluster (``pg_url``); a test
or a conftest may also override the ``e2e_database_url`` fixture.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import pg_admin, with_database
from wanglai.client import Client

READY_WITHIN_S = 30.0
STOP_WITHIN_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process: ``restart()`` and ``kill()`` keep the port and the data directory."""

    def __init__(self, data_dir: Path, database_url: str = "", heartbeat_s: int = 0) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.env = dict(os.environ)
        for key in [k for k in self.env if k.startswith("WANGLAI_")]:
            del self.env[key]
        self.env.update(
            WANGLAI_DATA_DIR=str(data_dir),
            WANGLAI_OTP_SENDS_PER_ADDRESS="1000",
            WANGLAI_OTP_SENDS_PER_PREFIX="1000",
            WANGLAI_OTP_SENDS_PER_NUMBER="1000",
            WANGLAI_CODE_PEPPER="e2e-pepper",
        )
        if database_url:
            self.env["WANGLAI_DATABASE_URL"] = database_url
        if heartbeat_s:
            self.env["WANGLAI_HEARTBEAT_S"] = str(heartbeat_s)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0
        self.last_exit: int | None = None
        """The exit status of the last process stopped (-9 after a kill)."""

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``wanglai admin ARGS`` against this server's database."""
        return subprocess.run(
            [sys.executable, "-m", "wanglai", "admin", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def credit(self, phone: str, fen: int, reason: str = "test") -> None:
        """``wanglai admin wallet credit``: money into a wallet, as an operator would."""
        done = self.admin("wallet", "credit", phone, str(fen), "--reason", reason)
        assert done.returncode == 0, done.stdout + done.stderr

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wanglai", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"server not ready within {READY_WITHIN_S}s:\n{self.log()}")

    def stop(self, hard: bool = False) -> int | None:
        """SIGTERM (graceful) or SIGKILL; returns the exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            try:
                proc.wait(STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_WITHIN_S)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.last_exit = proc.returncode
        return proc.returncode

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        self.stop(hard=True)

    def restart(self, hard: bool = False) -> None:
        self.stop(hard=hard)
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def code_for(self, phone: str) -> str:
        """The newest login code the console SMS channel wrote for ``phone`` (E.164)."""
        sms = self.data_dir / "sms.log"
        text = sms.read_text(encoding="utf-8") if sms.exists() else ""
        codes = re.findall(rf"to={re.escape(phone)} Your Wanglai code is (\d+)", text)
        if not codes:
            raise AssertionError(f"no code was sent to {phone}")
        return codes[-1]


def database_for(request: pytest.FixtureRequest, backend: str) -> Iterator[str]:
    """ "" (SQLite under the data directory) or a fresh PostgreSQL database, dropped after."""
    if backend != "postgres":
        yield ""
        return
    cluster: str = request.getfixturevalue("pg_url")
    name = f"e2e_{secrets.token_hex(6)}"
    pg_admin(cluster, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(cluster, name)
    finally:
        pg_admin(cluster, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def e2e_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLite, or PostgreSQL when ``WANGLAI_E2E_DB=postgres``."""
    yield from database_for(request, os.environ.get("WANGLAI_E2E_DB", "sqlite"))


@pytest.fixture
def server(tmp_path: Path, e2e_database_url: str) -> Iterator[Server]:
    srv = Server(tmp_path / "data", e2e_database_url)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fast_heartbeat_server(tmp_path: Path, e2e_database_url: str) -> Iterator[Server]:
    """A server that asks for a ping every second, lets clients stretch that to two, and drops
    sockets silent for three."""
    srv = Server(tmp_path / "data", e2e_database_url, heartbeat_s=1)
    srv.env["WANGLAI_HEARTBEAT_MAX_S"] = "2"
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class Users:
    """Logs SDK clients in against a server; closes them all at teardown."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.clients: list[Client] = []
        self._next = 13900139000 + secrets.randbelow(1000) * 100

    def phone(self) -> str:
        self._next += 1
        return f"+86{self._next}"

    async def login(self, phone: str | None = None, device: str = "e2e", **kw: object) -> Client:
        number = phone or self.phone()
        client = Client(self.server.base_url, **kw)  # type: ignore[arg-type]
        self.clients.append(client)
        await client.request_code(number)
        await client.login(number, self.server.code_for(number), device)
        return client

    async def open_to_anyone(self, phone: str | None = None, device: str = "e2e") -> Client:
        """A logged-in user who accepts direct messages from strangers."""
        client = await self.login(phone, device)
        await client.update_me(dm_policy="anyone")
        return client

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()


@pytest.fixture
async def users(server: Server) -> AsyncIterator[Users]:
    pool = Users(server)
    try:
        yield pool
    finally:
        await pool.close()
