"""Phone-bill top-ups through the operator's carrier-billing API, against the operator SANDBOX
on a real loopback socket: OAuth2 tokens, one-step and two-step payments, notifications to our
sink, the operator's monthly cap, denials, timeouts and retries with the same correlator."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest

from wanglai.carrier import billing
from wanglai.carrier.billing import BillingClient
from wanglai.domain.errors import Invalid
from wanglai.partners.http import Refused
from wanglai.sandbox.operator import API, Payment
from wanglai.store import ledger

from .conftest import Api, User
from .test_funding import clearing, event_kinds, order, settled, until, wallet

COMPLETED = "org.camaraproject.carrier-billing.v0.payment-completed"
DENIED = "org.camaraproject.carrier-billing.v0.payment-denied"
NOTIFICATIONS = "/v1/partners/operator/notifications"
_keys = itertools.count(1)


async def topup(
    api: Api, user: User, amount: int, key: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Idempotency-Key": key or f"cb{next(_keys)}"}
    return await api.call(  # type: ignore[return-value]
        "POST",
        "/v1/wallet/topups",
        user,
        json={"channel": "carrier", "amount": amount},
        headers=headers,
    )


def payment_of(api: Api, order_id: int) -> Payment:
    [found] = [
        p for p in api.operator.payments.values() if p.reference == f"wanglai-topup-{order_id}"
    ]
    return found


def client(api: Api) -> BillingClient:
    return api.container.funding.billing  # type: ignore[no-any-return]


# ---------------------------------------------------------------- outcomes


async def test_a_synchronous_payment_is_applied_with_the_answer(api: Api) -> None:
    alice = await api.user()
    api.operator.mode = "sync"
    status, made = await topup(api, alice, 1234)
    assert status == 201, made
    assert (
        made["state"] == "succeeded"
        and made["partner_ref"] == payment_of(api, made["id"]).payment_id
    )
    assert await wallet(api, alice) == (1234, 1234)
    assert await clearing(api, ledger.OPERATOR_CLEARING) == -1234
    assert api.operator.notifications == []


async def test_a_denied_payment_fails_the_order_and_voids_the_reservation(api: Api) -> None:
    alice = await api.user()
    api.operator.mode, api.operator.delay_ms = "deny", 30
    status, made = await topup(api, alice, 2000)
    assert (status, made["state"]) == (201, "pending"), made
    done = await settled(api, alice, made["id"])
    assert (done["state"], done["failure"]) == ("failed", "payment_denied")
    assert done["transfer_id"] is not None  # the void of the reservation
    assert payment_of(api, made["id"]).status == "denied"
    assert [n[1:] for n in api.operator.notifications] == [(DENIED, 204)]
    assert await wallet(api, alice) == (0, 0)
    assert await clearing(api, ledger.OPERATOR_CLEARING) == 0
    # a failed top-up does not count against the wallet's own monthly cap
    api.operator.mode = "ok"
    status, made = await topup(api, alice, 30_000)
    assert status == 201, made


async def test_the_operators_monthly_cap_per_number_refuses_the_payment(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    api.operator.monthly_cap = Decimal("100.00")
    status, first = await topup(api, alice, 8000)
    assert status == 201
    assert (await settled(api, alice, first["id"]))["state"] == "succeeded"
    status, answer = await topup(api, alice, 2001)
    assert (status, answer["error"]["code"]) == (409, "partner_declined"), answer
    assert "user_amount_threshold_overpassed" in answer["error"]["message"]
    _, page = await api.call("GET", "/v1/wallet/funding", alice)
    newest = page["orders"][0]
    assert (newest["state"], newest["failure"]) == ("failed", "user_amount_threshold_overpassed")
    assert len(api.operator.payments) == 1
    assert await wallet(api, alice) == (8000, 8000)
    # what is left still goes through, and another number has its own cap
    status, made = await topup(api, alice, 2000)
    assert status == 201, made
    status, made = await topup(api, bob, 10_000)
    assert status == 201, made


async def test_a_timed_out_payment_is_found_by_its_correlator(api: Api) -> None:
    alice = await api.user()
    api.operator.mode, api.operator.delay_ms = "timeout", 20_000
    api.container.funding.http.timeout_s = 0.2
    status, made = await topup(api, alice, 3300)
    assert status == 201, made
    assert (made["state"], made["partner_ref"]) == ("pending", None)
    charged = payment_of(api, made["id"])
    assert charged.status == "succeeded"  # the operator took it; our answer was lost
    assert await wallet(api, alice) == (0, 0)
    api.clock.advance(api.container.settings.reconcile_after_s + 1)
    assert await api.container.funding.reconcile() == 1
    done = await order(api, alice, made["id"])
    assert (done["state"], done["partner_ref"]) == ("succeeded", charged.payment_id)
    assert await wallet(api, alice) == (3300, 3300)
    assert await api.container.funding.reconcile() == 0
    assert await wallet(api, alice) == (3300, 3300)


async def test_a_retry_after_a_timeout_reuses_the_correlator_and_charges_once(api: Api) -> None:
    alice = await api.user()
    api.operator.mode, api.operator.delay_ms = "timeout", 20_000
    api.container.funding.http.timeout_s = 0.2
    status, made = await topup(api, alice, 4400, key="retry-me")
    assert (status, made["state"]) == (201, "pending"), made
    api.operator.mode = "ok"
    api.container.funding.http.timeout_s = 10
    status, again = await topup(api, alice, 4400, key="retry-me")
    assert status == 201, again
    assert again["id"] == made["id"] and again["state"] == "succeeded"
    [charged] = api.operator.payments.values()
    assert charged.correlator == f"wanglai-{made['id']}-{made['created_at']}"
    assert again["partner_ref"] == charged.payment_id
    status, third = await topup(api, alice, 4400, key="retry-me")
    assert (status, third["state"]) == (201, "succeeded")
    assert len(api.operator.payments) == 1
    assert await wallet(api, alice) == (4400, 4400)
    assert (await event_kinds(api, alice)).count("wallet.movement") == 2  # reserve, post


async def test_a_duplicate_notification_is_applied_once(api: Api) -> None:
    alice = await api.user()
    api.operator.mode = "duplicate_callback"
    status, made = await topup(api, alice, 1000)
    assert status == 201
    await until(lambda: len(api.operator.notifications) == 2)
    assert [n[1:] for n in api.operator.notifications] == [(COMPLETED, 204)] * 2
    assert (await order(api, alice, made["id"]))["state"] == "succeeded"
    assert await wallet(api, alice) == (1000, 1000)
    assert (await event_kinds(api, alice)).count("wallet.movement") == 2


# ---------------------------------------------------------------- tokens


async def test_the_token_is_reused_until_it_expires_then_fetched_again(api: Api) -> None:
    alice = await api.user()
    api.operator.mode = "sync"
    tokens = client(api).tokens
    for _ in range(3):
        status, _made = await topup(api, alice, 100)
        assert status == 201
    assert (tokens.fetched, api.operator.tokens_issued) == (1, 1)
    api.clock.advance(api.operator.token_ttl_s)  # expired by the operator's clock and ours
    status, made = await topup(api, alice, 100)
    assert (status, made["state"]) == (201, "succeeded")
    assert (tokens.fetched, api.operator.tokens_issued) == (2, 2)


async def test_a_refused_token_is_replaced_and_the_call_retried(api: Api) -> None:
    alice = await api.user()
    api.operator.mode = "sync"
    status, _made = await topup(api, alice, 100)
    assert status == 201
    async with aiohttp.ClientSession() as http:
        base = api.container.settings.operator_billing_url.removesuffix(API)
        async with http.post(f"{base}/sandbox/tokens/revoke") as resp:
            assert (await resp.json())["revoked"] == 1
    status, made = await topup(api, alice, 100)
    assert (status, made["state"]) == (201, "succeeded"), made
    assert api.operator.tokens_issued == 2
    assert len(api.operator.payments) == 2
    assert await wallet(api, alice) == (200, 200)


async def test_wrong_client_credentials_fail_the_order_and_charge_nothing(api: Api) -> None:
    alice = await api.user()
    client(api).tokens.client_secret = "not-the-secret"
    status, answer = await topup(api, alice, 100)
    assert (status, answer["error"]["code"]) == (409, "partner_declined"), answer
    assert "invalid_client" in answer["error"]["message"]
    assert api.operator.payments == {} and api.operator.tokens_issued == 0
    assert await wallet(api, alice) == (0, 0)
    assert await clearing(api, ledger.OPERATOR_CLEARING) == 0


# ---------------------------------------------------------------- the client, two steps


async def test_two_step_payments_prepare_then_confirm_or_cancel(api: Api) -> None:
    bill = client(api)
    phone = "+8613800138000"
    reserved = await bill.prepare_payment(phone, 990, "CNY", "test", "ref-1", "two-1")
    assert (reserved.status, reserved.amount, reserved.phone) == ("reserved", 990, phone)
    await bill.confirm_payment(reserved.payment_id, phone)
    found = await bill.payment(reserved.payment_id)
    assert found is not None and found.status == "succeeded"
    with pytest.raises(Refused) as again:
        await bill.confirm_payment(reserved.payment_id, phone)
    assert again.value.reason == "payment_confirmed"

    other = await bill.prepare_payment(phone, 500, "CNY", "test", "ref-2", "two-2")
    await bill.cancel_payment(other.payment_id, phone)
    found = await bill.payment(other.payment_id)
    assert found is not None and found.status == "cancelled"
    with pytest.raises(Refused) as late:
        await bill.confirm_payment(other.payment_id, phone)
    assert late.value.reason == "payment_cancelled"
    # the cancelled reservation no longer counts against the number's cap
    api.operator.monthly_cap = Decimal("10.00")
    third = await bill.prepare_payment(phone, 10, "CNY", "test", "ref-3", "two-3")
    assert third.status == "reserved"
    assert await bill.payment("no-such-payment") is None
    by_correlator = await bill.payment_by_correlator("two-1")
    assert by_correlator is not None
    assert (by_correlator.payment_id, by_correlator.status) == (reserved.payment_id, "succeeded")
    assert await bill.payment_by_correlator("never-sent") is None


async def test_a_reused_correlator_with_another_amount_is_refused(api: Api) -> None:
    bill = client(api)
    api.operator.mode = "sync"
    first = await bill.create_payment("+8613800138001", 100, "CNY", "t", "r", "same-1")
    again = await bill.create_payment("+8613800138001", 100, "CNY", "t", "r", "same-1")
    assert again.payment_id == first.payment_id
    with pytest.raises(Refused) as refused:
        await bill.create_payment("+8613800138001", 101, "CNY", "t", "r", "same-1")
    assert refused.value.reason == "invalid_argument"
    assert len(api.operator.payments) == 1


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("phone", "amount", "currency", "code"),
    [
        ("8613800138000", 100, "CNY", "invalid_phone"),
        ("+0861380013800", 100, "CNY", "invalid_phone"),
        ("+86 138 0013 8000", 100, "CNY", "invalid_phone"),
        ("+8613800138000", 0, "CNY", "invalid_amount"),
        ("+8613800138000", -100, "CNY", "invalid_amount"),
        ("+8613800138000", 10**14, "CNY", "invalid_amount"),
        ("+8613800138000", 100, "XXX", "unsupported_currency"),
    ],
)
async def test_the_client_refuses_bad_input_before_sending(
    api: Api, phone: str, amount: int, currency: str, code: str
) -> None:
    with pytest.raises(Invalid) as refused:
        await client(api).create_payment(phone, amount, currency, "t", "r", "bad-1")
    assert refused.value.code == code
    assert api.operator.payments == {} and api.operator.tokens_issued == 0


def body(**changes: Any) -> dict[str, Any]:
    charging: dict[str, Any] = {"amount": 10, "currency": "CNY", "description": "t"}
    transaction: dict[str, Any] = {
        "phoneNumber": "+8613800138000",
        "paymentAmount": {"chargingInformation": charging},
        "referenceCode": "ref",
        "clientCorrelator": "c-1",
    }
    for key, value in changes.items():
        (charging if key in charging else transaction)[key] = value
    return {"amountTransaction": transaction}


BAD_BODIES: list[tuple[Any, str]] = [
    (body(phoneNumber="8613800138000"), "phoneNumber"),
    (body(phoneNumber="+8613"), "phoneNumber"),
    (body(phoneNumber=8613800138000), "phoneNumber"),
    (body(amount=0), "amount"),
    (body(amount=-5), "amount"),
    (body(amount="abc"), "amount"),
    (body(amount=1.001), "decimals"),
    (body(amount=True), "amount"),
    (body(amount="NaN"), "amount"),
    (body(amount="Infinity"), "amount"),
    (body(amount=10**9), "amount"),
    (body(currency="XXX"), "Currency"),
    (body(description=""), "description"),
    (body(clientCorrelator="no spaces allowed"), "clientCorrelator"),
    ({"amountTransaction": []}, "amountTransaction"),
    ([], "JSON object"),
    ({**body(), "sink": "ftp://x"}, "sink"),
    ({**body(), "sink": "http://x", "sinkCredential": {"credentialType": "PLAIN"}}, "Access token"),
]


async def test_the_operator_sandbox_answers_bad_requests_clearly(api: Api) -> None:
    url = api.container.settings.operator_billing_url + "/payments"
    token = await client(api).tokens.token()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        for bad, words in BAD_BODIES:
            async with http.post(url, data=msgspec.json.encode(bad), headers=auth) as resp:
                answer = await resp.json()
                assert resp.status == 400, (bad, answer)
                assert resp.headers["X-Sandbox"] == "true"
            assert answer["code"] in ("INVALID_ARGUMENT", "INVALID_CREDENTIAL"), answer
            assert words.lower() in (answer["code"] + answer["message"]).lower(), (bad, answer)
        async with http.post(url, data=b"{not json", headers=auth) as resp:
            assert resp.status == 400
        async with http.post(url, json=body()) as resp:  # no token
            assert (resp.status, (await resp.json())["code"]) == (401, "UNAUTHENTICATED")
        async with http.post(url, json=body(), headers={"Authorization": "Bearer forged"}) as resp:
            assert resp.status == 401
        token_url = client(api).tokens.url
        async with http.post(token_url, data={"grant_type": "client_credentials"}) as resp:
            assert (resp.status, (await resp.json())["error"]) == (401, "invalid_client")
        basic = aiohttp.BasicAuth("wanglai", api.container.settings.operator_client_secret)
        async with http.post(token_url, data={"grant_type": "password"}, auth=basic) as resp:
            assert (resp.status, (await resp.json())["error"]) == (400, "unsupported_grant_type")
    assert api.operator.payments == {}


# ---------------------------------------------------------------- our notification sink


def event(payment_id: str, kind: str = COMPLETED, status: str = "succeeded") -> dict[str, Any]:
    return {
        "id": "e1",
        "source": "urn:test",
        "type": kind,
        "specversion": "1.0",
        "time": "2024-05-01T00:00:00Z",
        "data": {"paymentId": payment_id, "status": status, "description": "x"},
    }


async def test_notifications_need_the_orders_sink_token(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    api.operator.mode = "no_callback"
    _, made = await topup(api, alice, 700)
    _, other = await topup(api, bob, 800)
    await until(lambda: payment_of(api, made["id"]).status == "succeeded")
    pid = payment_of(api, made["id"]).payment_id
    secret = api.container.settings.operator_sink_secret
    cases = [
        ({}, 401, "sink_token_invalid"),
        ({"Authorization": "Bearer x"}, 401, "sink_token_invalid"),
        ({"Authorization": f"Bearer {made['id']}.forged"}, 401, "sink_token_invalid"),
        (
            {"Authorization": f"Bearer {billing.sink_token('other-secret', made['id'])}"},
            401,
            "sink_token_invalid",
        ),
        # bob's order's token, telling of alice's payment: not its payment
        (
            {"Authorization": f"Bearer {billing.sink_token(secret, other['id'])}"},
            409,
            "partner_ref_mismatch",
        ),
    ]
    for headers, status, code in cases:
        got, answer = await api.call("POST", NOTIFICATIONS, json=event(pid), headers=headers)
        assert (got, answer["error"]["code"]) == (status, code), answer
    own = {"Authorization": f"Bearer {billing.sink_token(secret, made['id'])}"}
    got, answer = await api.call(
        "POST", NOTIFICATIONS, json=event(pid, kind="com.example.other"), headers=own
    )
    assert (got, answer["error"]["code"]) == (400, "invalid_event_type")
    got, answer = await api.call("POST", NOTIFICATIONS, json=event("p\x00x"), headers=own)
    assert (got, answer["error"]["code"]) == (400, "invalid_text")
    assert (await order(api, alice, made["id"]))["state"] == "pending"
    assert (await order(api, bob, other["id"]))["state"] == "pending"
    assert await wallet(api, alice) == (0, 0)
    # the genuine one settles the order; a replay, or a contradicting one, changes nothing
    for kind, status in ((COMPLETED, "succeeded"), (COMPLETED, "succeeded"), (DENIED, "failed")):
        got, _ = await api.call("POST", NOTIFICATIONS, json=event(pid, kind, status), headers=own)
        assert got == 204
    assert (await order(api, alice, made["id"]))["state"] == "succeeded"
    assert await wallet(api, alice) == (700, 700)
    assert (await order(api, bob, other["id"]))["state"] == "pending"
