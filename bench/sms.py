"""``sms.submit_per_s``: SMS submitted through the outbox and the SMPP channel, as accepted by a
third-party SMSC (tests/smsc: the npm ``smpp`` package), with a window of 10.

A real ``wanglai serve`` runs with ``WANGLAI_SMS_CHANNEL=smpp`` against the test SMSC;
``wanglai admin sms send --count N`` puts N SMS in its outbox in one transaction; the rate is
counted at the SMSC, from its first accepted submit to its last (microsecond stamps), so the
server's polling delay before the first one is not in it. Every SMS must be accepted exactly
once and the outbox must show them all submitted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from server import PYTHON, ROOT, Server, cpu_s

sys.path.insert(0, str(ROOT / "tests" / "smsc"))
from harness import TestSmsc

TEXT = "Wanglai bench SMS number {n}"
ADMIN = [PYTHON, "-m", "wanglai", "admin", "sms"]


def run(count: int, window: int, timeout_s: float = 300.0) -> dict[str, Any]:
    smsc = TestSmsc(Path(tempfile.mkdtemp(prefix="wanglai-smsc-")), keep_record=False).start()
    overrides = {
        "WANGLAI_SMS_CHANNEL": "smpp",
        "WANGLAI_SMPP_PORT": str(smsc.port),
        "WANGLAI_SMPP_SYSTEM_ID": smsc.system_id,
        "WANGLAI_SMPP_PASSWORD": smsc.password,
        "WANGLAI_SMPP_SOURCE": "10690",
        "WANGLAI_SMPP_WINDOW": str(window),
    }
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        with Server() as server:
            smsc.wait_bound()
            env = {**os.environ, "WANGLAI_DATA_DIR": str(server.data_dir)}
            cpu_before = cpu_s(server.pid)
            subprocess.run(
                [*ADMIN, "send", "--to", "+8613900000000", "--text", TEXT, "--count", str(count)],
                env=env,
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + timeout_s
            while True:
                state = smsc.state()
                if len(state["submits"]) >= count:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(state['submits'])} of {count} submitted")
                time.sleep(0.2)
            time.sleep(1.0)  # let the outbox record the last answers; catch any late double
            cpu = cpu_s(server.pid) - cpu_before
            state = smsc.state()
            outbox = json.loads(
                subprocess.run(
                    [*ADMIN, "status", "--json"],
                    env=env,
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
    finally:
        smsc.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    submits = state["submits"]
    stamps = [int(s["t"]) for s in submits]
    seconds = (max(stamps) - min(stamps)) / 1e6
    texts = Counter(s["text"] for s in submits)
    rate = (len(submits) - 1) / seconds if seconds > 0 else 0.0
    return {
        "submit_per_s": round(rate),
        "count": count,
        "window": window,
        "seconds": round(seconds, 3),
        "accepted": len(submits),
        "doubled": sum(n - 1 for n in texts.values() if n > 1),
        "missing": count - len(texts),
        "outbox": outbox,
        "server_cpu_s": round(cpu, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5000, 10), indent=2))
