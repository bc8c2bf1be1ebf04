"""kill -9 during a money load: no acknowledged transfer is lost, nothing is applied twice, and
the ledger check passes after the restart."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from .conftest import Server, database_for
from .test_crash import login

LOAD = Path(__file__).with_name("load_payer.py")
PAYERS = 8
FUNDS = 1_000_000
"""Fen credited to each person before the load: 10,000.00."""


@pytest.fixture(params=["sqlite", "postgres"])
def e2e_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from database_for(request, request.param)


async def call(
    http: aiohttp.ClientSession,
    server: Server,
    method: str,
    path: str,
    token: str,
    body: object = None,
    key: str | None = None,
) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    async with http.request(method, server.base_url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


async def test_kill_9_during_transfers_loses_nothing_and_doubles_nothing(
    server: Server, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        people = [await login(http, server, f"+861370000{i:04d}") for i in range(PAYERS)]
        for i, person in enumerate(people):
            status, body = await call(
                http,
                server,
                "PATCH",
                "/v1/wallet/settings",
                str(person["token"]),
                {"strangers": True, "pin_free_limit": 10_000},
            )
            assert status == 200, body
            server.credit(f"+861370000{i:04d}", FUNDS)
        plan = [
            {
                "id": p["id"],
                "token": p["token"],
                "to": people[(i + 1) % PAYERS]["id"],
                "to_token": people[(i + 1) % PAYERS]["token"],
            }
            for i, p in enumerate(people)
        ]
        plan_path, log_path = tmp_path / "plan.json", tmp_path / "money.log"
        plan_path.write_text(json.dumps(plan))
        load = await asyncio.create_subprocess_exec(
            sys.executable, str(LOAD), server.base_url, str(plan_path), str(log_path)
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if log_path.exists() and len(log_path.read_text().splitlines()) >= 600:
                    break
            server.kill()  # SIGKILL in the middle of the load
            await asyncio.wait_for(load.wait(), 30)
        finally:
            if load.returncode is None:
                load.kill()
                await load.wait()
        lines = [line.split() for line in log_path.read_text().splitlines()]
        made = [x for x in lines if x[0] == "T"]
        accepted = {int(x[1]) for x in lines if x[0] == "A"}
        assert len(made) >= 200, "the load did not get going: " + server.log()[-3000:]

        server.start()
        check = server.admin("ledger", "check")
        assert check.returncode == 0, check.stdout + check.stderr

        tokens = {int(p["id"]): str(p["token"]) for p in people}  # type: ignore[call-overload]
        to = {int(p["id"]): int(p["to"]) for p in plan}  # type: ignore[call-overload]
        for _t, payer, key, transfer_id, amount in made:
            uid = int(payer)
            status, body = await call(
                http, server, "GET", f"/v1/wallet/transfers/{transfer_id}", tokens[uid]
            )
            assert status == 200, f"acknowledged transfer {transfer_id} lost: {body}"
            assert body["amount"] == int(amount)
            if int(transfer_id) in accepted:
                assert body["state"] == "accepted", body
            # the same request again is answered from the first result, not applied twice
            status, again = await call(
                http,
                server,
                "POST",
                "/v1/wallet/transfers",
                tokens[uid],
                {"to": to[uid], "amount": int(amount), "note": "crash"},
                key,
            )
            assert status in (200, 201) and again["id"] == int(transfer_id), again

        # money is conserved: what was credited is all still in the wallets
        total = 0
        for person in people:
            status, wallet = await call(http, server, "GET", "/v1/wallet", str(person["token"]))
            assert status == 200
            assert wallet["available"] >= 0  # type: ignore[operator]
            total += int(wallet["balance"])  # type: ignore[call-overload]
        assert total == FUNDS * PAYERS
        check = server.admin("ledger", "check")
        assert check.returncode == 0, check.stdout + check.stderr
