"""The peers of ``compare.py``: Synapse and ejabberd, each installed and run in its own directory.

Nothing of theirs is committed: everything lives under the peers directory (default
``bench/peers/``, gitignored). Synapse gets its own venv (``pip install matrix-synapse``), a
generated config on SQLite plus an override file (loopback listener, rate limits raised, presence
off); as ``synapse-pg`` the same venv (plus ``psycopg2-binary``) runs on a throwaway PostgreSQL
cluster of its own (``initdb`` in ``synapse-pg/pg``, a unix socket and 127.0.0.1 only, stopped
with Synapse). ejabberd comes from Debian's package and runs as its own node with its own
config, spool (mnesia) and logs, never as the system service. All listen on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from server import free_port, raise_nofile

HUGE = {"per_second": 1_000_000, "burst_count": 1_000_000}
"""A rate limit that never bites."""


def _wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not answering after {timeout_s} s")


def pg_bin() -> Path:
    """The directory of ``initdb``/``pg_ctl``: on the PATH, else Debian's newest."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    dirs = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
        reverse=True,
    )
    for d in dirs:
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    raise RuntimeError("initdb/pg_ctl not found; install PostgreSQL (apt-get install postgresql)")


class Postgres:
    """A throwaway PostgreSQL cluster in ``root`` (like ``scripts/pg.sh``): ``initdb`` with trust
    auth, a unix socket in ``root`` and TCP on 127.0.0.1 only, PostgreSQL's default durability
    (fsync, synchronous_commit and full_page_writes on). PostgreSQL refuses to run as root, so as
    root the cluster runs as the ``postgres`` system user."""

    user = "postgres"
    db = "synapse"
    SETTINGS = (
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_level",
        "shared_buffers",
        "max_connections",
    )

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = 0
        self.bin = Path()

    def install(self) -> None:
        """PostgreSQL from Debian's package when no ``initdb`` is found (as ``scripts/pg.sh``)."""
        try:
            pg_bin()
        except RuntimeError:
            if os.geteuid() != 0:
                raise
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env)

    def _as_pg(self, *cmd: str | Path) -> list[str]:
        args = [str(c) for c in cmd]
        return ["runuser", "-u", self.user, "--", *args] if os.geteuid() == 0 else args

    def _run(self, *cmd: str | Path) -> str:
        out = subprocess.run(
            self._as_pg(*cmd), cwd="/", capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd[:2]))}: {out.stdout}{out.stderr}")
        return out.stdout

    def start(self) -> None:
        self.bin = pg_bin()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", self.user], check=True)
            shutil.chown(self.root, self.user, self.user)
        self.root.chmod(0o700)
        self._run(
            self.bin / "initdb",
            "-D",
            self.data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
        self.port = free_port()
        conf = (
            "# written by bench/peers.py\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.root}'\n"
            "fsync = on\n"
            "synchronous_commit = on\n"
            "full_page_writes = on\n"
        )
        (self.data / "postgresql.auto.conf").write_text(conf)
        log = self.root / "server.log"
        self._run(self.bin / "pg_ctl", "-D", self.data, "-l", log, "-w", "-t", "60", "start")
        self._run(
            self.bin / "createdb",
            "-h",
            self.root,
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--template=template0",
            self.db,
        )

    @property
    def pid(self) -> int:
        """The postmaster's; the server processes are its children."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def show(self) -> dict[str, str]:
        sql = "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)"
        names = "ARRAY[" + ",".join(f"'{n}'" for n in self.SETTINGS) + "]"
        rows = self._run(
            self.bin / "psql",
            "-h",
            self.root,
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            self.db,
            "-At",
            "-F",
            "\t",
            "-c",
            sql % names,
        )
        found = {}
        for row in rows.splitlines():
            name, setting, unit = [*row.split("\t"), "", ""][:3]
            found[name] = f"{setting} ({unit})" if unit else setting
        return found

    def version(self) -> str:
        return self._run(self.bin / "postgres", "--version").strip()

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        subprocess.run(
            self._as_pg(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"),
            cwd="/",
            capture_output=True,
            check=False,
        )


class Synapse:
    """``matrix-synapse`` in ``DIR/synapse/venv``, a fresh data dir per ``configure()``; with
    ``postgres`` (``synapse-pg``) a fresh PostgreSQL cluster per ``configure()`` too."""

    def __init__(self, peers_dir: Path, postgres: bool = False) -> None:
        self.name = "synapse-pg" if postgres else "synapse"
        self.venv = peers_dir / "synapse" / "venv"
        self.python = self.venv / "bin" / "python"
        self.root = peers_dir / self.name
        self.data = self.root / "data"
        self.pg = Postgres(self.root / "pg") if postgres else None
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.secret = ""

    def install(self) -> None:
        pip = str(self.venv / "bin" / "pip")
        if not (self.python.exists() and self._has("synapse")):
            self.venv.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["python3", "-m", "venv", str(self.venv)], check=True)
            subprocess.run([pip, "install", "-q", "matrix-synapse"], check=True)
        if self.pg is not None:
            self.pg.install()
            if not self._has("psycopg2"):
                subprocess.run([pip, "install", "-q", "psycopg2-binary"], check=True)

    def _has(self, module: str) -> bool:
        probe = [str(self.python), "-c", f"import {module}"]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    def version(self) -> str:
        probe = [str(self.python), "-c", "import synapse; print(synapse.__version__)"]
        return subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()

    def configure(self) -> dict[str, Any]:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        self.port = free_port()
        main = self.data / "homeserver.yaml"
        subprocess.run(
            [
                str(self.python),
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                "localhost",
                "--config-path",
                str(main),
                "--generate-config",
                "--report-stats=no",
                "--data-directory",
                str(self.data),
            ],
            cwd=self.data,
            check=True,
            capture_output=True,
        )
        for line in main.read_text().splitlines():
            if line.startswith("registration_shared_secret:"):
                self.secret = json.loads(line.split(":", 1)[1].strip())
        # Log warnings only (the generated config logs every request at INFO).
        log_config = self.data / "localhost.log.config"
        log_config.write_text(log_config.read_text().replace("level: INFO", "level: WARNING"))
        overrides: dict[str, Any] = {
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "presence": {"enabled": False},
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "report_stats": False,
            "enable_metrics": False,
            "bcrypt_rounds": 4,
            "rc_message": HUGE,
            "rc_registration": HUGE,
            "rc_registration_token_validity": HUGE,
            "rc_login": {"address": HUGE, "account": HUGE, "failed_attempts": HUGE},
            "rc_admin_redaction": HUGE,
            "rc_joins": {"local": HUGE, "remote": HUGE},
            "rc_joins_per_room": HUGE,
            "rc_invites": {"per_room": HUGE, "per_user": HUGE, "per_issuer": HUGE},
            "rc_3pid_validation": HUGE,
            "rc_room_creation": HUGE,
            "rc_key_requests": HUGE,
            "rc_delayed_event_mgmt": HUGE,
            "rc_presence": {"per_user": HUGE},
        }
        config: dict[str, Any] = {
            "database": "SQLite (Synapse's own file, its default durability)",
        }
        if self.pg is not None:
            self.pg.start()
            # Synapse's documented example pool (cp_min 5, cp_max 10), over the unix socket.
            overrides["database"] = {
                "name": "psycopg2",
                "args": {
                    "user": "postgres",
                    "dbname": self.pg.db,
                    "host": str(self.pg.root),
                    "port": self.pg.port,
                    "cp_min": 5,
                    "cp_max": 10,
                },
            }
            config = {
                "database": f"PostgreSQL, a throwaway cluster of its own ({self.pg.version()}):"
                " initdb -A trust -E UTF8 --locale=C, database created with --encoding=UTF8"
                " --locale=C --template=template0; Synapse through psycopg2 (psycopg2-binary)"
                " over the unix socket, pool cp_min 5 / cp_max 10",
                "postgres_version": self.pg.version(),
                "postgres_settings": self.pg.show(),
                "durability": "PostgreSQL's defaults: fsync on, synchronous_commit on,"
                " full_page_writes on (a PUT is answered after its commit is flushed)",
                "rss": "peak RSS is the sum of the VmHWM of Synapse's process and of every"
                " process of the PostgreSQL cluster (postmaster and its children, read at the"
                " end of the run); shared memory (shared_buffers) touched by several postgres"
                " processes is counted once per process, so this overstates (idle after"
                " start-up: Synapse 121 MB, the cluster's 16 processes 236 MB of RSS but 50 MB"
                " of Pss); pss_mb is the peak of the Pss sum, sampled every 2 s while measuring,"
                " which counts shared pages once",
                "cpu": "server CPU is Synapse's process plus the PostgreSQL cluster's processes",
            }
        # JSON is YAML: Synapse merges this file over the generated one.
        (self.data / "bench.yaml").write_text(json.dumps(overrides, indent=2))
        return {
            **config,
            "listener": f"127.0.0.1:{self.port}, client API only, HTTP",
            "presence": False,
            "rate_limits": "all rc_* raised to 1,000,000/s",
            "log_level": "WARNING",
            "bcrypt_rounds": 4,
            "users": "shared-secret registration (/_synapse/admin/v1/register, HMAC)",
        }

    def start(self) -> int:
        log = self.data / "stdout.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(self.python),
                    "-m",
                    "synapse.app.homeserver",
                    "-c",
                    str(self.data / "homeserver.yaml"),
                    "-c",
                    str(self.data / "bench.yaml"),
                ],
                cwd=self.data,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_http(f"{self.base}/_matrix/client/versions", 120, self.proc, log)
        return self.proc.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def also_pids(self) -> list[int]:
        """More server processes to measure: the PostgreSQL postmaster (its children with it)."""
        return [self.pg.pid] if self.pg is not None else []

    def log_summary(self, top: int = 8) -> dict[str, Any]:
        """Synapse's log (level WARNING) after start-up: entries per level, and the most
        frequent kinds (logger and the start of the message, request ids left out)."""
        log = self.data / "homeserver.log"
        text = log.read_text(errors="replace").splitlines() if log.exists() else []
        levels: dict[str, int] = {}
        kinds: dict[str, int] = {}
        for line in text:
            parts = line.split(" - ", 5)
            if len(parts) < 6 or parts[4] == "main":
                continue  # a traceback's continuation, or start-up
            levels[parts[3]] = levels.get(parts[3], 0) + 1
            message = re.sub(r" at 0x[0-9a-f]+", "", re.sub(r"-[0-9a-f]+\}", "}", parts[5]))
            kind = f"{parts[3]} {parts[1]}: {message[:90]}"
            kinds[kind] = kinds.get(kind, 0) + 1
        frequent = sorted(kinds.items(), key=lambda kv: -kv[1])[:top]
        return {"levels": levels, "kinds": dict(frequent)}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.pg is not None:
            self.pg.stop()


EJABBERD_YML = """\
loglevel: warning
log_rotate_count: 0
hosts:
  - localhost
auth_method: internal
auth_password_format: plain
listen:
  -
    port: {c2s_port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 4096
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls: false
  -
    port: {http_port}
    ip: "127.0.0.1"
    module: ejabberd_http
    backlog: 4096
    request_handlers:
      /api: mod_http_api
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  c2s:
    allow: all
  muc_create:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
  "loopback registration":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.0/8
    what:
      - register
      - status
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 5000
modules:
  mod_disco: {{}}
  mod_muc:
    access: all
    access_create: muc_create
    access_persistent: muc_create
    max_users: 1000
    max_users_presence: 1000
    history_size: 0
    default_room_options:
      mam: false
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_ping: {{}}
"""

EJABBERDCTL_CFG = """\
EJABBERD_BYPASS_WARNINGS=true
ERLANG_NODE={node}@localhost
ERL_EPMD_ADDRESS=127.0.0.1
INET_DIST_INTERFACE=127.0.0.1
ERL_MAX_PORTS=65536
"""


class Ejabberd:
    """Debian's ejabberd as its own node (``ejabberdctl --config-dir DIR … foreground``)."""

    name = "ejabberd"
    user = "ejabberd"
    """ejabberdctl runs the node as this system user (the package's), so its dirs belong to it."""

    def __init__(self, peers_dir: Path) -> None:
        self.root = peers_dir / "ejabberd"
        self.node = "ejbench"
        self.c2s_port = 0
        self.http_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.beam = 0

    def install(self) -> None:
        if shutil.which("ejabberdctl"):
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "ejabberd"], check=True, env=env)

    def version(self) -> str:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "ejabberd"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip()

    def _dirs(self) -> list[str]:
        """Where ``ejabberdctl`` finds this node's configuration, database and logs."""
        root = self.root
        return [
            "--config-dir",
            str(root),
            "--spool",
            str(root / "db"),
            "--logs",
            str(root / "logs"),
        ]

    def ctl(self, *args: str, check: bool = True) -> str:
        cmd = ["ejabberdctl", *self._dirs(), *args]
        out = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, check=False)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {out.stdout}{out.stderr}")
        return out.stdout

    def configure(self) -> dict[str, Any]:
        shutil.rmtree(self.root, ignore_errors=True)
        for sub in ("db", "logs"):
            (self.root / sub).mkdir(parents=True)
        self.c2s_port, self.http_port = free_port(), free_port()
        (self.root / "ejabberd.yml").write_text(
            EJABBERD_YML.format(c2s_port=self.c2s_port, http_port=self.http_port)
        )
        (self.root / "ejabberdctl.cfg").write_text(EJABBERDCTL_CFG.format(node=self.node))
        inetrc = Path("/etc/ejabberd/inetrc")
        if inetrc.exists():
            shutil.copy(inetrc, self.root / "inetrc")
        subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(self.root)], check=True)
        return {
            "storage": "mnesia (ejabberd's default): accounts on disc; online 1:1 and groupchat"
            " messages are routed in memory and never stored (no mod_mam); mod_offline would"
            " store messages for offline users in mnesia",
            "listeners": f"c2s 127.0.0.1:{self.c2s_port} (plain TCP, no STARTTLS), HTTP API"
            f" 127.0.0.1:{self.http_port}; epmd and Erlang distribution on 127.0.0.1",
            "shapers": "none on c2s",
            "modules": "mod_disco, mod_muc (history 0), mod_offline, mod_ping",
            "auth": "internal, plain passwords, SASL PLAIN",
            "users": "`ejabberdctl register` for the first, the same `register` command"
            " through mod_http_api for the rest (ejabberdctl starts a VM per call: ≈ 0.3 s)",
        }

    def start(self) -> int:
        log = self.root / "logs" / "foreground.log"
        with log.open("ab") as out:
            # setpriv, not ejabberdctl's own su: su goes through PAM, which drops the raised
            # open-file limit, and at 1,024 the node stops accepting before 1,000 users.
            self.proc = subprocess.Popen(
                [
                    "setpriv",
                    f"--reuid={self.user}",
                    f"--regid={self.user}",
                    "--init-groups",
                    "ejabberdctl",
                    *self._dirs(),
                    "foreground",
                ],
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=raise_nofile,
                env={**os.environ, "HOME": "/var/lib/ejabberd"},
            )
        _wait_api = f"http://127.0.0.1:{self.http_port}/api/status"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ejabberd exited: {log.read_text(errors='replace')[-3000:]}")
            try:
                req = urllib.request.Request(_wait_api, data=b"{}", method="POST")
                with urllib.request.urlopen(req, timeout=1) as resp:
                    if b"started" in resp.read():
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise TimeoutError("ejabberd did not start in 60 s")
        self.beam = self._find_beam()
        return self.beam

    def _find_beam(self) -> int:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                comm = (entry / "comm").read_text().strip()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if comm == "beam.smp" and f"{self.node}@localhost".encode() in cmdline:
                return int(entry.name)
        raise RuntimeError("no beam.smp process for the bench node")

    @property
    def pid(self) -> int:
        return self.beam

    def register(self, users: list[str], password: str) -> None:
        """The first with ``ejabberdctl register``, the rest through the HTTP API."""
        self.ctl("register", users[0], "localhost", password)
        url = f"http://127.0.0.1:{self.http_port}/api/register"
        for user in users[1:]:
            body = json.dumps({"user": user, "host": "localhost", "password": password})
            req = urllib.request.Request(url, data=body.encode(), method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.ctl("stop", check=False)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # The epmd daemon the node started (listening on 127.0.0.1 only) goes with it.
        subprocess.run(["epmd", "-kill"], capture_output=True, check=False)
