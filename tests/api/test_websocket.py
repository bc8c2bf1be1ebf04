"""The WebSocket over a real socket: live events, acks, errors, revocation, slow consumers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from wanglai.settings import Settings

from .conftest import Api, User


async def direct(api: Api, a: User, b: User) -> int:
    status, conv = await api.call("POST", "/v1/conversations/direct", a, json={"user_id": b.id})
    assert status == 200
    return int(conv["id"])


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict:  # type: ignore[type-arg]
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame["t"] == kind:
            return frame  # type: ignore[no-any-return]
        if kind == "ack" and "ack" in frame:  # the sender's own event copy acknowledges
            message = frame["message"]
            return {
                "t": "ack",
                "id": frame["ack"],
                "conv": message["conv"],
                "seq": message["seq"],
                "at": message["at"],
                "event": frame,
            }


async def test_send_ack_and_live_delivery_to_every_device(api: Api) -> None:
    a, b = await api.user(), await api.user()
    conv = await direct(api, a, b)
    wa = await api.ws(a)
    wb1, wb2 = await api.ws(b), await api.ws(b)
    await wa.send_json(
        {"t": "send", "id": "m1", "conv": conv, "kind": "text", "body": {"text": "hi"}}
    )
    ack = await next_of(wa, "ack")
    # one frame: the sender's own copy of the event, carrying the acknowledgement
    assert ack["event"]["t"] == "event" and ack["event"]["type"] == "message"
    assert (ack["id"], ack["conv"], ack["seq"]) == ("m1", conv, 1)
    for ws in (wb1, wb2):
        event = await next_of(ws, "event")
        assert event["type"] == "message" and event["message"]["body"] == {"text": "hi"}
    # the event carries the same seq that sync returns
    _, page = await api.call("GET", "/v1/sync?since=0", b)
    assert page["events"][0]["seq"] == event["seq"]
    # a retry with the same id is acked with the same message, and nobody gets it twice
    await wa.send_json(
        {"t": "send", "id": "m1", "conv": conv, "kind": "text", "body": {"text": "hi"}}
    )
    retry = await next_of(wa, "ack")
    assert retry == {"t": "ack", "id": "m1", "conv": conv, "seq": 1, "at": ack["at"]}
    await wa.send_json({"t": "ping"})
    assert (await next_of(wa, "pong")) == {"t": "pong"}
    with pytest.raises(asyncio.TimeoutError):
        while True:
            frame = await wb1.receive_json(timeout=0.3)
            assert frame["t"] != "event"
    for ws in (wa, wb1, wb2):
        await ws.close()


async def test_typing_and_read_frames(api: Api) -> None:
    a, b = await api.user(), await api.user()
    conv = await direct(api, a, b)
    wa, wb = await api.ws(a), await api.ws(b)
    await wb.send_json({"t": "typing", "conv": conv})
    assert await next_of(wa, "typing") == {"t": "typing", "conv": conv, "user": b.id}
    await wa.send_json(
        {"t": "send", "id": "x", "conv": conv, "kind": "text", "body": {"text": "read me"}}
    )
    await next_of(wb, "event")
    await wb.send_json({"t": "delivered", "conv": conv, "seq": 1})
    receipt = await next_of(wa, "event")
    while receipt["type"] != "delivered":
        receipt = await next_of(wa, "event")
    assert receipt["data"] == {"conv": conv, "user": b.id, "seq": 1}
    await wb.send_json({"t": "read", "conv": conv, "seq": 1})
    receipt = await next_of(wa, "event")
    while receipt["type"] != "read":
        receipt = await next_of(wa, "event")
    assert receipt["data"] == {"conv": conv, "user": b.id, "seq": 1}
    # typing is ephemeral: never in the log
    _, page = await api.call("GET", "/v1/sync?since=0", a)
    assert {e["type"] for e in page["events"]} == {"message", "delivered", "read"}
    await wa.close()
    await wb.close()


async def test_bad_frames_get_errors_and_change_nothing(api: Api) -> None:
    a, b = await api.user(), await api.user()
    conv = await direct(api, a, b)
    eve = await api.user()
    ws = await api.ws(a)
    cases = [
        ("not json", "malformed_frame"),
        (json.dumps({"t": "nope"}), "invalid_frame"),
        (
            json.dumps({"t": "send", "id": "x", "conv": "1", "kind": "text", "body": {}}),
            "invalid_frame",
        ),
        (
            json.dumps(
                {"t": "send", "id": "x", "conv": conv, "kind": "text", "body": {"text": ""}}
            ),
            "invalid_body",
        ),
        (
            json.dumps(
                {"t": "send", "id": "x", "conv": 999, "kind": "text", "body": {"text": "x"}}
            ),
            "conversation_not_found",
        ),
        (json.dumps({"t": "read", "conv": 999, "seq": 1}), "conversation_not_found"),
        (json.dumps({"t": "typing", "conv": 999}), "conversation_not_found"),
    ]
    for raw, code in cases:
        await ws.send_str(raw)
        frame = await next_of(ws, "error")
        assert frame["code"] == code, (raw, frame)
        sent = json.loads(raw) if raw.startswith("{") else {}
        assert frame.get("id") == sent.get("id"), "an error answers the frame it is about"
    nested = "[" * 10_000 + "]" * 10_000
    deep = f'{{"t":"send","id":"deep","conv":{conv},"kind":"text","body":{{"x":{nested}}}}}'
    await ws.send_str(deep)
    assert (await next_of(ws, "error"))["code"] in ("malformed_frame", "invalid_frame")
    await ws.send_bytes(b"\x00\x01")
    assert (await next_of(ws, "error"))["code"] == "unsupported_frame"
    # a frame over the size limit closes the socket with 1009
    await ws.send_str("x" * 70_000)
    msg = await ws.receive(timeout=5)
    assert msg.type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.CLOSING,
    )
    _, page = await api.call("GET", "/v1/sync?since=0", b)
    assert page["events"] == []
    _, page = await api.call("GET", "/v1/sync?since=0", eve)
    assert page["events"] == []


async def test_revoking_a_device_closes_its_socket(api: Api) -> None:
    a = await api.user()
    ws = await api.ws(a)
    other = await api.ws(a)
    status, _ = await api.call("DELETE", f"/v1/devices/{a.device_id}", a)
    assert status == 200
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4003
    assert (await other.receive(timeout=5)).data == 4003  # same device, same fate
    status, body = await api.call("GET", "/v1/me", a)
    assert status == 401 and body["error"]["code"] == "invalid_token"


async def test_seventh_device_evicts_the_oldest(api: Api) -> None:
    a = await api.user()
    first_ws = await api.ws(a)
    tokens = []
    for i in range(6):
        await api.call("POST", "/v1/auth/code", json={"phone": a.phone})
        _, body = await api.call(
            "POST",
            "/v1/auth/login",
            json={"phone": a.phone, "code": api.sms.last_code(a.phone), "device_name": f"d{i}"},
        )
        tokens.append(body["token"])
        api.clock.advance(601)  # stay under the per-number code limit
    msg = await first_ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4003
    status, devices = await api.call(
        "GET", "/v1/devices", a.__class__(a.id, a.phone, tokens[-1], 0)
    )
    assert status == 200 and len(devices) == 6
    assert a.device_id not in {d["id"] for d in devices}


@pytest.fixture
def api_settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        code_pepper=b"p",
        otp_sends_per_address=1000,
        otp_sends_per_prefix=1000,
        send_buffer_bytes=64 * 1024,
    )


async def test_slow_consumer_is_closed_and_resyncs(api: Api) -> None:
    a, b = await api.user(), await api.user()
    conv = await direct(api, a, b)
    slow = await api.ws(b)  # never reads
    sender = await api.ws(a)
    text = "z" * 3900
    sent = 0
    closed = False
    for batch in range(40):
        for i in range(50):
            await sender.send_json(
                {
                    "t": "send",
                    "id": f"{batch}-{i}",
                    "conv": conv,
                    "kind": "text",
                    "body": {"text": text},
                }
            )
        sent += 50
        for _ in range(50):
            await next_of(sender, "ack")
        if slow.closed or slow.close_code is not None:
            closed = True
            break
        # read nothing from `slow`; let the server notice the backlog
        await asyncio.sleep(0.05)
        if api.container.hub.by_user.get(b.id) is None:
            closed = True
            break
    assert closed, "the server kept a socket whose reader stopped reading"
    assert api.container.metrics.slow_consumers._value.get() >= 1
    # the client resyncs from its cursor and gets every message exactly once
    cursor, seqs = 0, []
    while True:
        _, page = await api.call("GET", f"/v1/sync?since={cursor}&limit=500", b)
        seqs += [e["message"]["seq"] for e in page["events"]]
        cursor = page["next"]
        if not page["more"]:
            break
    assert seqs == list(range(1, sent + 1))
    await sender.close()


async def test_messagepack_subprotocol(api: Api) -> None:
    """``wanglai.msgpack``: the same frames as MessagePack binary frames, both ways; a JSON
    socket in the same conversation still gets JSON; bad MessagePack is a clean error."""
    import msgspec

    a, b = await api.user(), await api.user()
    conv = await direct(api, a, b)
    packed = await api.http.ws_connect(
        api.url("/v1/ws"), headers=a.auth, protocols=("wanglai.msgpack", "wanglai.json")
    )
    assert packed.protocol == "wanglai.msgpack"

    async def next_packed() -> dict:  # type: ignore[type-arg]
        msg = await packed.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        return msgspec.msgpack.decode(msg.data)  # type: ignore[no-any-return]

    hello = await next_packed()
    assert hello["t"] == "hello" and hello["user"] == a.id
    plain = await api.ws(b)  # JSON, no subprotocol
    send = {"t": "send", "id": "p1", "conv": conv, "kind": "text", "body": {"text": "你好"}}
    await packed.send_bytes(msgspec.msgpack.encode(send))
    own = await next_packed()
    assert own["ack"] == "p1" and own["message"]["body"] == {"text": "你好"}
    event = await next_of(plain, "event")
    assert event["message"]["body"] == {"text": "你好"} and event["seq"] >= 1
    # the MessagePack frame is smaller than the JSON one for the same event
    as_json = msgspec.json.encode(own)
    assert len(msgspec.msgpack.encode(own)) < len(as_json)
    await packed.send_bytes(b"\xc1 not messagepack")
    error = await next_packed()
    assert (error["t"], error["code"]) == ("error", "malformed_frame")
    await packed.send_bytes(msgspec.msgpack.encode({"t": "ping"}))
    assert await next_packed() == {"t": "pong"}
    # a JSON socket that sends binary is told to use the subprotocol
    await plain.send_bytes(msgspec.msgpack.encode({"t": "ping"}))
    assert (await next_of(plain, "error"))["code"] == "unsupported_frame"
    _, history = await api.call("GET", f"/v1/conversations/{conv}/messages", a)
    assert [m["client_id"] for m in history] == ["p1"]
    await packed.close()
    await plain.close()


async def test_compact_subprotocol(api: Api) -> None:
    """``wanglai.compact``: a text costs three short arrays (send, the sender's ack, the
    receiver's event); other frames keep their object form; bad arrays are a clean error."""
    a, b = await api.user(), await api.user()
    conv = await direct(api, a, b)
    short = await api.http.ws_connect(
        api.url("/v1/ws"), headers=a.auth, protocols=("wanglai.compact", "wanglai.json")
    )
    assert short.protocol == "wanglai.compact"
    hello = await short.receive_json(timeout=5)
    assert hello["t"] == "hello"  # not a message frame: an object as always
    peer = await api.http.ws_connect(
        api.url("/v1/ws"), headers=b.auth, protocols=("wanglai.compact",)
    )
    assert (await peer.receive_json(timeout=5))["t"] == "hello"
    plain = await api.ws(b)  # Bob's second device speaks plain JSON
    await short.send_str(f'["s","c1",{conv},"hi there"]')
    ack = await short.receive_json(timeout=5)
    assert ack[:3] == ["a", "c1", conv] and ack[3] == 1 and len(ack) == 6
    own_seq = ack[5]
    event = await peer.receive_json(timeout=5)
    assert event[0] == "m" and event[2:5] == [conv, 1, a.id] and event[6] == "hi there"
    assert event[5] == ack[4]  # the same server time on both sides
    full = await next_of(plain, "event")
    assert full["message"]["body"] == {"text": "hi there"} and full["seq"] == event[1]
    # a retry of the same id is answered by an ack array without an event seq
    await short.send_str(f'["s","c1",{conv},"hi there"]')
    assert await short.receive_json(timeout=5) == ["a", "c1", conv, 1, ack[4]]
    # a reply is not a plain text: it goes both ways as the object frame
    reply = {"t": "send", "id": "c2", "conv": conv, "kind": "text"}
    await short.send_json({**reply, "body": {"text": "re"}, "reply_to": 1})
    own = await short.receive_json(timeout=5)
    assert own["ack"] == "c2" and own["message"]["reply_to"] == 1 and own["seq"] > own_seq
    assert (await peer.receive_json(timeout=5))["message"]["reply_to"] == 1
    for bad in ('["s","c3"]', '["x",1,2,3]', "[1", f'["s","c3",{conv},5]'):
        await short.send_str(bad)
        error = await short.receive_json(timeout=5)
        assert error["t"] == "error" and error["code"] in (
            "malformed_frame",
            "invalid_frame",
            "invalid_body",
        )
    # the arrays are what compact clients get; nothing was stored twice or from bad frames
    _, history = await api.call("GET", f"/v1/conversations/{conv}/messages", a)
    assert sorted(m["client_id"] for m in history) == ["c1", "c2"]
    for ws in (short, peer, plain):
        await ws.close()


async def test_compact_messagepack_subprotocol(api: Api) -> None:
    import msgspec

    a, b = await api.user(), await api.user()
    conv = await direct(api, a, b)
    protocols = ("wanglai.compact.msgpack",)
    sa = await api.http.ws_connect(api.url("/v1/ws"), headers=a.auth, protocols=protocols)
    sb = await api.http.ws_connect(api.url("/v1/ws"), headers=b.auth, protocols=protocols)
    assert sa.protocol == "wanglai.compact.msgpack"

    async def receive(ws: aiohttp.ClientWebSocketResponse) -> Any:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        return msgspec.msgpack.decode(msg.data)

    assert (await receive(sa))["t"] == "hello" and (await receive(sb))["t"] == "hello"
    await sa.send_bytes(msgspec.msgpack.encode(["s", "k1", conv, "你好"]))
    ack = await receive(sa)
    assert ack[:4] == ["a", "k1", conv, 1]
    assert (await receive(sb))[6] == "你好"
    await sa.send_bytes(msgspec.msgpack.encode(["nope"]))
    assert (await receive(sa))["code"] == "malformed_frame"
    await sa.close()
    await sb.close()
