"""Drives the test SMSC (``smsc.js``, built on the npm ``smpp`` package) from Python: start it
on free loopback ports, kill and restart it on the same port, and tell it what to do.

Plain Python with no project imports, so tests and the bench both use it."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "smsc.js"
THROTTLED = 0x58
QUEUE_FULL = 0x14


class TestSmsc:
    """One ``node smsc.js`` process; what it accepted is recorded in ``record`` (JSON lines),
    which outlives a kill."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        workdir: Path,
        system_id: str = "wanglai",
        password: str = "secret",
        keep_record: bool = True,
    ):
        self.workdir = workdir
        self.keep_record = keep_record
        """Without it, submits are kept in memory only (``state()``): faster, for the bench."""
        self.system_id = system_id
        self.password = password
        self.record = workdir / "smsc-record.jsonl"
        self.log = workdir / "smsc.log"
        self.port = 0
        self.control = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int = 0) -> TestSmsc:
        if not (HERE / "node_modules" / "smpp").exists():
            raise RuntimeError("the test SMSC is not installed: run `make smsc` (npm ci)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = ["node", str(SCRIPT), "--port", str(port), "--control-port", "0"]
        if self.keep_record:
            command += ["--record", str(self.record)]
        command += ["--system-id", self.system_id]
        command += ["--password", self.password]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 3 or line[0] != "READY":
            self.kill()
            raise RuntimeError(f"the test SMSC did not start: {line!r}; see {self.log}")
        self.port, self.control = int(line[1]), int(line[2])
        return self

    def kill(self) -> None:
        """SIGKILL: the SMSC dies mid-stream, as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def restart(self) -> None:
        """Kill it and start it again on the same SMPP port."""
        port = self.port
        self.kill()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start(port)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.kill()

    # ---------------------------------------------------------------- control

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"http://127.0.0.1:{self.control}{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def state(self) -> dict[str, Any]:
        """Sessions bound now, binds so far, enquire_links answered, throttled answers, and
        the submits this process accepted."""
        return self._call("/state")  # type: ignore[no-any-return]

    def submits(self) -> list[dict[str, Any]]:
        """Every submit accepted since the first start, across restarts, in order."""
        if not self.record.exists():
            return []
        lines = self.record.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def throttle(self, count: int, status: int = THROTTLED) -> None:
        """Answer the next ``count`` submits with ``status`` instead of accepting them."""
        self._call("/throttle", {"count": count, "status": status})

    def delay(self, ms: int) -> None:
        """Answer submits ``ms`` after they arrive (so a batch is in flight)."""
        self._call("/delay", {"ms": ms})

    def mute(self, count: int) -> None:
        """Accept and record the next ``count`` submits but never answer them (their answers
        are lost, as when the connection drops right after the SMSC stored them)."""
        self._call("/mute", {"count": count})

    def receipt(self, message_id: str, stat: str = "DELIVRD", **fields: Any) -> int:
        """Send a delivery receipt to every bound session; returns how many got it. Fields:
        ``tlvs`` (also send receipted_message_id/message_state), ``text`` (a raw text instead),
        ``err``, ``esm_class``."""
        sent = self._call("/receipt", {"message_id": message_id, "stat": stat, **fields})
        return int(sent["sent"])

    def deliver(
        self, source: str, payload: bytes, data_coding: int = 0, esm_class: int = 0, dest: str = ""
    ) -> int:
        """Send a text from a phone (MO deliver_sm) to every bound session."""
        body = {"source": source, "dest": dest, "hex": payload.hex()}
        body |= {"data_coding": data_coding, "esm_class": esm_class}
        return int(self._call("/deliver", body)["sent"])

    def drop(self) -> None:
        """Close every session (a network cut; the process stays up)."""
        self._call("/drop", {})

    def wait_bound(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.state()["sessions"] < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("no ESME bound to the test SMSC")
            time.sleep(0.02)
