"""Merchant endpoints over HTTP: bad input and other people's ids get a clear error and move
no money; the QR endpoint serves a PNG."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from .conftest import Api, User
from .shops import fund, open_shop


async def money(api: Api, owner: User, payer: User, merchant_id: int) -> tuple[int, int, int]:
    status, merchant = await api.call("GET", f"/v1/merchants/{merchant_id}", owner)
    assert status == 200, merchant
    balance = await api.container.wallet.balance(payer.id)
    _, statement = await api.call("GET", f"/v1/merchants/{merchant_id}/statement", owner)
    return merchant["balance"], balance.balance, len(statement["entries"])


def error(status: int, body: Any, expected_status: int, code: str | None = None) -> None:
    assert status == expected_status, body
    assert set(body) == {"error"} and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


async def test_qr_png_decodes(api: Api) -> None:
    owner, payer = await api.user(), await api.user()
    shop = await open_shop(api, owner, payer)
    path = f"/v1/merchants/{shop['merchant_id']}/codes/{shop['code_id']}/qr.png"
    status, png = await api.call("GET", path, owner)
    assert status == 200 and isinstance(png, bytes)
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.size[0] == image.size[1] >= 21 * 8
    # black and white modules, quiet zone white
    assert image.convert("L").getpixel((0, 0)) == 255
    assert {v for v in image.convert("L").getdata()} == {0, 255}
    status, body = await api.call("GET", path, payer)
    error(status, body, 404, "merchant_not_found")
    status, body = await api.call(
        "GET", f"/v1/merchants/{shop['merchant_id']}/codes/999999/qr.png", owner
    )
    error(status, body, 404, "code_not_found")


async def test_a_payer_sees_what_a_code_asks_for(api: Api) -> None:
    owner, payer = await api.user(), await api.user()
    shop = await open_shop(api, owner, payer)
    status, code = await api.call("GET", f"/v1/pay/codes/{shop['token']}", payer)
    assert status == 200
    assert (code["merchant"], code["amount"], code["kind"], code["state"]) == (
        "Shop",
        1000,
        "dynamic",
        "open",
    )
    assert code["expires_at"] == shop["dynamic"]["expires_at"]
    for token in ("A" * 24, "short", "wanglai:pay"):
        status, body = await api.call("GET", f"/v1/pay/codes/{token}", payer)
        error(status, body, 404, "unknown_code")


BAD_AMOUNTS = [0, -1, 1.5, "100", True, None, 10**14, 2**70, [1], {"fen": 1}]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
async def test_bad_amounts_are_refused_and_move_nothing(api: Api, amount: Any) -> None:
    owner, payer = await api.user(), await api.user()
    shop = await open_shop(api, owner, payer)
    before = await money(api, owner, payer, shop["merchant_id"])
    key = {"Idempotency-Key": f"bad-{amount!r}"}
    static = shop["static"]["token"]
    if amount is not None:  # a static code without an amount is its own error (below)
        status, body = await api.call(
            "POST", "/v1/pay", payer, json={"code": static, "amount": amount}, headers=key
        )
        error(status, body, 400)
    refund = f"/v1/merchants/{shop['merchant_id']}/payments/{shop['payment_id']}/refunds"
    status, body = await api.call("POST", refund, owner, json={"amount": amount}, headers=key)
    error(status, body, 400)
    status, body = await api.call(
        "POST", f"/v1/merchants/{shop['merchant_id']}/codes", owner, json={"amount": amount}
    )
    if amount is None:
        assert status == 201  # no amount: a static code
    else:
        error(status, body, 400)
    assert await money(api, owner, payer, shop["merchant_id"]) == before


async def test_pay_errors_are_clear_and_move_nothing(api: Api) -> None:
    owner, payer = await api.user(), await api.user()
    shop = await open_shop(api, owner, payer)
    before = await money(api, owner, payer, shop["merchant_id"])
    static, dynamic = shop["static"]["token"], shop["dynamic"]["token"]
    await api.container.wallet.set_pin(payer.id, "246810")
    cases = [
        ({"code": "A" * 24}, {"Idempotency-Key": "u"}, 404, "unknown_code"),
        ({"code": "nonsense"}, {"Idempotency-Key": "u"}, 404, "unknown_code"),
        ({"code": static}, {"Idempotency-Key": "s"}, 400, "amount_required"),
        ({"code": dynamic, "amount": 999}, {"Idempotency-Key": "d"}, 400, "amount_fixed"),
        ({"code": dynamic}, {}, 400, "idempotency_key_required"),
        (
            {"code": static, "amount": 10**6, "pin": "246810"},
            {"Idempotency-Key": "big"},
            403,
            "over_payment_limit",
        ),
        (
            {"code": static, "amount": 30_000, "pin": "000000"},
            {"Idempotency-Key": "wrong"},
            403,
            "wrong_pin",
        ),
        ({"code": static, "amount": 30_000}, {"Idempotency-Key": "pin"}, 400, "pin_required"),
        ({"code": static, "amount": 1, "tip": 5}, {"Idempotency-Key": "x"}, 400, "invalid_body"),
    ]
    for body, headers, status_expected, code in cases:
        status, answer = await api.call("POST", "/v1/pay", payer, json=body, headers=headers)
        error(status, answer, status_expected, code)
    assert await money(api, owner, payer, shop["merchant_id"]) == before
    # a payer with an empty wallet
    broke = await api.user()
    await fund(api, broke, 1)
    status, answer = await api.call(
        "POST", "/v1/pay", broke, json={"code": dynamic}, headers={"Idempotency-Key": "b"}
    )
    error(status, answer, 409, "insufficient_funds")
    assert await money(api, owner, payer, shop["merchant_id"]) == before
    # the owner may not pay their own code
    await fund(api, owner, 5_000)
    status, answer = await api.call(
        "POST", "/v1/pay", owner, json={"code": dynamic}, headers={"Idempotency-Key": "o"}
    )
    error(status, answer, 403, "own_merchant")


async def test_other_peoples_merchants_and_payments_are_not_found(api: Api) -> None:
    owner, payer, eve = await api.user(), await api.user(), await api.user()
    shop = await open_shop(api, owner, payer)
    eves = await open_shop(api, eve, await api.user())
    before = await money(api, owner, payer, shop["merchant_id"])
    m, p = shop["merchant_id"], shop["payment_id"]
    key = {"Idempotency-Key": "steal"}
    attempts = [
        ("GET", f"/v1/merchants/{m}", None, "merchant_not_found"),
        ("GET", f"/v1/merchants/{m}/statement", None, "merchant_not_found"),
        ("POST", f"/v1/merchants/{m}/codes", {"amount": 1}, "merchant_not_found"),
        ("POST", f"/v1/merchants/{m}/payments/{p}/refunds", {"amount": 1}, "merchant_not_found"),
        # eve's own merchant with owner's payment
        (
            "POST",
            f"/v1/merchants/{eves['merchant_id']}/payments/{p}/refunds",
            {"amount": 1},
            "payment_not_found",
        ),
    ]
    for method, path, body, code in attempts:
        for who in (eve, payer):
            status, answer = await api.call(method, path, who, json=body, headers=key)
            if who is payer and code == "payment_not_found":
                code = "merchant_not_found"
            error(status, answer, 404, code)
    status, mine = await api.call("GET", "/v1/merchants", eve)
    assert [x["id"] for x in mine] == [eves["merchant_id"]]
    assert await money(api, owner, payer, m) == before


async def test_refund_over_the_payment_is_refused(api: Api) -> None:
    owner, payer = await api.user(), await api.user()
    shop = await open_shop(api, owner, payer)
    path = f"/v1/merchants/{shop['merchant_id']}/payments/{shop['payment_id']}/refunds"
    before = await money(api, owner, payer, shop["merchant_id"])
    status, body = await api.call(
        "POST", path, owner, json={"amount": 1501}, headers={"Idempotency-Key": "over"}
    )
    error(status, body, 409, "refund_exceeds_payment")
    assert await money(api, owner, payer, shop["merchant_id"]) == before
    status, body = await api.call(
        "POST", path, owner, json={"amount": 1500}, headers={"Idempotency-Key": "rest"}
    )
    assert status == 201 and body["refundable"] == 0 and body["refunded"] == 2000
    assert body["fee_returned"] == 12 - 3  # fee 12 on 20.00; the first 5.00 returned 3
    merchant_balance, payer_balance, entries = await money(api, owner, payer, shop["merchant_id"])
    assert (merchant_balance, payer_balance, entries) == (0, 10_000, 3)
