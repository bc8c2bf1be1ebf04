"""Usage records against the wire: traffic through a counting TCP relay, over HTTP and the
WebSocket, must show up in the subscriber's exported record byte for byte; counts are kept per
device and per China-time day, and a server that stops writes what it counted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from wanglai.app import flush_usage
from wanglai.domain.limits import day_of
from wanglai.domain.usage import day_start_ms
from wanglai.store import usage as usage_store
from wanglai.store.database import connect

from ..relay import CountingRelay
from .conftest import Api, User


def date_of(ms: int) -> str:
    from datetime import date, timedelta

    return (date(1970, 1, 1) + timedelta(days=day_of(ms))).isoformat()


async def records(api: Api, date: str) -> list[dict[str, Any]]:
    await flush_usage(api.container)
    doc = json.loads(await api.container.usage.export(date, "json"))
    return list(doc["records"])


async def record_of(api: Api, user: User, date: str | None = None) -> dict[str, Any]:
    date = date or date_of(api.clock.now_ms())
    for rec in await records(api, date):
        if rec["deviceId"] == user.device_id:
            return rec
    return {
        "datavolumeFBCUplink": 0,
        "datavolumeFBCDownlink": 0,
        "connects": 0,
        "heartbeats": 0,
        "pushes": 0,
        "requests": 0,
    }


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, int]:
    keys = ("datavolumeFBCUplink", "datavolumeFBCDownlink", "connects", "heartbeats", "pushes")
    return {k: after[k] - before[k] for k in (*keys, "requests")}


async def settled(
    api: Api, relay: CountingRelay, user: User, before: dict[str, Any]
) -> dict[str, int]:
    """The user's record minus ``before``, once every connection through the relay is over and
    the server has finished with them (a closing handshake ends on the server a moment after
    the relay sees the last byte)."""
    await relay.drained()
    for _ in range(100):
        got = delta(await record_of(api, user), before)
        if (got["datavolumeFBCUplink"], got["datavolumeFBCDownlink"]) == (relay.up, relay.down):
            return got
        await asyncio.sleep(0.02)
    return got


async def test_exported_bytes_equal_the_bytes_a_relay_counted(api: Api) -> None:
    alice = await api.user()
    bob = await api.user()
    status, conv = await api.call(
        "POST", "/v1/conversations/direct", alice, json={"user_id": bob.id}
    )
    assert status in (200, 201), conv
    bob_ws = await api.ws(bob)
    relay = CountingRelay(api.server.port or 0)
    await relay.start()
    before = await record_of(api, alice)
    base = f"http://127.0.0.1:{relay.port}"
    async with aiohttp.ClientSession() as http:
        # HTTP on one keep-alive connection: a read, a write with a JSON body, an error.
        async with http.get(f"{base}/v1/me", headers=alice.auth) as resp:
            assert resp.status == 200
            await resp.read()
        async with http.patch(f"{base}/v1/me", headers=alice.auth, json={"about": "x" * 200}) as r:
            assert r.status == 200
            await r.read()
        async with http.get(f"{base}/v1/conversations/999999", headers=alice.auth) as resp:
            assert resp.status == 404
            await resp.read()
        # The WebSocket: an app-level ping, a control ping, a send and its ack, and a message
        # from Bob pushed to her.
        ws = await http.ws_connect(f"{base}/v1/ws", headers=alice.auth, autoping=False)
        assert (await ws.receive_json(timeout=5))["t"] == "hello"
        await ws.send_json({"t": "ping"})
        assert (await ws.receive_json(timeout=5))["t"] == "pong"
        await ws.ping(b"are you there")
        assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.PONG
        send = {"t": "send", "id": "u1", "conv": conv["id"], "kind": "text", "body": {"text": "hi"}}
        await ws.send_json(send)
        ack = await ws.receive_json(timeout=5)
        assert ack.get("ack") == "u1" or ack["t"] == "ack"  # her event doubles as the ack
        await bob_ws.send_json({**send, "id": "b1"})
        assert (await ws.receive_json(timeout=5))["t"] == "event"
        await ws.close()
    await relay.close()
    got = await settled(api, relay, alice, before)
    assert relay.up > 0 and relay.down > 0
    assert got["datavolumeFBCUplink"] == relay.up
    assert got["datavolumeFBCDownlink"] == relay.down
    assert got["requests"] == 3
    assert got["connects"] == 1
    assert got["heartbeats"] == 2  # the ping frame and the control ping
    assert got["pushes"] == 1  # Bob's message; the pong and the ack answer her own frames
    await bob_ws.close()


async def test_bytes_of_requests_without_a_token_are_in_no_record(api: Api) -> None:
    alice = await api.user()
    before = await record_of(api, alice)
    unattributed = api.container.usage.tally.unattributed_up
    status, _ = await api.call("GET", "/v1/me")
    assert status == 401
    assert await record_of(api, alice) == before
    assert api.container.usage.tally.unattributed_up > unattributed


async def test_each_device_has_its_own_record(api: Api) -> None:
    alice = await api.user()
    status, body = await api.call(
        "POST",
        "/v1/auth/login",
        json={"phone": alice.phone, "code": await _code(api, alice.phone), "device_name": "pad"},
    )
    assert status == 200, body
    pad = User(alice.id, alice.phone, body["token"], body["device_id"])
    phone_before = await record_of(api, alice)
    pad_before = await record_of(api, pad)
    for _ in range(3):
        assert (await api.call("GET", "/v1/me", pad))[0] == 200
    ws = await api.ws(alice)
    await ws.close()
    phone = delta(await record_of(api, alice), phone_before)
    tablet = delta(await record_of(api, pad), pad_before)
    assert (phone["requests"], phone["connects"]) == (0, 1)
    assert (tablet["requests"], tablet["connects"]) == (3, 0)
    assert tablet["datavolumeFBCUplink"] > 0 and phone["datavolumeFBCUplink"] > 0
    recs = [r for r in await records(api, date_of(api.clock.now_ms())) if r["userId"] == alice.id]
    assert {r["deviceId"] for r in recs} == {alice.device_id, pad.device_id}
    assert {r["servedMSISDN"] for r in recs} == {alice.phone.lstrip("+")}


async def _code(api: Api, phone: str) -> str:
    status, _ = await api.call("POST", "/v1/auth/code", json={"phone": phone})
    assert status == 200
    return api.sms.last_code(phone)


async def test_usage_counts_for_the_china_time_day_it_happened_on(api: Api) -> None:
    alice = await api.user()
    # Just before midnight China time, then just after it.
    api.clock._now = day_start_ms(day_of(api.clock.now_ms()) + 1) - 1_000
    first = date_of(api.clock.now_ms())
    ws = await api.ws(alice)
    await ws.send_json({"t": "ping"})
    assert (await ws.receive_json(timeout=5))["t"] == "pong"
    assert (await api.call("GET", "/v1/me", alice))[0] == 200
    await flush_usage(api.container)  # what the flush loop does just before midnight
    api.clock.advance(2)
    second = date_of(api.clock.now_ms())
    assert second != first
    await ws.send_json({"t": "ping"})
    assert (await ws.receive_json(timeout=5))["t"] == "pong"
    assert (await api.call("GET", "/v1/me", alice))[0] == 200
    await ws.close()
    day1 = await record_of(api, alice, first)
    day2 = await record_of(api, alice, second)
    assert (day1["heartbeats"], day1["connects"]) == (1, 1)
    assert (day2["heartbeats"], day2["connects"], day2["requests"]) == (1, 0, 1)
    assert day1["requests"] >= 2  # the PATCH of api.user() and the GET
    assert day2["recordOpeningTime"].endswith("T00:00:00+08:00")
    assert day2["timeOfFirstUsage"] >= day2["recordOpeningTime"]


async def test_a_stopping_server_writes_what_it_counted(api: Api) -> None:
    alice = await api.user()
    ws = await api.ws(alice)
    await ws.send_json({"t": "ping"})
    assert (await ws.receive_json(timeout=5))["t"] == "pong"
    day = day_of(api.clock.now_ms())
    assert api.container.usage.tally.entries  # counted, not written yet
    await api.server.close()  # the socket is still open: the server closes it
    db = connect(api.container.settings.database_url)
    await db.start()
    try:
        rows = await db.read(usage_store.day_rows, day)
    finally:
        await db.close()
    mine = [row for row, _phone in rows if row.device_id == alice.device_id]
    assert len(mine) == 1
    assert (mine[0].connects, mine[0].heartbeats, mine[0].requests) == (1, 1, 1)
    assert mine[0].uplink_bytes > 0 and mine[0].downlink_bytes > 0
