"""Top-ups and withdrawals through the partner SANDBOXES on real loopback sockets: the wallet's
own code paths (signed requests, signed callbacks, reconciliation), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from tests.e2e.conftest import free_port
from wanglai.partners import signing
from wanglai.sandbox.operator import Payment
from wanglai.store import funding as funding_store
from wanglai.store import ledger
from wanglai.store.sql import Op, scalar

from ..waiting import until
from .conftest import Api, User

CARD = "4242 4242 4242 4242"
ACCOUNT = "6222020200112233445"
PIN = "135790"
_keys = itertools.count(1)


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k{next(_keys)}"}


async def topup(api: Api, user: User, **body: Any) -> tuple[int, Any]:
    return await api.call("POST", "/v1/wallet/topups", user, json=body, headers=key())


async def withdraw(api: Api, user: User, **body: Any) -> tuple[int, Any]:
    return await api.call("POST", "/v1/wallet/withdrawals", user, json=body, headers=key())


async def order(api: Api, user: User, order_id: int) -> dict[str, Any]:
    status, answer = await api.call("GET", f"/v1/wallet/funding/{order_id}", user)
    assert status == 200, answer
    return answer  # type: ignore[no-any-return]


async def settled(api: Api, user: User, order_id: int) -> dict[str, Any]:
    """The order once the partner's callback has been applied (waits for it, up to 10 s)."""
    for _ in range(1000):
        found = await order(api, user, order_id)
        if found["state"] != "pending":
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"order {order_id} is still pending")


async def wallet(api: Api, user: User) -> tuple[int, int]:
    view = await api.container.wallet.balance(user.id)
    return view.balance, view.available


async def clearing(api: Api, name: str) -> int:
    account_id = api.container.wallet.system_account(name)
    accounts = await api.container.db.read(ledger.accounts, [account_id])
    return accounts[account_id].balance


async def event_kinds(api: Api, user: User) -> list[str]:
    _, page = await api.call("GET", "/v1/sync?since=0&limit=1000", user)
    return [e["type"] for e in page["events"]]


async def fund(api: Api, user: User, amount: int) -> None:
    """Money in through a real bank top-up (the sandbox in ``ok`` mode)."""
    status, made = await topup(api, user, channel="bank", amount=amount, card=CARD)
    assert status == 201, made
    assert (await settled(api, user, made["id"]))["state"] == "succeeded"


def operator_payment(api: Api, order_id: int) -> Payment:
    """The operator SANDBOX's payment for one of our orders (by its reference code)."""
    [found] = [
        p for p in api.operator.payments.values() if p.reference == f"wanglai-topup-{order_id}"
    ]
    return found


def signed_callback(
    api: Api, body: dict[str, Any], secret: str | None = None, skew_ms: int = 0
) -> tuple[bytes, dict[str, str]]:
    raw = msgspec.json.encode(body)
    header = signing.sign(
        secret or api.container.settings.bank_secret, raw, api.clock.now_ms() + skew_ms
    )
    return raw, {signing.HEADER: header, "Content-Type": "application/json"}


# ---------------------------------------------------------------- top-ups


async def test_carrier_topup_is_charged_to_the_phone_bill(api: Api) -> None:
    alice = await api.user()
    status, made = await topup(api, alice, channel="carrier", amount=5000)
    assert status == 201, made
    assert made["direction"] == "topup" and made["channel"] == "carrier"
    done = await settled(api, alice, made["id"])
    assert done["state"] == "succeeded" and done["transfer_id"] is not None
    partner = operator_payment(api, made["id"])
    assert (partner.phone, partner.amount, partner.currency) == (alice.phone, Decimal(50), "CNY")
    assert partner.correlator == f"wanglai-{made['id']}-{made['created_at']}"
    assert done["partner_ref"] == partner.payment_id
    assert await wallet(api, alice) == (5000, 5000)
    assert await clearing(api, ledger.OPERATOR_CLEARING) == -5000
    kinds = await event_kinds(api, alice)
    # reserved (a pending transfer), then posted
    assert kinds.count("funding.updated") == 2 and kinds.count("wallet.movement") == 2
    completed = "org.camaraproject.carrier-billing.v0.payment-completed"
    assert api.operator.notifications == [(partner.payment_id, completed, 204)]


