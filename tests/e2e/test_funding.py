"""Funding across real processes: ``wanglai serve``, the bank SANDBOX (``wanglai sandbox bank``,
signed HTTP) and the operator SANDBOX (``wanglai operator-sandbox``, OAuth2 and a CAMARA-style
payments API), each its own process, talking to each other over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .conftest import Server, free_port

BANK_SECRET = "e2e-bank-secret"
OPERATOR_SECRET = "e2e-operator-secret"


class SandboxProcess:
    def __init__(self, command: list[str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wanglai", *command, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = log

    def wait_ready(self) -> None:
        import urllib.request

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"sandbox not ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def funded_server(tmp_path: Path, e2e_database_url: str) -> Iterator[tuple[Server, Any, Any]]:
    bank = SandboxProcess(["sandbox", "bank", "--secret", BANK_SECRET], tmp_path / "bank.log")
    billing = SandboxProcess(
        ["operator-sandbox", "--client-secret", OPERATOR_SECRET], tmp_path / "operator.log"
    )
    server = Server(tmp_path / "data", e2e_database_url)
    server.env.update(
        WANGLAI_BANK_URL=bank.url,
        WANGLAI_BANK_SECRET=BANK_SECRET,
        WANGLAI_OPERATOR_BILLING_URL=f"{billing.url}/carrier-billing/v0.4",
        WANGLAI_OPERATOR_CLIENT_SECRET=OPERATOR_SECRET,
        WANGLAI_RECONCILE_INTERVAL_S="0.2",
        WANGLAI_RECONCILE_AFTER_S="0",
    )
    try:
        bank.wait_ready()
        billing.wait_ready()
        server.start()
        yield server, bank, billing
    finally:
        server.stop()
        bank.stop()
        billing.stop()


async def login(http: aiohttp.ClientSession, server: Server, phone: str) -> dict[str, str]:
    async with http.post(f"{server.base_url}/v1/auth/code", json={"phone": phone}) as resp:
        assert resp.status == 200
    body = {"phone": phone, "code": server.code_for(phone), "device_name": "e2e"}
    async with http.post(f"{server.base_url}/v1/auth/login", json=body) as resp:
        assert resp.status == 200
        token = (await resp.json())["token"]
    return {"Authorization": f"Bearer {token}"}


async def settled(
    http: aiohttp.ClientSession, server: Server, auth: dict[str, str], order_id: int
) -> dict[str, Any]:
    for _ in range(500):
        async with http.get(f"{server.base_url}/v1/wallet/funding/{order_id}", headers=auth) as r:
            found: dict[str, Any] = await r.json()
        if found["state"] != "pending":
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"order {order_id} stayed pending")


async def test_top_ups_through_sandbox_processes(funded_server: tuple[Server, Any, Any]) -> None:
    server, bank, billing = funded_server
    async with aiohttp.ClientSession() as http:
        auth = await login(http, server, "+8613912340001")

        async def topup(key: str, **body: Any) -> tuple[int, Any]:
            headers = {**auth, "Idempotency-Key": key}
            async with http.post(
                f"{server.base_url}/v1/wallet/topups", json=body, headers=headers
            ) as resp:
                return resp.status, await resp.json()

        status, made = await topup("a", channel="carrier", amount=2000)
        assert status == 201, made
        assert (await settled(http, server, auth, made["id"]))["state"] == "succeeded"
        async with http.get(f"{billing.url}/") as resp:
            about = await resp.json()
        assert resp.headers["X-Sandbox"] == "true" and "SANDBOX" in about["note"]

        async with http.post(f"{bank.url}/sandbox/mode", json={"mode": "decline"}) as resp:
            assert (await resp.json())["mode"] == "decline"
        status, made = await topup("b", channel="bank", amount=500, card="4242424242424242")
        assert status == 201, made
        done = await settled(http, server, auth, made["id"])
        assert (done["state"], done["failure"]) == ("failed", "card_declined")

        # No callback: the server's own reconciliation loop asks the sandbox and settles it.
        async with http.post(f"{bank.url}/sandbox/mode", json={"mode": "no_callback"}) as resp:
            assert resp.status == 200
        status, made = await topup("c", channel="bank", amount=700, card="4242424242424242")
        assert status == 201, made
        assert (await settled(http, server, auth, made["id"]))["state"] == "succeeded"

        # The operator sandbox gone: a clear error, and the order failed.
        billing.stop()
        status, answer = await topup("d", channel="carrier", amount=100)
        assert (status, answer["error"]["code"]) == (503, "partner_unavailable")

        async with http.get(f"{server.base_url}/v1/wallet/funding", headers=auth) as resp:
            page = await resp.json()
        assert [o["state"] for o in page["orders"]] == [
            "failed",
            "succeeded",
            "failed",
            "succeeded",
        ]
