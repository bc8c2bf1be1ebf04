"""Red packets over HTTP: bad input gets a clear 4xx and moves no money; other people's packets
are not found."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from .conftest import Api, User

_keys = itertools.count()


async def friends(api: Api, a: User, b: User) -> None:
    status, req = await api.call("POST", "/v1/friends/requests", a, json={"user_id": b.id})
    assert status == 200, req
    status, _ = await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", b)
    assert status == 200


async def group(api: Api, owner: User, *members: User) -> int:
    for member in members:
        await friends(api, owner, member)
    status, made = await api.call(
        "POST", "/v1/groups", owner, json={"title": "red", "members": [m.id for m in members]}
    )
    assert status == 201, made
    return int(made["id"])


async def send(api: Api, user: User, body: Any, key: str | None = None) -> tuple[int, Any]:
    headers = {"Idempotency-Key": key or f"key-{next(_keys)}"}
    return await api.call("POST", "/v1/redpackets", user, json=body, headers=headers)


async def balance(api: Api, user: User) -> int:
    return (await api.container.wallet.balance(user.id)).balance


async def packets(api: Api, conv: int, user: User) -> list[Any]:
    status, history = await api.call("GET", f"/v1/conversations/{conv}/messages", user)
    assert status == 200
    return [m for m in history if m["kind"] == "redpacket"]


@pytest.fixture
async def trio(api: Api) -> tuple[User, User, User, int]:
    """A funded sender (10,000 fen, 200.00 PIN-free) in a group with two friends."""
    sender, bob, carol = await api.user(), await api.user(), await api.user()
    conv = await group(api, sender, bob, carol)
    await api.fund(sender.id, 10_000, pin_free=20_000)
    return sender, bob, carol, conv


async def test_send_claim_and_look(api: Api, trio: tuple[User, User, User, int]) -> None:
    sender, bob, carol, conv = trio
    status, packet = await send(
        api, sender, {"conv": conv, "kind": "lucky", "amount": 300, "shares": 3}
    )
    assert status == 201, packet
    assert (packet["amount"], packet["shares"], packet["state"]) == (300, 3, "open")
    status, got = await api.call("POST", f"/v1/redpackets/{packet['id']}/claim", bob)
    assert status == 200 and got["new"] is True and got["claim"]["user"] == bob.id
    status, again = await api.call("POST", f"/v1/redpackets/{packet['id']}/claim", bob)
    assert status == 200 and again["new"] is False and again["claim"] == got["claim"]
    status, view = await api.call("GET", f"/v1/redpackets/{packet['id']}", carol)
    assert status == 200 and view["claimed_count"] == 1 and view["mine"] is None
    assert view["claims"] == [got["claim"]]
    assert await balance(api, sender) == 9_700
    assert await balance(api, bob) == got["claim"]["amount"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": 0}, 400, "invalid_amount"),
        ({"amount": -100}, 400, "invalid_amount"),
        ({"amount": 1.5}, 400, "invalid_body"),
        ({"amount": "100"}, 400, "invalid_body"),
        ({"amount": True}, 400, "invalid_body"),
        ({"amount": None}, 400, "invalid_body"),
        ({"amount": 10**20}, 400, "invalid_amount"),
        ({"amount": 2**70}, 400, "invalid_amount"),
        ({"amount": 20_001}, 400, "packet_too_large"),
        ({"amount": 2}, 400, "packet_too_small"),
        ({"shares": 0}, 400, "invalid_shares"),
        ({"shares": -1}, 400, "invalid_shares"),
        ({"shares": 101}, 400, "too_many_shares"),
        ({"shares": 4}, 400, "too_many_shares"),  # three members
        ({"shares": "3"}, 400, "invalid_body"),
        ({"kind": "jackpot"}, 400, "invalid_packet_kind"),
        ({"kind": "single"}, 400, "invalid_packet_kind"),
        ({"kind": 1}, 400, "invalid_body"),
        ({"greeting": "x" * 65}, 400, "invalid_greeting"),
        ({"conv": 999_999}, 404, "conversation_not_found"),
        ({"conv": 2**70}, 404, "conversation_not_found"),
        ({"conv": -1}, 404, "conversation_not_found"),
        ({"amount": 10_001, "shares": 3}, 409, "insufficient_funds"),
        ({"extra": 1}, 400, "invalid_body"),
    ],
)
async def test_bad_sends_are_refused_and_move_nothing(
    api: Api, trio: tuple[User, User, User, int], change: dict[str, Any], status: int, code: str
) -> None:
    sender, bob, _carol, conv = trio
    body = {"conv": conv, "kind": "lucky", "amount": 300, "shares": 3, **change}
    got_status, answer = await send(api, sender, body)
    assert (got_status, answer["error"]["code"]) == (status, code), answer
    assert answer["error"]["message"]
    assert await balance(api, sender) == 10_000
    assert await packets(api, conv, bob) == []


async def test_the_idempotency_key_is_required_and_not_reusable(
    api: Api, trio: tuple[User, User, User, int]
) -> None:
    sender, bob, _carol, conv = trio
    body = {"conv": conv, "kind": "equal", "amount": 300, "shares": 3}
    status, answer = await api.call("POST", "/v1/redpackets", sender, json=body)
    assert (status, answer["error"]["code"]) == (400, "idempotency_key_required")
    status, first = await send(api, sender, body, key="k1")
    assert status == 201
    status, again = await send(api, sender, body, key="k1")
    assert status == 201 and again == first
    status, answer = await send(api, sender, {**body, "amount": 301}, key="k1")
    assert (status, answer["error"]["code"]) == (409, "idempotency_key_reused")
    assert await balance(api, sender) == 9_700
    assert len(await packets(api, conv, bob)) == 1


async def test_other_peoples_packets_are_not_found(
    api: Api, trio: tuple[User, User, User, int]
) -> None:
    sender, bob, _carol, conv = trio
    eve = await api.user()
    await api.fund(eve.id, 1_000, pin_free=20_000)
    status, packet = await send(
        api, sender, {"conv": conv, "kind": "equal", "amount": 300, "shares": 3}
    )
    assert status == 201
    for method, path in (
        ("GET", f"/v1/redpackets/{packet['id']}"),
        ("POST", f"/v1/redpackets/{packet['id']}/claim"),
        ("GET", f"/v1/redpackets/{packet['id'] + 1}"),
        ("POST", "/v1/redpackets/abc/claim"),
        ("GET", "/v1/redpackets/99999999999999999999"),
    ):
        status, answer = await api.call(method, path, eve)
        assert status == 404 and answer["error"]["code"] in ("packet_not_found", "not_found")
    status, answer = await send(
        api, eve, {"conv": conv, "kind": "lucky", "amount": 100, "shares": 1}
    )
    assert (status, answer["error"]["code"]) == (404, "conversation_not_found")
    assert await balance(api, eve) == 1_000
    status, view = await api.call("GET", f"/v1/redpackets/{packet['id']}", bob)
    assert status == 200 and view["claimed_count"] == 0
    _, log = await api.call("GET", "/v1/sync?since=0", eve)
    assert [e for e in log["events"] if "redpacket" in json.dumps(e)] == []


async def test_empty_packet_is_a_409(api: Api, trio: tuple[User, User, User, int]) -> None:
    sender, bob, carol, conv = trio
    status, packet = await send(
        api, sender, {"conv": conv, "kind": "equal", "amount": 200, "shares": 2}
    )
    assert status == 201
    for user in (bob, carol):
        status, _ = await api.call("POST", f"/v1/redpackets/{packet['id']}/claim", user)
        assert status == 200
    status, answer = await api.call("POST", f"/v1/redpackets/{packet['id']}/claim", sender)
    assert (status, answer["error"]["code"]) == (409, "packet_empty")
    assert await balance(api, sender) == 9_800


async def test_claim_over_the_websocket(api: Api, trio: tuple[User, User, User, int]) -> None:
    sender, bob, carol, conv = trio
    outsider = await api.user()
    status, packet = await send(
        api, sender, {"conv": conv, "kind": "equal", "amount": 200, "shares": 1}
    )
    assert status == 201, packet

    async def claim(user: User, frame_id: str) -> dict[str, Any]:
        ws = await api.ws(user)
        await ws.send_json({"t": "claim", "id": frame_id, "packet": packet["id"]})
        while True:
            frame = await ws.receive_json(timeout=5)
            if frame.get("id") == frame_id:
                await ws.close()
                return dict(frame)

    got = await claim(bob, "c1")
    assert got["t"] == "claimed" and got["result"]["new"] is True
    assert (got["result"]["claim"]["user"], got["result"]["claim"]["amount"]) == (bob.id, 200)
    again = await claim(bob, "c2")
    assert again["t"] == "claimed" and again["result"]["new"] is False
    assert again["result"]["claim"] == got["result"]["claim"]
    late = await claim(carol, "c3")
    assert (late["t"], late["code"]) == ("error", "packet_empty")
    hidden = await claim(outsider, "c4")
    assert hidden["t"] == "error" and hidden["code"].endswith("not_found")
    assert await balance(api, bob) == 200
    assert await balance(api, outsider) == 0