async def test_bank_topup_charges_the_card(api: Api) -> None:
    alice = await api.user()
    status, made = await topup(api, alice, channel="bank", amount=12_345, card=CARD)
    assert status == 201, made
    assert made["instrument"] == "****4242"
    assert (await settled(api, alice, made["id"]))["state"] == "succeeded"
    assert api.bank.orders[made["id"]].instrument == CARD.replace(" ", "")
    assert await wallet(api, alice) == (12_345, 12_345)
    assert await clearing(api, ledger.BANK_CLEARING) == -12_345
    assert await clearing(api, ledger.OPERATOR_CLEARING) == 0


async def test_a_declined_topup_fails_and_moves_no_money(api: Api) -> None:
    alice = await api.user()
    api.bank.mode = "decline"
    status, made = await topup(api, alice, channel="bank", amount=700, card=CARD)
    assert status == 201
    done = await settled(api, alice, made["id"])
    assert (done["state"], done["failure"]) == ("failed", "card_declined")
    assert done["transfer_id"] is None
    assert await wallet(api, alice) == (0, 0)
    assert await clearing(api, ledger.BANK_CLEARING) == 0
    assert (await event_kinds(api, alice)).count("funding.updated") == 2


@pytest.mark.parametrize(
    ("mode", "status", "code", "failure"),
    [
        ("refuse", 409, "partner_declined", "payment_denied"),
        ("error", 503, "partner_unavailable", "partner_unavailable"),
    ],
)
async def test_a_partner_that_refuses_or_fails_at_once_fails_the_order(
    api: Api, mode: str, status: int, code: str, failure: str
) -> None:
    alice = await api.user()
    api.operator.mode = mode
    got, answer = await topup(api, alice, channel="carrier", amount=800)
    assert (got, answer["error"]["code"]) == (status, code), answer
    _, page = await api.call("GET", "/v1/wallet/funding", alice)
    [failed] = page["orders"]
    assert (failed["state"], failed["failure"]) == ("failed", failure)
    assert api.operator.payments == {}
    assert await wallet(api, alice) == (0, 0)
    assert await clearing(api, ledger.OPERATOR_CLEARING) == 0
    # A failed order does not count against the monthly cap.
    api.operator.mode = "ok"
    got, answer = await topup(api, alice, channel="carrier", amount=30_000)
    assert got == 201, answer


async def test_an_unreachable_partner_fails_the_order(api: Api) -> None:
    alice = await api.user()
    api.container.funding.bank.base_url = f"http://127.0.0.1:{free_port()}"
    status, answer = await topup(api, alice, channel="bank", amount=900, card=CARD)
    assert (status, answer["error"]["code"]) == (503, "partner_unavailable"), answer
    assert "nothing was charged" in answer["error"]["message"]
    _, page = await api.call("GET", "/v1/wallet/funding", alice)
    assert [o["state"] for o in page["orders"]] == ["failed"]
    assert await wallet(api, alice) == (0, 0)


async def test_an_order_without_callback_is_settled_by_reconciliation(api: Api) -> None:
    alice = await api.user()
    api.operator.mode = "no_callback"
    status, made = await topup(api, alice, channel="carrier", amount=2500)
    assert status == 201
    funding = api.container.funding
    await until(lambda: operator_payment(api, made["id"]).status == "succeeded")
    assert await funding.reconcile() == 0  # not overdue yet
    assert (await order(api, alice, made["id"]))["state"] == "pending"
    assert await wallet(api, alice) == (0, 0)
    api.clock.advance(api.container.settings.reconcile_after_s + 1)
    assert await funding.reconcile() == 1
    assert (await order(api, alice, made["id"]))["state"] == "succeeded"
    assert await wallet(api, alice) == (2500, 2500)
    assert await funding.reconcile() == 0
    assert await wallet(api, alice) == (2500, 2500)


