"""The wallet over HTTP: bad input of every kind gets a clear 4xx code and moves no money."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from .conftest import Api, User

PIN = "246810"
_keys = itertools.count(1)


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"api-{next(_keys)}"}


async def pair(api: Api, amount: int = 60_000) -> tuple[User, User]:
    """Alice (funded, PIN set) and Bob, friends."""
    alice, bob = await api.user(), await api.user()
    _, req = await api.call("POST", "/v1/friends/requests", alice, json={"user_id": bob.id})
    status, _ = await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", bob)
    assert status == 200
    await api.fund(alice, amount)
    status, body = await api.call("PUT", "/v1/wallet/pin", alice, json={"pin": PIN})
    assert status == 200 and body["pin_set"], body
    return alice, bob


async def money(api: Api, *people: User) -> list[tuple[int, int, int]]:
    """Each person's balance, available amount and number of statement entries."""
    out = []
    for person in people:
        status, view = await api.call("GET", "/v1/wallet", person)
        assert status == 200
        _, page = await api.call("GET", "/v1/wallet/statement?limit=200", person)
        out.append((view["balance"], view["available"], len(page["transfers"])))
    return out


async def test_send_and_accept(api: Api) -> None:
    alice, bob = await pair(api)
    status, view = await api.call("GET", "/v1/wallet", alice)
    assert status == 200
    assert (view["balance"], view["available"], view["currency"]) == (60_000, 60_000, "CNY")
    body = {"to": bob.id, "amount": 1_250, "note": "dinner", "pin": PIN}
    headers = key()
    status, sent = await api.call("POST", "/v1/wallet/transfers", alice, json=body, headers=headers)
    assert status == 201, sent
    assert (sent["state"], sent["amount"], sent["receiver"]) == ("pending", 1_250, bob.id)
    status, again = await api.call(
        "POST", "/v1/wallet/transfers", alice, json=body, headers=headers
    )
    assert (status, again) == (201, sent)
    status, seen = await api.call("GET", f"/v1/wallet/transfers/{sent['id']}", bob)
    assert (status, seen) == (200, sent)
    status, accepted = await api.call(
        "POST", f"/v1/wallet/transfers/{sent['id']}/accept", bob, headers=key()
    )
    assert status == 200 and accepted["state"] == "accepted"
    assert await money(api, alice, bob) == [(58_750, 58_750, 3), (1_250, 1_250, 2)]
    status, again = await api.call(
        "POST", f"/v1/wallet/transfers/{sent['id']}/accept", bob, headers=key()
    )
    assert (status, again["error"]["code"]) == (409, "transfer_already_accepted")
    status, page = await api.call("GET", "/v1/wallet/statement?kind=topup,chat_transfer", alice)
    assert status == 200 and len(page["transfers"]) == 3
    status, page = await api.call("GET", "/v1/wallet/statement?kind=topup&kind=other", alice)
    assert status == 200 and [t["kind"] for t in page["transfers"]] == ["topup"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": 0}, 400, "invalid_amount"),
        ({"amount": -100}, 400, "invalid_amount"),
        ({"amount": 1.5}, 400, "invalid_amount"),
        ({"amount": 100.0}, 400, "invalid_amount"),
        ({"amount": 10**20}, 400, "invalid_amount"),
        ({"amount": 2**64}, 400, "invalid_amount"),
        ({"amount": "100"}, 400, "invalid_amount"),
        ({"amount": True}, 400, "invalid_amount"),
        ({"amount": None}, 400, "invalid_amount"),
        ({"currency": "USD"}, 400, "unsupported_currency"),
        ({"currency": 1}, 400, "invalid_body"),
        ({"amount": 60_001}, 409, "insufficient_funds"),
        ({"amount": 50_001}, 403, "over_payment_limit"),
        ({"pin": "135790"}, 403, "wrong_pin"),
        ({"pin": None}, 400, "pin_required"),
        ({"pin": "12ab56"}, 400, "invalid_body"),
        ({"to": 0}, 400, "invalid_body"),
        ({"to": 2**62}, 400, "invalid_body"),
        ({"to": "bob"}, 400, "invalid_body"),
        ({"note": "a\u0000b"}, 400, "invalid_text"),  # no text anywhere may hold U+0000
        ({"note": "a\u0007b"}, 400, "invalid_note"),
        ({"extra": 1}, 400, "invalid_body"),
    ],
)
async def test_bad_transfers_are_refused_and_move_nothing(
    api: Api, change: dict[str, Any], status: int, code: str
) -> None:
    alice, bob = await pair(api)
    before = await money(api, alice, bob)
    body = {"to": bob.id, "amount": 100, "pin": PIN} | change
    answer_status, answer = await api.call(
        "POST", "/v1/wallet/transfers", alice, json=body, headers=key()
    )
    assert (answer_status, answer["error"]["code"]) == (status, code), answer
    assert await money(api, alice, bob) == before


