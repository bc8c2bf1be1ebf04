"""The whole app served in-process on a real loopback socket, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from wanglai.app import Container, make_app
from wanglai.bus.local import LocalBus
from wanglai.domain.clock import ManualClock
from wanglai.domain.ledger import Request
from wanglai.gateway.metering import MeteredRunner
from wanglai.sandbox.bank import bank as bank_sandbox
from wanglai.sandbox.operator import API as OPERATOR_API
from wanglai.sandbox.operator import OperatorSandbox
from wanglai.sandbox.partner import Sandbox
from wanglai.settings import Settings
from wanglai.store import ledger
from wanglai.store import wallet as wallet_store
from wanglai.store.sql import Op

from ..integration.conftest import RecordingSms


@dataclass
class User:
    id: int
    phone: str
    token: str
    device_id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Api:
    server: TestServer
    http: aiohttp.ClientSession
    container: Container
    clock: ManualClock
    sms: RecordingSms
    bank: Sandbox
    """The bank gateway SANDBOX the wallet talks to (switch its mode in a test)."""
    operator: OperatorSandbox
    """The operator's carrier-billing SANDBOX (token endpoint and payments API)."""
    _phone: int = 13700000000
    users: list[User] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def call(
        self,
        method: str,
        path: str,
        user: User | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        hdrs = dict(user.auth if user else {})
        hdrs.update(headers or {})
        async with self.http.request(
            method, self.url(path), json=json, data=data, headers=hdrs
        ) as resp:
            body = await resp.read()
            if resp.content_type == "application/json" and body:
                import json as jsonlib

                return resp.status, jsonlib.loads(body)
            return resp.status, body

    async def user(self, dm_policy: str = "anyone") -> User:
        self._phone += 1
        phone = f"+86{self._phone}"
        status, _ = await self.call("POST", "/v1/auth/code", json={"phone": phone})
        assert status == 200
        status, body = await self.call(
            "POST",
            "/v1/auth/login",
            json={"phone": phone, "code": self.sms.last_code(phone), "device_name": "t"},
        )
        assert status == 200, body
        user = User(body["user"]["id"], phone, body["token"], body["device_id"])
        status, _ = await self.call("PATCH", "/v1/me", user, json={"dm_policy": dm_policy})
        assert status == 200
        self.users.append(user)
        return user

    async def fund(self, user: User | int, amount: int, pin_free: int = 0) -> None:
        """Money in a user's wallet as a bank top-up would put it (straight into the ledger),
        and optionally a PIN-free amount so that payments up to it need no PIN."""
        user_id = user if isinstance(user, int) else user.id
        wallet = self.container.wallet
        bank = wallet.system_account(ledger.BANK_CLEARING)

        def op(now: int) -> Op[None]:
            found = yield from wallet_store.open_wallet(user_id, wallet.currency, now)
            yield from ledger.apply([Request(bank, found.account_id, amount, "CNY", "topup")], now)

        await self.container.db.write(op, self.clock.now_ms())
        if pin_free:
            await wallet.update_settings(user_id, None, pin_free)

    async def ws(self, user: User) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.url("/v1/ws"), headers=user.auth)
        hello = await ws.receive_json(timeout=5)
        assert hello["t"] == "hello"
        return ws


class MeteredTestServer(TestServer):
    """The app served as ``wanglai serve`` serves it: connections count their bytes."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return MeteredRunner(self.app, **kwargs)


@pytest.fixture
def api_settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        code_pepper=b"p",
        otp_sends_per_address=1000,
        otp_sends_per_prefix=1000,
    )


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[Api]:
    clock = ManualClock()
    sms = RecordingSms()
    # The partner SANDBOXES on their own loopback sockets, signing with the same manual clock.
    bank = bank_sandbox(api_settings.bank_secret, clock)
    operator = OperatorSandbox(
        api_settings.operator_client_id, api_settings.operator_client_secret, clock
    )
    partners = [TestServer(bank.make_app(), host="127.0.0.1")]
    partners.append(TestServer(operator.make_app(), host="127.0.0.1"))
    for partner in partners:
        await partner.start_server()
    api_settings.bank_url = str(partners[0].make_url(""))
    api_settings.operator_billing_url = str(partners[1].make_url(OPERATOR_API))
    container = Container(api_settings, clock=clock, bus=LocalBus(), sms=sms)
    server = MeteredTestServer(make_app(container), host="127.0.0.1")
    await server.start_server()
    container.settings.callback_base_url = str(server.make_url(""))
    async with aiohttp.ClientSession() as http:
        yield Api(server, http, container, clock, sms, bank, operator)
    await server.close()
    for partner in partners:
        await partner.close()
