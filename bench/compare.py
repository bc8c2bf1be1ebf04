"""Side by side: the same messaging workload against Wanglai, Synapse and ejabberd, in one run.

    .venv/bin/python bench/compare.py                       # 1,000 users, 60 s (make bench-compare)
    .venv/bin/python bench/compare.py --users 20 --duration 5   # plumbing check
    .venv/bin/python bench/compare.py --systems wanglai ejabberd

Systems: ``wanglai``, ``synapse`` (Synapse on SQLite), ``synapse-pg`` (the same Synapse on a
throwaway PostgreSQL cluster) and ``ejabberd``. Each runs twice on a fresh server: ``direct``
(``--users`` users in pairs, each keeping ``--window`` messages in flight to its peer; Synapse
``--synapse-window``, and at most ``--synapse-max-in-flight`` over all its users) and ``group``
(one room of ``--members`` members, one sender keeping ``--group-window`` in flight; every
member's copy is a delivery, the sender's own included). The load comes from one process per
protocol (``load.py`` for Wanglai, ``matrix_load.py``, ``xmpp_load.py``), all of the same design:
uvloop, one connection per user, a window per sender, the send time in the body. Peers are
installed and configured by ``peers.py`` under ``--peers-dir``. Writes ``results/compare.json``
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from peers import Ejabberd, Synapse
from run import drive, git, machine, run_load, say
from server import Server, peak_rss_kb

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "results" / "compare.json"
SYSTEMS = ("wanglai", "synapse", "synapse-pg", "ejabberd")
Result = dict[str, Any]


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory (VmHWM) of the server process and its children, in MB."""
    return round(peak_rss_kb(pid) / 1024, 1)


def cpu_s(out: Result, key: str) -> float:
    return round(float(out[key]) * float(out["seconds"]) / 100, 1)


def summary(direct: Result, group: Result, rss: float, group_rss: float, in_flight: str) -> Result:
    received = direct["received_per_s"]
    server_cpu = cpu_s(direct, "server_cpu_pct")
    return {
        "in_flight": in_flight,
        "msgs_per_s": received,
        # Nothing delivered: no latency to speak of (0 would read as instant).
        "p50_ms": direct["p50_ms"] if received else None,
        "p99_ms": direct["p99_ms"] if received else None,
        "rss_mb": rss,
        # sampled every 2 s: shared pages (libraries, PostgreSQL's shared buffers) count once
        "pss_mb": direct.get("server_pss_peak_mb"),
        "cpu_s": server_cpu,
        "cpu_pct": direct["server_cpu_pct"],
        "cpu_ms_per_msg": (
            round(1000 * server_cpu / direct["received"], 3) if direct["received"] else None
        ),
        "group_deliveries_per_s": group["deliveries_per_s"],
        "group_p99_ms": group["p99_ms"],
        "group_rss_mb": group_rss,
        "group_cpu_pct": group["server_cpu_pct"],
        "driver_cpu_s": cpu_s(direct, "load_cpu_pct"),
        "driver_cpu_pct": direct["load_cpu_pct"],
        "group_driver_cpu_pct": group["load_cpu_pct"],
        "other_cpu_pct": max(direct["other_cpu_pct"], group["other_cpu_pct"]),
        "detail": {"direct": direct, "group": group},
    }


def common(args: argparse.Namespace) -> Result:
    return {"warmup": args.warmup, "duration": args.duration}