async def test_paying_yourself_or_nobody(api: Api) -> None:
    alice, bob = await pair(api)
    before = await money(api, alice, bob)
    for to, status, code in ((alice.id, 400, "cannot_pay_self"), (10**15, 404, "user_not_found")):
        body = {"to": to, "amount": 100, "pin": PIN}
        got, answer = await api.call(
            "POST", "/v1/wallet/transfers", alice, json=body, headers=key()
        )
        assert (got, answer["error"]["code"]) == (status, code)
    assert await money(api, alice, bob) == before


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "idempotency_key_required"),
        ({"Idempotency-Key": ""}, "idempotency_key_required"),
        ({"Idempotency-Key": "k" * 65}, "invalid_idempotency_key"),
    ],
)
async def test_the_idempotency_key_is_required(
    api: Api, headers: dict[str, str], code: str
) -> None:
    alice, bob = await pair(api)
    before = await money(api, alice, bob)
    body = {"to": bob.id, "amount": 100, "pin": PIN}
    status, answer = await api.call(
        "POST", "/v1/wallet/transfers", alice, json=body, headers=headers
    )
    assert (status, answer["error"]["code"]) == (400, code)
    assert await money(api, alice, bob) == before
    # Accepting and declining move money too.
    _, sent = await api.call("POST", "/v1/wallet/transfers", alice, json=body, headers=key())
    middle = await money(api, alice, bob)
    for action in ("accept", "decline"):
        status, answer = await api.call(
            "POST", f"/v1/wallet/transfers/{sent['id']}/{action}", bob, headers=headers
        )
        assert (status, answer["error"]["code"]) == (400, code)
    assert await money(api, alice, bob) == middle


async def test_a_reused_key_with_another_body_is_refused(api: Api) -> None:
    alice, bob = await pair(api)
    headers = key()
    body = {"to": bob.id, "amount": 100, "pin": PIN}
    status, first = await api.call(
        "POST", "/v1/wallet/transfers", alice, json=body, headers=headers
    )
    assert status == 201
    before = await money(api, alice, bob)
    for other in ({"amount": 200}, {"note": "x"}, {"to": (await api.user()).id}):
        status, answer = await api.call(
            "POST", "/v1/wallet/transfers", alice, json=body | other, headers=headers
        )
        assert (status, answer["error"]["code"]) == (409, "idempotency_key_reused")
    # Naming the default currency is the same request: the first answer comes back.
    status, again = await api.call(
        "POST", "/v1/wallet/transfers", alice, json=body | {"currency": "CNY"}, headers=headers
    )
    assert (status, again) == (201, first)
    assert await money(api, alice, bob) == before


async def test_other_peoples_transfers_are_not_found(api: Api) -> None:
    alice, bob = await pair(api)
    eve = await api.user()
    await api.fund(eve, 1_000)
    body = {"to": bob.id, "amount": 100, "pin": PIN}
    _, sent = await api.call("POST", "/v1/wallet/transfers", alice, json=body, headers=key())
    before = await money(api, alice, bob, eve)
    for method, suffix in (("GET", ""), ("POST", "/accept"), ("POST", "/decline")):
        path = f"/v1/wallet/transfers/{sent['id']}{suffix}"
        status, answer = await api.call(method, path, eve, headers=key())
        assert (status, answer["error"]["code"]) == (404, "transfer_not_found")
    for suffix in ("/accept", "/decline"):
        path = f"/v1/wallet/transfers/{sent['id']}{suffix}"
        # Without a key too: a stranger learns nothing, not even that a key is missing.
        status, answer = await api.call("POST", path, eve)
        assert (status, answer["error"]["code"]) == (404, "transfer_not_found")
        status, answer = await api.call("POST", path, alice, headers=key())
        assert (status, answer["error"]["code"]) == (403, "not_your_transfer")
    for raw in ("0", "-1", "abc", str(sent["id"] + 999), "9" * 19):
        status, answer = await api.call("GET", f"/v1/wallet/transfers/{raw}", bob)
        assert status == 404, raw
    assert await money(api, alice, bob, eve) == before


