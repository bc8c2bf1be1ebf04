"""The ledger engine in-process with its real store, durable: ``ledger.engine_transfers_per_s``.

Opens a fresh SQLite database (WAL, synchronous=FULL, the server's own ``SqliteDatabase`` with its
group-commit writer and optional write process), opens ``--accounts`` wallets, funds them, then
keeps ``--inflight`` batches of ``--batch`` random wallet-to-wallet transfers in flight for
``--duration`` seconds through ``store.ledger.create_transfers`` (TigerBeetle's interface: one
request, many transfers, one outcome each). A transfer counts once its batch is committed. The
ledger's invariants are checked at the end (sums zero, no negative wallet).

    .venv/bin/python bench/ledger_engine.py [--duration 10] [--batch 8190] [--write-process]
Prints one ``RESULT {json}`` line (bench/run.py runs it in its own process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from wanglai.domain import ledger as rules
from wanglai.domain.ledger import Request
from wanglai.store import ledger, migrate
from wanglai.store.database import connect
from wanglai.store.sql import Op

CURRENCY = "CNY"


def open_accounts(count: int, now: int) -> Op[list[int]]:
    ids = []
    for i in range(count):
        account = yield from ledger.open_account("user", 10_000_000 + i, "wallet", CURRENCY, now)
        ids.append(account)
    return ids


async def run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="wanglai-ledger-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        db = connect(url, write_process=args.write_process)
        await db.start()
        try:
            now = int(time.time() * 1000)
            await db.write(ledger.ensure_system, [CURRENCY], now)
            system = await db.read(ledger.system_accounts)
            bank = system[(ledger.BANK_CLEARING, CURRENCY)]
            wallets = await db.write(open_accounts, args.accounts, now)
            funding = [Request(bank, w, 1_000_000_000, CURRENCY, "topup") for w in wallets]
            await db.write(ledger.create_transfers, funding, now)

            rng = random.Random(7)
            pool = [
                [
                    Request(d, c, rng.randint(1, 10_000), CURRENCY, "transfer")
                    for d, c in (rng.sample(wallets, 2) for _ in range(args.batch))
                ]
                for _ in range(16)
            ]
            done = refused = batches = 0
            latencies: list[float] = []
            stop_at = 0.0

            async def worker(n: int) -> None:
                nonlocal done, refused, batches
                i = n
                while time.perf_counter() < stop_at:
                    batch = pool[i % len(pool)]
                    i += 1
                    started = time.perf_counter()
                    outcomes = await db.write(
                        ledger.create_transfers, batch, int(time.time() * 1000)
                    )
                    latencies.append(time.perf_counter() - started)
                    batches += 1
                    for outcome in outcomes:
                        if isinstance(outcome, rules.Transfer):
                            done += 1
                        else:
                            refused += 1

            stop_at = time.perf_counter() + args.warmup
            await asyncio.gather(*(worker(n) for n in range(args.inflight)))
            done = refused = batches = 0
            latencies.clear()
            started = time.perf_counter()
            stop_at = started + args.duration
            await asyncio.gather(*(worker(n) for n in range(args.inflight)))
            elapsed = time.perf_counter() - started

            accounts = await db.read(ledger.all_accounts)
            sums = rules.currency_sums(a for a, *_ in accounts)
            negative = sum(1 for a, kind, *_ in accounts if kind == "user" and a.balance < 0)
            latencies.sort()
            return {
                "transfers_per_s": round(done / elapsed),
                "transfers": done,
                "refused": refused,
                "batches": batches,
                "batch": args.batch,
                "inflight": args.inflight,
                "accounts": args.accounts,
                "seconds": round(elapsed, 2),
                "batch_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
                "batch_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
                "write_process": args.write_process,
                "sums_zero": all(v == 0 for v in sums.values()),
                "negative_wallets": negative,
            }
        finally:
            await db.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--batch", type=int, default=8190)
    parser.add_argument("--inflight", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--write-process", action="store_true")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
