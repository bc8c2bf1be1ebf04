"""The benchmark suite: real server processes, a separate load process, a table and a JSON file.

    .venv/bin/python bench/run.py                 # everything (a few minutes)
    .venv/bin/python bench/run.py --quick         # a smoke run, a few seconds per benchmark
    .venv/bin/python bench/run.py direct idle     # some of them

Each benchmark starts its own ``wanglai serve`` on a fresh data dir (SQLite, the default), runs
``bench/load.py`` against it in another process, and merges its numbers into
``bench/results/latest.json`` (keys other runs wrote are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server import PYTHON, ROOT, Server, raise_nofile

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "latest.json"
QUICK_RESULTS = BENCH / "results" / "quick.json"
"""Smoke runs go here, so they never replace the numbers of a full run."""

# key: (target, "min" if higher is better else "max")
TARGETS: dict[str, tuple[float, str]] = {
    "direct.msgs_per_s": (25_000, "min"),
    "direct.p99_ms": (15, "max"),
    "group500.deliveries_per_s": (100_000, "min"),
    "idle.kb_per_conn": (15, "max"),
    "catchup.ms_10k": (500, "max"),
    "start.ms": (1_000, "max"),
    "ledger.engine_transfers_per_s": (50_000, "min"),
    "ledger.api_transfers_per_s": (10_000, "min"),
    "redpacket.storm_p99_ms": (200, "max"),
    "redpacket.sends_per_s": (2_000, "min"),
    "wire.bytes_per_text": (2 * 20 + 120, "max"),
    "signal.idle_events_per_hour": (12, "max"),
    "wire.bytes_per_text_compact_json": (2 * 20 + 120, "max"),
    "sms.submit_per_s": (1_000, "min"),
}

Result = dict[str, Any]


def drive(script: str, scenario: str, params: Result, timeout_s: float) -> Result:
    """Run ``bench/SCRIPT SCENARIO PARAMS`` in its own process; returns its ``RESULT`` line."""
    proc = subprocess.run(
        [PYTHON, str(BENCH / script), scenario, json.dumps(params)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        timeout=timeout_s,
        check=False,
    )
    for line in proc.stdout.decode().splitlines():
        if line.startswith("RESULT "):
            result: Result = json.loads(line[len("RESULT ") :])
            return result
    raise RuntimeError(f"{script} {scenario} exited {proc.returncode} without a result")


def run_load(server: Server, scenario: str, params: dict[str, Any], timeout_s: float) -> Result:
    """Run one scenario in a separate load process against ``server``; returns its result."""
    full = {
        "base": server.base,
        "data_dir": str(server.data_dir),
        "server_pid": server.pid,
        **params,
    }
    say(f"  server pid {server.pid} on {server.base}, data {server.data_dir}")
    try:
        return drive("load.py", scenario, full, timeout_s)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; server log:\n{server.log_tail()}") from None


def say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- benchmarks


def bench_direct(args: argparse.Namespace) -> Result:
    common = {"pairs": args.pairs, "warmup": args.warmup, "duration": args.duration}
    say(f"direct: {2 * args.pairs} users, window {args.window}, {args.duration:g} s")
    with Server() as server:
        flat = run_load(server, "direct", {**common, "window": args.window}, args.timeout)
    say(f"direct (paced): {args.rate:g} msgs/s offered, {args.duration:g} s")
    with Server() as server:
        paced = run_load(server, "direct", {**common, "window": 0, "rate": args.rate}, args.timeout)
    return {
        "direct.msgs_per_s": flat["received_per_s"],
        "direct.acked_per_s": flat["acked_per_s"],
        "direct.saturated_p50_ms": flat["p50_ms"],
        "direct.saturated_p99_ms": flat["p99_ms"],
        "direct.server_cpu_pct": flat["server_cpu_pct"],
        "direct.load_cpu_pct": flat["load_cpu_pct"],
        "direct.server_rss_mb": flat["server_rss_mb"],
        "direct.p50_ms": paced["p50_ms"],
        "direct.p99_ms": paced["p99_ms"],
        "direct.paced_received_per_s": paced["received_per_s"],
        "direct.detail": {
            "saturated": flat,
            "paced": paced,
            "params": {**common, "window": args.window, "rate": args.rate},
        },
    }


FD_MARGIN = 64
"""Descriptors each process keeps for everything but the idle sockets (DB files, epoll, …)."""


def bench_idle(args: argparse.Namespace) -> Result:
    conns, limited = args.conns, None
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    room = min(hard, raise_nofile()) - FD_MARGIN
    if conns > room:
        # The server and the load process each need one descriptor per connection, and neither
        # may go past the hard RLIMIT_NOFILE this process was given (raising it needs
        # CAP_SYS_RESOURCE).
        limited = (
            f"asked for {conns}, ran {room}: RLIMIT_NOFILE hard limit is {hard} and this"
            f" process cannot raise it (no CAP_SYS_RESOURCE); {FD_MARGIN} kept for other files"
        )
        say(f"idle: {limited}")
        conns = room
    say(f"idle: {conns} authenticated idle WebSockets")
    with Server() as server:
        out = run_load(server, "idle", {"conns": conns}, args.timeout)
    return {
        "idle.kb_per_conn": out["kb_per_conn"],
        "idle.conns": out["conns"],
        "idle.detail": {**out, "params": {"conns": args.conns}, "limited": limited},
    }


def bench_catchup(args: argparse.Namespace) -> Result:
    say(f"catchup: {args.events} missed events, pages of {args.page}")
    params = {"events": args.events, "limit": args.page, "repeats": args.repeats}
    with Server() as server:
        out = run_load(server, "catchup", params, args.timeout)
    key = "catchup.ms_10k" if args.events == 10_000 else f"catchup.ms_{args.events}"
    return {key: out["median_ms"], "catchup.detail": {**out, "params": params}}


def bench_group500(args: argparse.Namespace) -> Result:
    params = {
        "members": args.members,
        "senders": args.senders,
        "window": args.group_window,
        "warmup": args.warmup,
        "duration": args.duration,
    }
    say(f"group500: {args.members} members online, {args.senders} senders")
    with Server() as server:
        out = run_load(server, "group500", params, args.timeout)
    if "skipped" in out:
        return {"group500.deliveries_per_s": None, "group500.detail": {**out, "params": params}}
    return {
        "group500.deliveries_per_s": out["deliveries_per_s"],
        "group500.messages_per_s": out["messages_per_s"],
        "group500.p99_ms": out["p99_ms"],
        "group500.detail": {**out, "params": params},
    }


def bench_start(args: argparse.Namespace) -> Result:
    say(f"start: {args.starts} launches on a fresh data dir, {args.starts} on an existing one")
    fresh: list[float] = []
    for _ in range(args.starts):
        server = Server()
        try:
            fresh.append(server.start())
        finally:
            server.cleanup()
    existing: list[float] = []
    data_dir = Path(tempfile.mkdtemp(prefix="wanglai-bench-start-"))
    try:
        seed = Server(data_dir)
        seed.start()
        seed.stop()
        for _ in range(args.starts):
            server = Server(data_dir)
            try:
                existing.append(server.start())
            finally:
                server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    fresh_ms, existing_ms = statistics.median(fresh), statistics.median(existing)
    return {
        "start.ms": round(max(fresh_ms, existing_ms)),
        "start.fresh_ms": round(fresh_ms),
        "start.existing_ms": round(existing_ms),
        "start.detail": {
            "fresh_runs_ms": [round(v) for v in fresh],
            "existing_runs_ms": [round(v) for v in existing],
            "note": "launch of `python -m wanglai serve` to the first 200 from /healthz;"
            " start.ms is the worse of the two medians",
        },
    }


def bench_ledger_engine(args: argparse.Namespace) -> Result:
    duration = 3.0 if args.quick else 20.0
    say(f"ledger engine: in-process, durable, batches of 8190, {duration:g} s")
    proc = subprocess.run(
        [PYTHON, str(BENCH / "ledger_engine.py"), "--duration", str(duration)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        timeout=args.timeout,
        check=True,
    )
    line = next(x for x in proc.stdout.decode().splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    return {
        "ledger.engine_transfers_per_s": out["transfers_per_s"],
        "ledger.engine_batch_p99_ms": out["batch_p99_ms"],
        "ledger_engine.detail": out,
    }


def bench_transfers(args: argparse.Namespace) -> Result:
    params = {"users": 200, "window": 4, "warmup": args.warmup, "duration": args.duration}
    say(f"transfers: {params['users']} payers x {params['window']} in flight, {args.duration:g} s")
    with Server(bank=True) as server:
        http = run_load(server, "transfers", params, args.timeout)
    say("  the same as WebSocket transfer frames (the chat socket a phone keeps open)")
    with Server(bank=True) as server:
        ws = run_load(server, "transfers_ws", params, args.timeout)
    best = max((http, ws), key=lambda out: float(out["transfers_per_s"]))
    return {
        "ledger.api_transfers_per_s": best["transfers_per_s"],
        "ledger.api_http_transfers_per_s": http["transfers_per_s"],
        "ledger.api_http_p99_ms": http["p99_ms"],
        "ledger.api_ws_transfers_per_s": ws["transfers_per_s"],
        "ledger.api_ws_p99_ms": ws["p99_ms"],
        "transfers.detail": {**http, "params": params},
        "transfers_ws.detail": {**ws, "params": params},
    }


def bench_redpacket(args: argparse.Namespace) -> Result:
    storm_params = {"members": 500, "claimers": 10_000, "shares": 100, "amount": 20_000}
    say("redpacket storm: 10,000 claims at once on one 100-share packet in a 500-member group,")
    say("  as WebSocket claim frames from the 500 online members (20 each)")
    with Server(bank=True) as server:
        storm = run_load(server, "storm_ws", storm_params, args.timeout)
    say("  and as 10,000 HTTP requests on 10,000 open connections")
    with Server(bank=True) as server:
        storm_http = run_load(server, "storm", storm_params, args.timeout)
    send_params = {
        "members": 50,
        "senders": 40,
        "window": 4,
        "warmup": args.warmup,
        "duration": args.duration,
    }
    say(f"redpacket sends: 40 senders x 4 in flight in a 50-member group, {args.duration:g} s")
    with Server(bank=True) as server:
        sends = run_load(server, "sends", send_params, args.timeout)
    return {
        "redpacket.storm_p99_ms": storm["p99_ms"],
        "redpacket.storm_winners": storm["winners"],
        "redpacket.storm_sum": storm["sum"],
        "redpacket.storm_http_p99_ms": storm_http["p99_ms"],
        "redpacket.storm_http_winners": storm_http["winners"],
        "redpacket.storm_http_sum": storm_http["sum"],
        "redpacket.sends_per_s": sends["sends_per_s"],
        "redpacket.sends_p99_ms": sends["p99_ms"],
        "redpacket_storm.detail": {**storm, "params": storm_params},
        "redpacket_storm_http.detail": {**storm_http, "params": storm_params},
        "redpacket_sends.detail": {**sends, "params": send_params},
    }


def bench_wire(args: argparse.Namespace) -> Result:
    say("wire: bytes on the wire for one 20-character text (send, ack, delivery)")
    # Usage is flushed every 0.2 s, so the exported records can be compared with the relay.
    with Server(env={"WANGLAI_USAGE_FLUSH_S": "0.2"}) as server:
        out = run_load(server, "wire", {}, args.timeout)
    usage = out["usage"]
    say(
        f"  usage records {usage['exported_up']} up / {usage['exported_down']} down, relay"
        f" {usage['relay_up']} / {usage['relay_down']}: {'agree' if usage['agree'] else 'DIFFER'}"
    )
    return {
        "wire.usage_agrees": usage["agree"],
        "wire.bytes_per_text": out["compact_msgpack"]["bytes"],
        "wire.bytes_per_text_compact_json": out["compact_json"]["bytes"],
        "wire.bytes_per_text_msgpack": out["msgpack"]["bytes"],
        "wire.bytes_per_text_json": out["json"]["bytes"],
        "wire.detail": out,
    }


def bench_signal(args: argparse.Namespace) -> Result:
    hours = 2 if args.quick else 3
    say(f"signal: radio wake-ups of idle phones, {hours} phone-hours at 60x speed")
    env = {"WANGLAI_HEARTBEAT_S": "1", "WANGLAI_HEARTBEAT_MAX_S": "10"}
    with Server(env=env) as server:
        out = run_load(server, "signal", {"hours": hours}, args.timeout + hours * 60)
    return {
        # the last hour: the heartbeat has found its interval
        "signal.idle_events_per_hour": out["open"]["events_by_hour"][-1],
        "signal.idle_events_first_hour": out["open"]["events_by_hour"][0],
        "signal.nat7min_events_per_hour": out["nat"]["events_by_hour"][-1],
        "signal.detail": out,
    }


def bench_sms(args: argparse.Namespace) -> Result:
    import sms

    count = 1_000 if args.quick else args.sms_count
    say(f"sms: {count} SMS through the outbox to the test SMSC (npm smpp), window 10")
    out = sms.run(count, 10, args.timeout)
    return {"sms.submit_per_s": out["submit_per_s"], "sms.detail": out}


BENCHMARKS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "sms": bench_sms,
    "signal": bench_signal,
    "wire": bench_wire,
    "transfers": bench_transfers,
    "redpacket": bench_redpacket,
    "ledger_engine": bench_ledger_engine,
    "direct": bench_direct,
    "group500": bench_group500,
    "idle": bench_idle,
    "catchup": bench_catchup,
    "start": bench_start,
}


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    version = subprocess.run(
        [PYTHON, "-c", "import sys, aiohttp; print(sys.version.split()[0], aiohttp.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": version[0] if version else platform.python_version(),
        "aiohttp": version[1] if len(version) > 1 else "",
    }


def git() -> dict[str, Any]:
    def out(*cmd: str) -> str:
        proc = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    return {"commit": out("rev-parse", "HEAD"), "dirty": bool(out("status", "--porcelain"))}


def verdict(key: str, value: Any) -> str:
    if key not in TARGETS:
        return ""
    if value is None:
        return "not run"
    target, kind = TARGETS[key]
    ok = value >= target if kind == "min" else value <= target
    return "ok" if ok else "MISS"


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:,.2f}"
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return str(value)


def print_table(results: Result) -> None:
    rows = []
    for key, value in results.items():
        if key.endswith(".detail"):
            continue
        target = TARGETS.get(key)
        goal = "" if target is None else ("≥ " if target[1] == "min" else "≤ ") + fmt(target[0])
        rows.append((key, fmt(value), goal, verdict(key, value)))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for row in rows:
            print(f"{row[0]:<32} {row[1]:>12} {row[2]:>10} {row[3]}")
        return
    table = Table(title="Wanglai benchmarks")
    for name, justify in (("key", "left"), ("value", "right"), ("target", "right"), ("", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for key, value, goal, mark in rows:
        style = "red" if mark == "MISS" else ("green" if mark == "ok" else "")
        table.add_row(key, value, goal, mark, style=style if key in TARGETS else "dim")
    Console().print(table)


def save(results: Result, args: argparse.Namespace, ran: list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    merged: Result = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text())
        except json.JSONDecodeError:
            merged = {}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    commit = git()
    for name in ran:
        prefix = name + "."
        for key in [k for k in merged if k.startswith(prefix)]:
            del merged[key]
        merged.setdefault("runs", {})[name] = {
            "at": stamp,
            "quick": args.quick,
            **commit,
            **({"server_src": args.src} if args.src else {}),
        }
    merged.update(results)
    merged["machine"] = machine()
    merged["targets"] = {k: {"target": t, "kind": kind} for k, (t, kind) in TARGETS.items()}
    path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- command line


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="NAME",
        help=f"which to run (default all): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run of each")
    parser.add_argument("--duration", type=float, help="measured seconds per throughput run (60)")
    parser.add_argument("--warmup", type=float, help="seconds of load before measuring (3)")
    parser.add_argument("--pairs", type=int, default=500, help="direct: user pairs (500)")
    parser.add_argument(
        "--window",
        type=int,
        default=8,
        help="direct: un-acked messages each user keeps in flight (8)",
    )
    parser.add_argument("--rate", type=float, default=5000, help="direct: paced msgs/s (5000)")
    parser.add_argument("--conns", type=int, help="idle: connections (20000)")
    parser.add_argument("--events", type=int, default=10_000, help="catchup: missed events")
    parser.add_argument("--page", type=int, default=5000, help="catchup: sync page limit")
    parser.add_argument("--repeats", type=int, help="catchup: timed catch-ups (5)")
    parser.add_argument("--members", type=int, default=500, help="group500: members (500)")
    parser.add_argument("--senders", type=int, default=4, help="group500: sending members (4)")
    parser.add_argument(
        "--group-window", type=int, default=16, help="group500: un-acked messages per sender (16)"
    )
    parser.add_argument("--starts", type=int, help="start: launches of each kind (5)")
    parser.add_argument("--sms-count", type=int, default=5000, help="sms: SMS to submit (5000)")
    parser.add_argument(
        "--src",
        help="run the server from this src dir instead of the checkout's (e.g. an exported commit)",
    )
    parser.add_argument(
        "--out",
        help="results file to merge into (default results/latest.json; quick.json with --quick)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per load process")
    args = parser.parse_args(argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; pick from {', '.join(BENCHMARKS)}")
    quick = args.quick
    for name, full, short in (
        ("duration", 60.0, 5.0),
        ("warmup", 3.0, 1.0),
        ("conns", 20_000, 2_000),
        ("repeats", 5, 3),
        ("starts", 5, 3),
    ):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.src:
        os.environ["PYTHONPATH"] = str(Path(args.src).resolve())
    chosen = args.benchmarks or list(BENCHMARKS)
    results: Result = {}
    ran: list[str] = []
    started = time.perf_counter()
    for name in chosen:
        t0 = time.perf_counter()
        try:
            results.update(BENCHMARKS[name](args))
            ran.append(name)
        except Exception as exc:
            say(f"{name}: FAILED: {exc}")
            results[f"{name}.error"] = (str(exc).strip().splitlines() or ["?"])[-1][:200]
            ran.append(name)
        say(f"  ({time.perf_counter() - t0:.0f} s)")
    print_table(results)
    out = Path(args.out) if args.out else (QUICK_RESULTS if args.quick else RESULTS)
    save(results, args, ran, out)
    say(f"wrote {out} in {time.perf_counter() - started:.0f} s total")
    return 1 if any(k.endswith(".error") for k in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