async def test_a_timed_out_request_stays_pending_until_reconciled(api: Api) -> None:
    alice = await api.user()
    api.bank.mode, api.bank.delay_ms = "timeout", 20_000
    api.container.funding.http.timeout_s = 0.2
    status, made = await topup(api, alice, channel="bank", amount=3300, card=CARD)
    assert status == 201, made
    assert (made["state"], made["partner_ref"]) == ("pending", None)
    api.clock.advance(api.container.settings.reconcile_after_s + 1)
    assert await api.container.funding.reconcile() == 1
    done = await order(api, alice, made["id"])
    assert (done["state"], done["partner_ref"]) == ("succeeded", api.bank.orders[made["id"]].ref)
    assert await wallet(api, alice) == (3300, 3300)


async def test_an_order_the_partner_never_got_fails_on_reconciliation(api: Api) -> None:
    alice = await api.user()
    now = api.clock.now_ms()

    operator = api.container.wallet.system_account(ledger.OPERATOR_CLEARING)

    def lost() -> Op[int]:  # written, then the server died before the partner was asked
        made, _sent = yield from funding_store.create_topup(
            alice.id, "carrier", 400, "CNY", "", 30_000, now, operator
        )
        return made.id

    order_id = await api.container.db.write(lost)
    api.clock.advance(api.container.settings.reconcile_after_s + 1)
    assert await api.container.funding.reconcile() == 1  # asked by correlator: unknown
    done = await order(api, alice, order_id)
    assert (done["state"], done["failure"]) == ("failed", "unknown_to_partner")
    assert await wallet(api, alice) == (0, 0)
    assert await clearing(api, ledger.OPERATOR_CLEARING) == 0
    assert api.operator.payments == {}


async def test_a_duplicate_callback_is_applied_once(api: Api) -> None:
    alice = await api.user()
    api.bank.mode = "duplicate_callback"
    status, made = await topup(api, alice, channel="bank", amount=1000, card=CARD)
    assert status == 201
    await until(lambda: len(api.bank.callbacks) == 2)
    assert [c[2] for c in api.bank.callbacks] == [200, 200]
    assert await wallet(api, alice) == (1000, 1000)
    # A replay, and a contradicting late callback, are acknowledged and change nothing.
    partner = api.bank.orders[made["id"]]
    body = {"order": made["id"], "ref": partner.ref, "status": "succeeded", "amount": 1000}
    for outcome in ("succeeded", "failed"):
        raw, headers = signed_callback(api, {**body, "status": outcome})
        status, ack = await api.call(
            "POST", "/v1/partners/bank/callback", data=raw, headers=headers
        )
        assert (status, ack) == (200, {"order": made["id"], "state": "succeeded", "applied": False})
    assert await wallet(api, alice) == (1000, 1000)
    assert (await event_kinds(api, alice)).count("wallet.movement") == 1


