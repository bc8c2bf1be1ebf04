"""A merchant with codes, a payment and a refund, made through the API, for the API tests that
need real merchant objects (authorization sweep, fuzzing, merchant tests)."""

from __future__ import annotations

from typing import Any

from .conftest import Api, User


async def fund(api: Api, user: User, amount: int, pin_free: int = 20_000) -> None:
    """Money in the user's wallet, payable without a PIN up to ``pin_free``."""
    await api.fund(user.id, amount, pin_free=pin_free)


async def open_shop(api: Api, owner: User, payer: User) -> dict[str, Any]:
    """The owner's merchant, a dynamic and a static code, and a payment by ``payer`` (funded
    here) with a partial refund: the ids by their path names, and the objects."""
    status, merchant = await api.call("POST", "/v1/merchants", owner, json={"name": "Shop"})
    assert status == 201, merchant
    base = f"/v1/merchants/{merchant['id']}"
    status, dynamic = await api.call("POST", f"{base}/codes", owner, json={"amount": 1000})
    assert status == 201, dynamic
    status, static = await api.call("POST", f"{base}/codes", owner, json={})
    assert status == 201, static
    await fund(api, payer, 10_000)
    status, payment = await api.call(
        "POST",
        "/v1/pay",
        payer,
        json={"code": static["uri"], "amount": 2000},
        headers={"Idempotency-Key": "shop-pay"},
    )
    assert status == 201, payment
    status, refund = await api.call(
        "POST",
        f"{base}/payments/{payment['id']}/refunds",
        owner,
        json={"amount": 500},
        headers={"Idempotency-Key": "shop-refund"},
    )
    assert status == 201, refund
    return {
        "merchant_id": merchant["id"],
        "code_id": dynamic["id"],
        "payment_id": payment["id"],
        "token": dynamic["token"],
        "merchant": merchant,
        "dynamic": dynamic,
        "static": static,
        "payment": payment,
    }
