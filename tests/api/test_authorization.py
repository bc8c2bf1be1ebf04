"""Every endpoint that takes an id is tried with other people's ids: refused, nothing changed.

The list of endpoints comes from the route table itself, so a new endpoint is covered (or this
test fails until its ids are described here).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from wanglai.app import routers

from .conftest import Api, User
from .shops import open_shop

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)

BODIES: dict[str, Any] = {
    "EditRequest": {"body": {"text": "hacked"}},
    "SendRequest": {"client_id": "evil", "kind": "text", "body": {"text": "evil"}},
    "ReadRequest": {"seq": 1},
    "GroupUpdate": {"title": "pwned"},
    "GroupInvite": {"user_ids": [0]},  # filled with the attacker's id
    "OwnerRequest": {"user_id": 0},
    "MuteRequest": {"muted": True},
    "CodeCreate": {"amount": 100},
    "RefundRequest": {"amount": 1},
}

# Endpoints whose answer to a stranger is legitimately 2xx (public profiles), with the reason.
# A payment code is shown to whoever scanned it: its token is the unguessable secret.
OPEN_TO_STRANGERS = {("GET", "/v1/users/{user_id}"), ("GET", "/v1/pay/codes/{token}")}


async def snapshot(api: Api, people: list[User], convs: list[int], merchant: int) -> Any:
    state = []
    state.append(await api.call("GET", f"/v1/merchants/{merchant}/statement", people[0]))
    state.append(await api.container.wallet.balance(people[1].id))
    for person in people:
        _, page = await api.call("GET", "/v1/sync?since=0&limit=5000", person)
        state.append(page["head"])
        state.append(await api.call("GET", "/v1/friends", person))
        state.append(await api.call("GET", "/v1/devices", person))
        state.append((await api.container.wallet.balance(person.id)).balance)
        state.append(await api.call("GET", "/v1/wallet", person))
    for conv in convs:
        state.append(await api.call("GET", f"/v1/conversations/{conv}/messages", people[0]))
    state.append(await api.call("GET", f"/v1/groups/{convs[1]}", people[0]))
    return state


async def test_strangers_get_nothing_from_any_endpoint(api: Api) -> None:
    alice, bob, carol = await api.user("friends"), await api.user("friends"), await api.user()
    eve = await api.user()
    # alice <-> bob friends; carol asks alice (pending); bob <-> carol friends
    _, req = await api.call("POST", "/v1/friends/requests", alice, json={"user_id": bob.id})
    await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", bob)
    _, req = await api.call("POST", "/v1/friends/requests", bob, json={"user_id": carol.id})
    await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", carol)
    _, pending = await api.call("POST", "/v1/friends/requests", carol, json={"user_id": alice.id})
    status, direct = await api.call(
        "POST", "/v1/conversations/direct", alice, json={"user_id": bob.id}
    )
    assert status == 200
    status, media = await api.call(
        "POST", "/v1/media", alice, data=PNG, headers={"Content-Type": "image/png"}
    )
    assert status in (200, 201), media
    await api.call(
        "POST",
        f"/v1/conversations/{direct['id']}/messages",
        alice,
        json={"client_id": "m1", "kind": "image", "body": {"media": media["hash"]}},
    )
    status, group = await api.call(
        "POST", "/v1/groups", alice, json={"title": "private", "members": [bob.id]}
    )
    assert status in (200, 201), group
    await api.call("PATCH", f"/v1/groups/{group['id']}", alice, json={"approval_required": True})
    await api.call("POST", f"/v1/groups/{group['id']}/members", bob, json={"user_ids": [carol.id]})
    _, join_requests = await api.call("GET", f"/v1/groups/{group['id']}/requests", alice)
    assert join_requests, "the invitation should wait for approval"
    await api.fund(alice.id, 10_000, pin_free=20_000)
    packets = {}
    for conv, kind, shares in ((direct["id"], "single", 1), (group["id"], "lucky", 2)):
        status, packet = await api.call(
            "POST",
            "/v1/redpackets",
            alice,
            json={"conv": conv, "kind": kind, "amount": 200, "shares": shares},
            headers={"Idempotency-Key": f"auth-{conv}"},
        )
        assert status == 201, packet
        packets[conv] = packet["id"]
    shop = await open_shop(api, alice, bob)
    status, topup = await api.call(
        "POST",
        "/v1/wallet/topups",
        alice,
        json={"channel": "carrier", "amount": 100},
        headers={"Idempotency-Key": "auth-sweep"},
    )
    assert status == 201, topup
    for _ in range(1000):  # the billing sandbox calls back in the background; let it settle
        _, order = await api.call("GET", f"/v1/wallet/funding/{topup['id']}", alice)
        if order["state"] != "pending":
            break
        await asyncio.sleep(0.01)
    await api.fund(alice, 1_000)
    await api.call("PUT", "/v1/wallet/pin", alice, json={"pin": "246810"})
    status, transfer = await api.call(
        "POST",
        "/v1/wallet/transfers",
        alice,
        json={"to": bob.id, "amount": 100, "pin": "246810"},
        headers={"Idempotency-Key": "t1"},
    )
    assert status == 201, transfer
    ids = {
        "order_id": topup["id"],
        "seq": 1,
        "device_id": alice.device_id,
        "hash": media["hash"],
        "merchant_id": shop["merchant_id"],
        "code_id": shop["code_id"],
        "payment_id": shop["payment_id"],
        "token": shop["token"],
        "transfer_id": transfer["id"],
    }
    convs = [direct["id"], group["id"]]
    before = await snapshot(api, [alice, bob, carol], convs, shop["merchant_id"])
    tried = 0
    for router in routers():
        for ep in router.endpoints:
            names = re.findall(r"{(\w+)}", ep.path)
            if not names or (ep.method, ep.path) in OPEN_TO_STRANGERS:
                continue
            variants: list[dict[str, Any]] = []
            for conv in convs:
                values = dict(ids, conv_id=conv, user_id=bob.id, packet_id=packets[conv])
                values["request_id"] = (
                    join_requests[0]["id"] if "groups" in ep.path else pending["id"]
                )
                variants.append(values)
            for values in variants:
                path = ep.path.format(**{n: values[n] for n in names})
                body = None
                if ep.body is not None:
                    body = dict(BODIES[ep.body.__name__])
                    for key in ("user_id",):
                        if key in body:
                            body[key] = eve.id
                    if "user_ids" in body:
                        body["user_ids"] = [eve.id]
                # eve's own idempotency key: without it, a money route could stop at 400
                headers = {"Idempotency-Key": f"eve-{tried}"}
                status, answer = await api.call(ep.method, path, eve, json=body, headers=headers)
                tried += 1
                assert status in (403, 404), (ep.method, path, status, answer)
    assert tried >= 30
    assert await snapshot(api, [alice, bob, carol], convs, shop["merchant_id"]) == before
    # and the attacker's own log learned nothing
    _, page = await api.call("GET", "/v1/sync?since=0", eve)
    assert page["events"] == []


async def test_blocked_users_cannot_see_the_blocker(api: Api) -> None:
    alice, eve = await api.user(), await api.user()
    status, _ = await api.call("GET", f"/v1/users/{alice.id}", eve)
    assert status == 200
    await api.call("POST", "/v1/blocks", alice, json={"user_id": eve.id})
    status, body = await api.call("GET", f"/v1/users/{alice.id}", eve)
    assert status == 404 and body["error"]["code"] == "user_not_found"
    status, body = await api.call("POST", "/v1/contacts/lookup", eve, json={"phone": alice.phone})
    assert status == 404
    status, body = await api.call("POST", "/v1/contacts/match", eve, json={"phones": [alice.phone]})
    assert status == 200 and body["matches"] == []
    status, body = await api.call(
        "POST", "/v1/conversations/direct", eve, json={"user_id": alice.id}
    )
    assert status == 403


@pytest.mark.parametrize("path", ["/v1/me", "/v1/conversations", "/v1/sync?since=0"])
async def test_revoked_token_is_refused_everywhere(api: Api, path: str) -> None:
    alice = await api.user()
    await api.call("POST", "/v1/auth/logout", alice)
    status, body = await api.call("GET", path, alice)
    assert status == 401 and body["error"]["code"] == "invalid_token"