async def test_badly_signed_callbacks_are_refused_and_change_nothing(api: Api) -> None:
    alice = await api.user()
    api.bank.mode = "no_callback"
    _, made = await topup(api, alice, channel="bank", amount=600, card=CARD)
    ref = api.bank.orders[made["id"]].ref
    body = {"order": made["id"], "ref": ref, "status": "succeeded", "amount": 600}
    path = "/v1/partners/bank/callback"
    cases = [
        (signed_callback(api, body, secret="wrong"), "signature_invalid"),
        (signed_callback(api, body, skew_ms=-301_000), "signature_expired"),
        (signed_callback(api, body, skew_ms=301_000), "signature_expired"),
        ((msgspec.json.encode(body), {}), "signature_missing"),
        ((msgspec.json.encode(body), {signing.HEADER: "v1=abc"}), "signature_malformed"),
    ]
    # signed over other bytes than those sent (the amount changed after signing)
    raw, headers = signed_callback(api, body)
    cases.append(((raw.replace(b"600", b"6000"), headers), "signature_invalid"))
    # the operator's sink secret does not sign for the bank
    sink_secret = api.container.settings.operator_sink_secret
    cases.append((signed_callback(api, body, secret=sink_secret), "signature_invalid"))
    for (raw, headers), code in cases:
        status, answer = await api.call("POST", path, data=raw, headers=headers)
        assert (status, answer["error"]["code"]) == (401, code), answer
    assert (await order(api, alice, made["id"]))["state"] == "pending"
    assert await wallet(api, alice) == (0, 0)
    # Well signed but wrong: an unknown order, another partner's order, another amount.
    raw, headers = signed_callback(api, {**body, "order": made["id"] + 1000})
    status, answer = await api.call("POST", path, data=raw, headers=headers)
    assert (status, answer["error"]["code"]) == (404, "funding_order_not_found")
    api.operator.mode = "no_callback"
    _, bill = await topup(api, alice, channel="carrier", amount=600)
    raw, headers = signed_callback(api, {**body, "order": bill["id"]})
    status, answer = await api.call("POST", path, data=raw, headers=headers)
    assert (status, answer["error"]["code"]) == (404, "funding_order_not_found")
    raw, headers = signed_callback(api, {**body, "amount": 601})
    status, answer = await api.call("POST", path, data=raw, headers=headers)
    assert (status, answer["error"]["code"]) == (409, "amount_mismatch")
    assert (await order(api, alice, made["id"]))["state"] == "pending"
    assert await wallet(api, alice) == (0, 0)
    # and the genuine one goes through
    raw, headers = signed_callback(api, body)
    status, ack = await api.call("POST", path, data=raw, headers=headers)
    assert (status, ack["applied"]) == (200, True)
    assert await wallet(api, alice) == (600, 600)


async def test_phone_bill_top_ups_are_capped_per_month(api: Api) -> None:
    alice = await api.user()
    api.operator.mode = "no_callback"  # pending orders count too
    status, _ = await topup(api, alice, channel="carrier", amount=20_000)
    assert status == 201
    status, answer = await topup(api, alice, channel="carrier", amount=10_001)
    assert (status, answer["error"]["code"]) == (403, "carrier_monthly_cap"), answer
    assert "10000 fen are left" in answer["error"]["message"]
    status, _ = await topup(api, alice, channel="carrier", amount=10_000)
    assert status == 201
    status, answer = await topup(api, alice, channel="carrier", amount=1)
    assert status == 403
    # bank top-ups are not capped, other users have their own cap
    status, _ = await topup(api, alice, channel="bank", amount=50_000, card=CARD)
    assert status == 201
    bob = await api.user()
    status, _ = await topup(api, bob, channel="carrier", amount=30_000)
    assert status == 201
    _, page = await api.call("GET", "/v1/wallet/funding", alice)
    assert len(page["orders"]) == 3
    # a new China-time month starts afresh
    api.clock.advance(32 * 24 * 3600)
    status, _ = await topup(api, alice, channel="carrier", amount=30_000)
    assert status == 201


async def test_a_retry_with_the_same_key_charges_once(api: Api) -> None:
    alice = await api.user()
    headers = key()
    body = {"channel": "bank", "amount": 500, "card": CARD}
    _, first = await api.call("POST", "/v1/wallet/topups", alice, json=body, headers=headers)
    await settled(api, alice, first["id"])
    status, again = await api.call("POST", "/v1/wallet/topups", alice, json=body, headers=headers)
    assert status == 201 and again["id"] == first["id"] and again["state"] == "succeeded"
    status, answer = await api.call(
        "POST", "/v1/wallet/topups", alice, json={**body, "amount": 501}, headers=headers
    )
    assert (status, answer["error"]["code"]) == (409, "idempotency_key_reused")
    assert len(api.bank.orders) == 1
    assert await wallet(api, alice) == (500, 500)


# ---------------------------------------------------------------- withdrawals


async def spent_today(api: Api, user: User) -> int:
    value = await api.container.db.read(
        lambda: scalar(
            "SELECT COALESCE(SUM(amount), 0) FROM wallet_spend WHERE user_id = ?", user.id
        )
    )
    return int(value)