def run_wanglai(args: argparse.Namespace) -> tuple[Result, Result]:
    params = {**common(args), "pairs": args.users // 2, "window": args.window}
    say(f"wanglai direct: {args.users} users, window {args.window}")
    with Server() as server:
        direct = run_load(server, "direct", params, args.timeout)
        rss = peak_rss_mb(server.pid)
    say(f"wanglai group: {args.members} members, 1 sender, window {args.group_window}")
    gparams = {
        **common(args),
        "members": args.members,
        "senders": 1,
        "window": args.group_window,
    }
    with Server() as server:
        group = run_load(server, "group500", gparams, args.timeout)
        group_rss = peak_rss_mb(server.pid)
    config = {
        "storage": "SQLite (WAL, synchronous=FULL): a message is acknowledged after its"
        " group commit is on disk",
        "server": "`python -m wanglai serve` (bench/server.py), default settings,"
        " OTP limits raised",
    }
    return summary(direct, group, rss, group_rss, f"{args.window} per user"), config


def run_synapse(args: argparse.Namespace, postgres: bool = False) -> tuple[Result, Result]:
    peer = Synapse(args.peers_dir, postgres=postgres)
    name = peer.name
    peer.install()
    out: dict[str, Result] = {}
    rss: dict[str, float] = {}
    config: Result = {}
    for scenario in ("direct", "group"):
        config = peer.configure()
        try:
            peer.start()
            window = args.group_window if scenario == "group" else args.synapse_window
            cap = 0 if scenario == "group" else args.synapse_max_in_flight
            params = {
                **common(args),
                "warmup": args.synapse_warmup,
                "base": peer.base,
                "secret": peer.secret,
                "server_pid": peer.pid,
                "also_pids": peer.also_pids,
                "users": args.users,
                "members": args.members,
                "prefix": "bench",
                "window": window,
                "max_in_flight": cap,
            }
            say(
                f"{name} {scenario}: pid {peer.pid} on {peer.base}, window {window}"
                + (f", at most {cap} in flight in all" if cap else "")
            )
            result = drive("matrix_load.py", scenario, params, args.timeout)
            pids = (peer.pid, *peer.also_pids)
            rss[scenario] = sum(peak_rss_mb(pid) for pid in pids)
            result["server_log"] = peer.log_summary()
        finally:
            peer.stop()
        if scenario == "group":
            result["deliveries_per_s"] = result["received_per_s"]
        out[scenario] = result
    config["version"] = peer.version()
    cap = args.synapse_max_in_flight
    config["direct_in_flight"] = (
        f"{args.synapse_window} in flight per user (--synapse-window)"
        + (f", at most {cap} in flight over all users (--synapse-max-in-flight)" if cap else "")
        + f"; Wanglai and ejabberd: {args.window} per user (--window)"
    )
    config["warmup"] = (
        f"{args.synapse_warmup} s before measuring (--synapse-warmup; the others: {args.warmup} s)"
    )
    in_flight = f"{args.synapse_window} per user" + (f", ≤ {cap} in all" if cap else "")
    return summary(out["direct"], out["group"], rss["direct"], rss["group"], in_flight), config


def run_synapse_pg(args: argparse.Namespace) -> tuple[Result, Result]:
    return run_synapse(args, postgres=True)


def run_ejabberd(args: argparse.Namespace) -> tuple[Result, Result]:
    peer = Ejabberd(args.peers_dir)
    peer.install()
    out: dict[str, Result] = {}
    rss: dict[str, float] = {}
    config: Result = {}
    password = "bench-password"
    for scenario in ("direct", "group"):
        config = peer.configure()
        peer.start()
        try:
            count = args.members if scenario == "group" else args.users
            t0 = time.perf_counter()
            peer.register([f"u{i}" for i in range(count)], password)
            say(
                f"ejabberd {scenario}: beam.smp pid {peer.pid}, {count} users registered"
                f" in {time.perf_counter() - t0:.1f} s"
            )
            params = {
                **common(args),
                "port": peer.c2s_port,
                "server_pid": peer.pid,
                "users": args.users,
                "members": args.members,
                "prefix": "u",
                "password": password,
                "window": args.group_window if scenario == "group" else args.window,
            }
            result = drive("xmpp_load.py", scenario, params, args.timeout)
            rss[scenario] = peak_rss_mb(peer.pid)
        finally:
            peer.stop()
        if scenario == "group":
            result["deliveries_per_s"] = result["received_per_s"]
        out[scenario] = result
    config["version"] = peer.version()
    in_flight = f"{args.window} per user"
    return summary(out["direct"], out["group"], rss["direct"], rss["group"], in_flight), config


RUNNERS = {
    "wanglai": run_wanglai,
    "synapse": run_synapse,
    "synapse-pg": run_synapse_pg,
    "ejabberd": run_ejabberd,
}


def ratios(raw: dict[str, Result]) -> dict[str, Result]:
    """Per peer, oriented so that above 1 means Wanglai is better."""
    ours = raw.get("wanglai")
    if not ours:
        return {}
    out: dict[str, Result] = {}
    for name, peer in raw.items():
        if name == "wanglai" or not peer:
            continue

        def div(a: float | None, b: float | None) -> float | None:
            return round(a / b, 2) if a is not None and b else None

        out[name] = {
            "msgs_per_s": div(ours["msgs_per_s"], peer["msgs_per_s"]),
            "group_deliveries_per_s": div(
                ours["group_deliveries_per_s"], peer["group_deliveries_per_s"]
            ),
            "p50_ms": div(peer["p50_ms"], ours["p50_ms"]),
            "p99_ms": div(peer["p99_ms"], ours["p99_ms"]),
            "rss_mb": div(peer["rss_mb"], ours["rss_mb"]),
            "pss_mb": div(peer.get("pss_mb"), ours.get("pss_mb")),
            "cpu_ms_per_msg": div(peer["cpu_ms_per_msg"], ours["cpu_ms_per_msg"]),
        }
    return out


ROWS = (
    ("in_flight", "direct sends in flight", "{}"),
    ("msgs_per_s", "direct msgs/s delivered", "{:,.0f}"),
    ("p50_ms", "direct p50 ms", "{:,.1f}"),
    ("p99_ms", "direct p99 ms", "{:,.1f}"),
    ("rss_mb", "server peak RSS MB", "{:,.0f}"),
    ("pss_mb", "server peak PSS MB", "{:,.0f}"),
    ("cpu_pct", "server CPU % (direct)", "{:,.0f}"),
    ("cpu_ms_per_msg", "server CPU ms / msg", "{:,.3f}"),
    ("driver_cpu_pct", "driver CPU % (direct)", "{:,.0f}"),
    ("group_deliveries_per_s", "group deliveries/s", "{:,.0f}"),
    ("group_p99_ms", "group p99 ms", "{:,.1f}"),
    ("other_cpu_pct", "other CPU % (max)", "{:,.0f}"),
)


def table(raw: dict[str, Result], rat: dict[str, Result]) -> str:
    """A Markdown table: one row per figure, one column per system and one per ratio."""
    names = [n for n in SYSTEMS if raw.get(n)]
    peers = [n for n in names if n != "wanglai" and n in rat]
    head = ["", *names, *(f"Wanglai vs {p}" for p in peers)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, form in ROWS:
        cells = [label]
        for n in names:
            value = raw[n].get(key)
            cells.append("-" if value is None else form.format(value))
        for p in peers:
            r = rat[p].get(key)
            cells.append("" if r is None else f"{r:,.2f}×")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--users", type=int, default=1000, help="direct: users, in pairs (1000)")
    parser.add_argument(
        "--window", type=int, default=8, help="direct: in flight per user, Wanglai, ejabberd (8)"
    )
    parser.add_argument(
        "--synapse-window",
        type=int,
        default=1,
        help="direct: in flight per user, Synapse (both databases) (1)",
    )
    parser.add_argument(
        "--synapse-max-in-flight",
        type=int,
        default=64,
        help="direct: at most this many sends in flight over all Synapse users (64; 0: no cap)",
    )
    parser.add_argument(
        "--synapse-warmup",
        type=float,
        default=20.0,
        help="Synapse: seconds before measuring (20): its 1,000 long-polls connect slowly",
    )
    parser.add_argument("--members", type=int, default=100, help="group: members (100)")
    parser.add_argument("--group-window", type=int, default=16, help="group: in flight (16)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (60)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (3)")
    parser.add_argument(
        "--peers-dir",
        type=Path,
        default=BENCH / "peers",
        help="where the peers are installed and run (bench/peers, gitignored)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per load process")
    args = parser.parse_args(argv)
    args.peers_dir = args.peers_dir.resolve()
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    raw: dict[str, Result] = {}
    config: dict[str, Result] = {}
    errors: dict[str, str] = {}
    for name in args.systems:
        t0 = time.perf_counter()
        try:
            raw[name], config[name] = RUNNERS[name](args)
        except Exception as exc:
            say(f"{name}: FAILED: {exc}")
            errors[name] = str(exc).strip()[-2000:]
        say(f"  ({time.perf_counter() - t0:.0f} s)")
    runs = {n: {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **git()} for n in raw}
    if args.out.exists():
        # Systems not run this time keep their last numbers (each with its own run stamp).
        before = json.loads(args.out.read_text())
        for name, old in before.get("raw", {}).items():
            if name not in args.systems and name not in raw:
                raw[name] = old
                config[name] = before.get("configuration", {}).get(name, {})
                runs[name] = before.get("runs", {}).get(name, {})
    rat = ratios(raw)
    report = {
        "runs": runs,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **git(),
        "params": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("out",)
        },
        "machine": machine(),
        "versions": {n: c.get("version", "") for n, c in config.items()},
        "configuration": config,
        "raw": raw,
        "ratios": rat,
        "errors": errors,
    }
    if "wanglai" in runs:
        report["versions"]["wanglai"] = runs["wanglai"].get("commit", "")[:12]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(raw, rat))
    say(f"wrote {args.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
