"""The peers of ``compare.py``: Synapse and ejabberd, each installed and run in its own directory.

Nothing of theirs is committed: everything lives under the peers directory (default
``bench/peers/``, gitignored). Synapse gets its own venv (``pip install matrix-synapse``), a
generated config on SQLite plus an override file (loopback listener, rate limits raised, presence
off); ejabberd comes from Debian's package and runs as its own node with its own config, spool
(mnesia) and logs, never as the system service. Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
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


class Synapse:
    """``matrix-synapse`` in ``DIR/synapse/venv``, a fresh data dir per ``start()``."""

    name = "synapse"

    def __init__(self, peers_dir: Path) -> None:
        self.root = peers_dir / "synapse"
        self.venv = self.root / "venv"
        self.python = self.venv / "bin" / "python"
        self.data = self.root / "data"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.secret = ""

    def install(self) -> None:
        if self.python.exists() and self._has_synapse():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3", "-m", "venv", str(self.venv)], check=True)
        pip = [str(self.venv / "bin" / "pip"), "install", "-q", "matrix-synapse"]
        subprocess.run(pip, check=True)

    def _has_synapse(self) -> bool:
        probe = [str(self.python), "-c", "import synapse"]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    def version(self) -> str:
        probe = [str(self.python), "-c", "import synapse; print(synapse.__version__)"]
        return subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()

    def configure(self) -> dict[str, Any]:
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
        # JSON is YAML: Synapse merges this file over the generated one.
        (self.data / "bench.yaml").write_text(json.dumps(overrides, indent=2))
        return {
            "database": "SQLite (Synapse's own file, its default durability)",
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

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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

    def ctl(self, *args: str, check: bool = True) -> str:
        cmd = [
            "ejabberdctl",
            "--config-dir",
            str(self.root),
            "--spool",
            str(self.root / "db"),
            "--logs",
            str(self.root / "logs"),
            *args,
        ]
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
                    "--config-dir",
                    str(self.root),
                    "--spool",
                    str(self.root / "db"),
                    "--logs",
                    str(self.root / "logs"),
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