async def test_a_withdrawal_holds_the_money_until_the_bank_pays(api: Api) -> None:
    alice = await api.user()
    await fund(api, alice, 10_000)
    await api.container.wallet.set_pin(alice.id, PIN)
    api.bank.mode = "no_callback"
    status, made = await withdraw(api, alice, amount=4000, account=ACCOUNT, pin=PIN)
    assert status == 201, made
    assert (made["direction"], made["state"], made["instrument"]) == (
        "withdraw",
        "pending",
        "****3445",
    )
    assert await wallet(api, alice) == (10_000, 6000)
    assert api.bank.orders[made["id"]].instrument == ACCOUNT
    await api.bank.send_callback(api.bank.orders[made["id"]])
    done = await order(api, alice, made["id"])
    assert done["state"] == "succeeded"
    assert await wallet(api, alice) == (6000, 6000)
    assert await clearing(api, ledger.BANK_CLEARING) == -6000
    assert await spent_today(api, alice) == 4000


async def test_a_failed_withdrawal_gives_the_money_back(api: Api) -> None:
    alice = await api.user()
    await fund(api, alice, 10_000)
    await api.container.wallet.set_pin(alice.id, PIN)
    api.bank.mode, api.bank.delay_ms = "decline", 50
    status, made = await withdraw(api, alice, amount=4000, account=ACCOUNT, pin=PIN)
    assert status == 201
    done = await settled(api, alice, made["id"])
    assert (done["state"], done["failure"]) == ("failed", "account_rejected")
    assert await wallet(api, alice) == (10_000, 10_000)
    assert await spent_today(api, alice) == 0
    assert await clearing(api, ledger.BANK_CLEARING) == -10_000
    # refused at once, or the bank unreachable: the same
    for mode in ("refuse", "error"):
        api.bank.mode = mode
        status, answer = await withdraw(api, alice, amount=4000, account=ACCOUNT, pin=PIN)
        assert status in (409, 503), answer
        assert await wallet(api, alice) == (10_000, 10_000)
        assert await spent_today(api, alice) == 0


async def test_withdrawals_check_the_pin_and_the_balance(api: Api) -> None:
    alice = await api.user()
    await fund(api, alice, 1000)
    await api.container.wallet.set_pin(alice.id, PIN)
    status, answer = await withdraw(api, alice, amount=500, account=ACCOUNT, pin="000000")
    assert status == 403, answer
    status, answer = await withdraw(api, alice, amount=500, account=ACCOUNT)
    assert (status, answer["error"]["code"]) == (400, "pin_required")
    status, answer = await withdraw(api, alice, amount=1001, account=ACCOUNT, pin=PIN)
    assert (status, answer["error"]["code"]) == (409, "insufficient_funds")
    assert await wallet(api, alice) == (1000, 1000)
    assert len(api.bank.orders) == 1  # the top-up only
    bob = await api.user()  # never had a wallet
    status, answer = await withdraw(api, bob, amount=1, account=ACCOUNT)
    assert (status, answer["error"]["code"]) == (409, "insufficient_funds")


# ---------------------------------------------------------------- bad input, other people


BAD_TOPUPS = [
    ({"channel": "carrier", "amount": 0}, "invalid_amount"),
    ({"channel": "carrier", "amount": -100}, "invalid_amount"),
    ({"channel": "carrier", "amount": 10**14}, "invalid_amount"),
    ({"channel": "carrier", "amount": 1.5}, "invalid_body"),
    ({"channel": "carrier", "amount": "100"}, "invalid_body"),
    ({"channel": "carrier", "amount": True}, "invalid_body"),
    ({"channel": "carrier", "amount": 10**30}, "invalid_amount"),
    ({"channel": "carrier"}, "invalid_body"),
    ({"channel": "paypal", "amount": 100}, "invalid_body"),
    ({"amount": 100}, "invalid_body"),
    ({"channel": "bank", "amount": 100}, "card_required"),
    ({"channel": "bank", "amount": 100, "card": "4242 4242 4242 4241"}, "invalid_card"),
    ({"channel": "bank", "amount": 100, "card": "12ab"}, "invalid_card"),
    ({"channel": "bank", "amount": 100, "card": 4242424242424242}, "invalid_body"),
]
BAD_WITHDRAWALS = [
    ({"amount": 0, "account": ACCOUNT}, "invalid_amount"),
    ({"amount": -1, "account": ACCOUNT}, "invalid_amount"),
    ({"amount": 2.5, "account": ACCOUNT}, "invalid_body"),
    ({"amount": "10", "account": ACCOUNT}, "invalid_body"),
    ({"amount": 10}, "invalid_body"),
    ({"amount": 10, "account": ""}, "account_required"),
    ({"amount": 10, "account": "12-34"}, "invalid_account"),
]


