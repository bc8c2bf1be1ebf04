"""A separate load process for the money crash test: transfers as fast as answers come back.

Usage: python load_payer.py BASE_URL PLAN_JSON LOG
PLAN_JSON lists payers ``{"id", "token", "to", "to_token"}``. Each payer sends transfers to
``to`` (idempotency key ``u<id>-<n>``), and the receiver accepts every other one. A line goes to
LOG (flushed) only after the server answered 2xx, so every line is something it promised:
``T <payer> <key> <transfer id> <amount>`` for a transfer, ``A <transfer id>`` for an accept.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import IO, Any

import aiohttp


async def payer(http: aiohttp.ClientSession, base: str, me: dict[str, Any], log: IO[str]) -> None:
    auth = {"Authorization": f"Bearer {me['token']}"}
    receiver = {"Authorization": f"Bearer {me['to_token']}"}
    n = 0
    while True:
        n += 1
        key = f"u{me['id']}-{n}"
        amount = n % 97 + 1
        async with http.post(
            f"{base}/v1/wallet/transfers",
            json={"to": me["to"], "amount": amount, "note": "crash"},
            headers={**auth, "Idempotency-Key": key},
        ) as r:
            if r.status not in (200, 201):
                await asyncio.sleep(0.01)
                continue
            body = await r.json()
        log.write(f"T {me['id']} {key} {body['id']} {amount}\n")
        log.flush()
        if n % 2 == 0:
            async with http.post(
                f"{base}/v1/wallet/transfers/{body['id']}/accept",
                headers={**receiver, "Idempotency-Key": f"accept-{body['id']}"},
            ) as r:
                if r.status in (200, 201):
                    log.write(f"A {body['id']}\n")
                    log.flush()


async def main(base: str, plan: list[dict[str, Any]], log: IO[str]) -> None:
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(
            *(payer(http, base, me, log) for me in plan), return_exceptions=True
        )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
            result, (aiohttp.ClientError, ConnectionError, asyncio.CancelledError)
        ):
            raise result


if __name__ == "__main__":
    with open(sys.argv[3], "a", encoding="utf-8") as out:
        plan = json.loads(Path(sys.argv[2]).read_text())
        asyncio.run(main(sys.argv[1], plan, out))
