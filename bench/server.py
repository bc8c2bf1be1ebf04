"""A real ``wanglai serve`` process for the bench: fresh data dir, free port, /proc readings."""

from __future__ import annotations

import http.client
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
NOFILE = 1 << 17
BENCH_ENV = {
    "WANGLAI_OTP_SENDS_PER_ADDRESS": "100000",
    "WANGLAI_OTP_SENDS_PER_PREFIX": "100000",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile(want: int = NOFILE) -> int:
    """Raise this process's open-file limit as far as the kernel allows; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except OSError:
        nr_open = hard
    target = min(want, nr_open)
    for limit in (target, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            return limit
        except (ValueError, OSError):
            continue
    return soft


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def family(pid: int) -> list[int]:
    """The process and its children (the server's SQLite write process is one)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            pids.append(int(entry.name))
    return pids


def _proc_kb(pid: int, name: str, field: str) -> int:
    """A ``kB`` line of ``/proc/PID/NAME`` (``status``: ``VmRSS``, ``VmHWM``; ``smaps_rollup``:
    ``Pss``), 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size of the process and its children, in kB: each shared page is
    split among the processes that map it, so unlike a sum of RSS it counts it once."""
    return sum(_proc_kb(p, "smaps_rollup", "Pss") for p in family(pid))


def peak_rss_kb(pid: int) -> int:
    """Peak resident memory (VmHWM) of the process and its children, in kB."""
    return sum(_proc_kb(p, "status", "VmHWM") for p in family(pid))


def rss_kb(pid: int) -> int:
    """Resident memory of the process and its children, in kB."""
    return sum(_proc_kb(p, "status", "VmRSS") for p in family(pid))


def _cpu_one(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_s(pid: int) -> float:
    """User + system CPU seconds so far of the process (all threads) and its children."""
    return sum(_cpu_one(p) for p in family(pid))


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy (not idle, not waiting on I/O) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def healthy(port: int, timeout: float = 0.5) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class Server:
    """``with Server() as srv:`` starts a server on a fresh temp data dir and stops it after."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        bank: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env or {}
        """Settings for this server on top of the bench's (``WANGLAI_*``)."""
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="wanglai-bench-"))
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_ms = 0.0
        self.bank_port = free_port() if bank else 0
        """With ``bank``, a ``wanglai sandbox bank`` process runs beside the server, so wallets
        can be topped up through the real funding path."""
        self.bank: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 30.0, poll_s: float = 0.005) -> float:
        """Launch and wait for /healthz; returns milliseconds from launch to the first answer."""
        env = {**os.environ, **BENCH_ENV, **self.env, "WANGLAI_DATA_DIR": str(self.data_dir)}
        env.pop("WANGLAI_DATABASE_URL", None)
        if self.bank_port and self.bank is None:
            env["WANGLAI_BANK_URL"] = f"http://127.0.0.1:{self.bank_port}"
            bank_log = (self.data_dir / "bank.log").open("ab")
            self.bank = subprocess.Popen(
                [PYTHON, "-m", "wanglai", "sandbox", "bank", "--port", str(self.bank_port)],
                cwd=ROOT,
                stdout=bank_log,
                stderr=subprocess.STDOUT,
            )
            bank_log.close()
        log = (self.data_dir / "server.log").open("ab")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "wanglai", "serve", "--port", str(self.port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile,
        )
        log.close()
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            if healthy(self.port):
                self.ready_ms = (time.perf_counter() - started) * 1000
                return self.ready_ms
            time.sleep(poll_s)
        self.stop()
        raise TimeoutError(f"server not ready in {timeout_s} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        path = self.data_dir / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        if self.bank is not None:
            self.bank.terminate()
            self.bank.wait(10)
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()