async def test_bad_input_gets_a_clear_error_and_changes_nothing(api: Api) -> None:
    alice = await api.user()
    await fund(api, alice, 1000)
    await api.container.wallet.set_pin(alice.id, PIN)
    before = await api.call("GET", "/v1/wallet/funding", alice)
    for body, code in BAD_TOPUPS:
        status, answer = await topup(api, alice, **body)
        assert (status, answer["error"]["code"]) == (400, code), (body, answer)
    for body, code in BAD_WITHDRAWALS:
        status, answer = await withdraw(api, alice, pin=PIN, **body)
        assert (status, answer["error"]["code"]) == (400, code), (body, answer)
    for path, body in (
        ("/v1/wallet/topups", {"channel": "carrier", "amount": 100}),
        ("/v1/wallet/withdrawals", {"amount": 100, "account": ACCOUNT, "pin": PIN}),
    ):
        status, answer = await api.call("POST", path, alice, json=body)
        assert (status, answer["error"]["code"]) == (400, "idempotency_key_required")
    status, answer = await api.call("GET", "/v1/wallet/funding?limit=0", alice)
    assert (status, answer["error"]["code"]) == (400, "invalid_limit")
    assert await api.call("GET", "/v1/wallet/funding", alice) == before
    assert await wallet(api, alice) == (1000, 1000)
    assert len(api.bank.orders) == 1 and api.operator.payments == {}


async def test_other_peoples_orders_are_not_found(api: Api) -> None:
    alice, eve = await api.user(), await api.user()
    _, made = await topup(api, alice, channel="carrier", amount=100)
    await settled(api, alice, made["id"])
    status, answer = await api.call("GET", f"/v1/wallet/funding/{made['id']}", eve)
    assert (status, answer["error"]["code"]) == (404, "funding_order_not_found")
    status, answer = await api.call("GET", "/v1/wallet/funding/999999", alice)
    assert status == 404
    _, page = await api.call("GET", "/v1/wallet/funding", eve)
    assert page == {"orders": [], "next_before": None}
    _, page = await api.call("GET", "/v1/wallet/funding", alice)
    assert [o["id"] for o in page["orders"]] == [made["id"]]


async def test_the_order_list_pages(api: Api) -> None:
    alice = await api.user()
    api.operator.mode = "no_callback"
    ids = []
    for _ in range(5):
        _, made = await topup(api, alice, channel="carrier", amount=10)
        ids.append(made["id"])
    _, page = await api.call("GET", "/v1/wallet/funding?limit=2", alice)
    assert [o["id"] for o in page["orders"]] == ids[:-3:-1]
    _, rest = await api.call(
        "GET", f"/v1/wallet/funding?limit=10&before={page['next_before']}", alice
    )
    assert [o["id"] for o in rest["orders"]] == ids[2::-1] and rest["next_before"] is None


async def test_the_sandbox_checks_signatures_too(api: Api) -> None:
    """The sandbox is a real counterpart: a request signed with another secret is refused, so
    a wallet misconfigured with the wrong secret fails loudly instead of silently."""
    alice = await api.user()
    api.container.funding.bank.secret = "not-the-bank-secret"
    status, answer = await topup(api, alice, channel="bank", amount=100, card=CARD)
    assert (status, answer["error"]["code"]) == (409, "partner_declined"), answer
    assert "signature_invalid" in answer["error"]["message"]
    assert api.bank.orders == {}
