"""Many requests spending one balance at once — transfers, red packets and shop payments
through the public API on real sockets — never overdraw it, and the ledger stays consistent."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from wanglai.services.ledger_check import check_ledger

from .conftest import Api, User

_keys = itertools.count()
AMOUNT = 300
FUNDS = 10_000


async def befriend(api: Api, a: User, b: User) -> None:
    _, req = await api.call("POST", "/v1/friends/requests", a, json={"user_id": b.id})
    status, _ = await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", b)
    assert status == 200


async def post(api: Api, user: User, path: str, body: Any) -> tuple[int, Any]:
    return await api.call(
        "POST", path, user, json=body, headers={"Idempotency-Key": f"c{next(_keys)}"}
    )


async def test_concurrent_spending_of_one_balance_never_overdraws(api: Api) -> None:
    payer, bob, carol = await api.user(), await api.user(), await api.user()
    await befriend(api, payer, bob)
    await befriend(api, payer, carol)
    _, group = await api.call(
        "POST", "/v1/groups", payer, json={"title": "g", "members": [bob.id, carol.id]}
    )
    _, shop = await api.call("POST", "/v1/merchants", carol, json={"name": "Shop"})
    _, code = await api.call("POST", f"/v1/merchants/{shop['id']}/codes", carol, json={})
    await api.fund(payer, FUNDS, pin_free=20_000)

    calls = []
    for _ in range(30):
        calls.append(post(api, payer, "/v1/wallet/transfers", {"to": bob.id, "amount": AMOUNT}))
    for _ in range(20):
        body = {"conv": group["id"], "kind": "lucky", "amount": AMOUNT, "shares": 2}
        calls.append(post(api, payer, "/v1/redpackets", body))
    for _ in range(20):
        calls.append(post(api, payer, "/v1/pay", {"code": code["uri"], "amount": AMOUNT}))
    outcomes = await asyncio.gather(*calls)

    paid = [body for status, body in outcomes if status in (200, 201)]
    refused = [body["error"]["code"] for status, body in outcomes if status not in (200, 201)]
    assert len(paid) == FUNDS // AMOUNT  # 33 fit, 37 do not
    assert set(refused) == {"insufficient_funds"}
    wallet = await api.container.wallet.balance(payer.id)
    # transfers stay pending (reserved) until bob accepts: the balance counts them, available not
    assert wallet.available == FUNDS - len(paid) * AMOUNT
    assert wallet.available >= 0
    audit = await check_ledger(api.container.db)
    assert audit.ok, audit.breaches