async def test_wrong_pins_lock_payments(api: Api) -> None:
    alice, bob = await pair(api)
    before = await money(api, alice, bob)
    body = {"to": bob.id, "amount": 100, "pin": "135790"}
    codes = []
    for _ in range(6):
        status, answer = await api.call(
            "POST", "/v1/wallet/transfers", alice, json=body, headers=key()
        )
        codes.append((status, answer["error"]["code"]))
    assert codes == [(403, "wrong_pin")] * 4 + [(429, "payments_locked")] * 2
    status, answer = await api.call(
        "POST", "/v1/wallet/transfers", alice, json=body | {"pin": PIN}, headers=key()
    )
    assert (status, answer["error"]["code"]) == (429, "payments_locked")
    assert await money(api, alice, bob) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"pin": "12"}, "invalid_pin"),
        ({"pin": "111111"}, "weak_pin"),
        ({"pin": 246810}, "invalid_body"),
        ({"pin": "135790"}, "pin_required"),
        ({"pin": "135790", "current": "975310"}, "wrong_pin"),
    ],
)
async def test_bad_pin_changes(api: Api, body: dict[str, Any], code: str) -> None:
    alice, bob = await pair(api)
    status, answer = await api.call("PUT", "/v1/wallet/pin", alice, json=body)
    assert 400 <= status < 500 and answer["error"]["code"] == code
    # The PIN in use is still the old one.
    status, _ = await api.call(
        "POST",
        "/v1/wallet/transfers",
        alice,
        json={"to": bob.id, "amount": 1, "pin": PIN},
        headers=key(),
    )
    assert status == 201


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"pin_free_limit": -1}, "invalid_pin_free_limit"),
        ({"pin_free_limit": 20_001}, "invalid_pin_free_limit"),
        ({"pin_free_limit": True}, "invalid_body"),
        ({"pin_free_limit": 1.5}, "invalid_body"),
        ({"strangers": "yes"}, "invalid_body"),
    ],
)
async def test_bad_settings(api: Api, body: dict[str, Any], code: str) -> None:
    alice = await api.user()
    _, before = await api.call("GET", "/v1/wallet", alice)
    status, answer = await api.call("PATCH", "/v1/wallet/settings", alice, json=body)
    assert (status, answer["error"]["code"]) == (400, code)
    assert await api.call("GET", "/v1/wallet", alice) == (200, before)


async def test_settings(api: Api) -> None:
    alice = await api.user()
    status, view = await api.call(
        "PATCH", "/v1/wallet/settings", alice, json={"strangers": True, "pin_free_limit": 500}
    )
    assert status == 200 and (view["strangers"], view["pin_free_limit"]) == (True, 500)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=201", "invalid_limit"),
        ("limit=abc", "invalid_limit"),
        ("before=0", "invalid_before"),
        ("before=1.5", "invalid_before"),
        (f"before={2**70}", "invalid_before"),
        ("kind=Top%20Up", "invalid_kind"),
        ("kind=topup,", "invalid_kind"),
        ("since=-1", "invalid_since"),
        ("since=10&until=10", "invalid_range"),
        ("until=x", "invalid_until"),
    ],
)
async def test_bad_statement_queries(api: Api, query: str, code: str) -> None:
    alice = await api.user()
    status, answer = await api.call("GET", f"/v1/wallet/statement?{query}", alice)
    assert (status, answer["error"]["code"]) == (400, code)


async def test_transfer_over_the_websocket(api: Api) -> None:
    """The ``transfer`` frame is the REST transfer on the chat socket: its ``id`` is the
    idempotency key, bad input is an ``error`` frame with that id, and nothing moves twice."""
    alice, bob = await pair(api, 10_000)
    ws = await api.ws(alice)

    async def frame(body: dict[str, Any]) -> dict[str, Any]:
        await ws.send_json({"t": "transfer", **body})
        while True:
            got = await ws.receive_json(timeout=5)
            if got.get("id") == body["id"]:
                return dict(got)

    sent = await frame({"id": "w1", "to": bob.id, "amount": 700, "pin": PIN, "note": "ws"})
    assert sent["t"] == "transferred"
    made = sent["result"]
    assert (made["amount"], made["state"], made["note"], made["sender"]) == (
        700,
        "pending",
        "ws",
        alice.id,
    )
    again = await frame({"id": "w1", "to": bob.id, "amount": 700, "pin": PIN, "note": "ws"})
    assert again["t"] == "transferred" and again["result"] == made
    other = await frame({"id": "w1", "to": bob.id, "amount": 800, "pin": PIN})
    assert (other["t"], other["code"]) == ("error", "idempotency_key_reused")
    for body, code in (
        ({"id": "w2", "to": bob.id, "amount": 1.5, "pin": PIN}, "invalid_amount"),
        ({"id": "w3", "to": bob.id, "amount": "100", "pin": PIN}, "invalid_amount"),
        ({"id": "w4", "to": bob.id, "amount": 10**14, "pin": PIN}, "invalid_amount"),
        ({"id": "w5", "to": bob.id, "amount": 9_999, "pin": PIN}, "insufficient_funds"),
        ({"id": "w6", "to": bob.id, "amount": 100, "pin": "000001"}, "wrong_pin"),
        ({"id": "w7", "to": alice.id, "amount": 100, "pin": PIN}, "cannot_pay_self"),
    ):
        got = await frame(body)
        assert (got["t"], got["code"]) == ("error", code), got
    await ws.close()
    assert (await money(api, alice))[0][:2] == (10_000, 9_300)
    assert (await money(api, bob))[0][:2] == (0, 0)
