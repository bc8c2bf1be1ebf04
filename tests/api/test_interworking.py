"""Messaging a phone number over HTTP and the WebSocket: the routes, their errors, fallback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from wanglai.settings import Settings

from .conftest import Api

NUMBER = "+8613912345678"


@pytest.fixture
def api_settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        code_pepper=b"p",
        otp_sends_per_address=1000,
        otp_sends_per_prefix=1000,
        sms_daily_quota=1,
        sms_fallback_after_s=60,
    )


async def test_text_a_number_over_http(api: Api) -> None:
    alice = await api.user()
    status, opened = await api.call(
        "POST", "/v1/conversations/direct", alice, json={"phone": "+86 139 1234 5678"}
    )
    assert status == 200 and opened["sms"] is True and opened["peer"] != alice.id
    conv = opened["id"]
    path = f"/v1/conversations/{conv}/messages"
    body = {"client_id": "c1", "kind": "text", "body": {"text": "hi from the web"}}
    status, sent = await api.call("POST", path, alice, json=body)
    assert status == 201 and sent["seq"] == 1
    for _ in range(500):
        if any(number == NUMBER for number, _text in api.sms.sent):
            break
        await asyncio.sleep(0.01)
    assert next(t for n, t in api.sms.sent if n == NUMBER).endswith(
        ": hi from the web\nReply to this number to answer; STOP to opt out."
    )
    status, history = await api.call("GET", path, alice)
    assert status == 200 and history[0]["sms"] == "sent"
    # over the daily quota: 429, nothing stored
    body = {"client_id": "c2", "kind": "text", "body": {"text": "one more"}}
    status, error = await api.call("POST", path, alice, json=body)
    assert status == 429 and error["error"]["code"] == "sms_quota_exceeded"
    async with api.http.post(api.url(path), json=body, headers=alice.auth) as answer:
        # Retry-After: until China-time midnight, when the quota starts again
        now_ms = api.clock.now_ms()
        to_midnight = (86_400_000 - (now_ms + 8 * 3_600_000) % 86_400_000) / 1000
        assert abs(int(answer.headers["Retry-After"]) - to_midnight) <= 2
    status, history = await api.call("GET", path, alice)
    assert len(history) == 1
    status, quota = await api.call("GET", "/v1/sms/quota", alice)
    assert status == 200 and quota == {"limit": 1, "used": 1, "fallback_after_s": 60}
    status, threads = await api.call("GET", "/v1/sms/threads", alice)
    assert status == 200 and [(t["conv"], t["phone"], t["joined"]) for t in threads] == [
        (conv, NUMBER, False)
    ]
    # another user sees no threads of alice's
    bob = await api.user()
    status, threads = await api.call("GET", "/v1/sms/threads", bob)
    assert status == 200 and threads == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_direct_request"),
        ({"user_id": 1, "phone": NUMBER}, 400, "invalid_direct_request"),
        ({"phone": "12"}, 400, "invalid_phone"),
        ({"phone": "+19005551234"}, 400, "sms_number_blocked"),
        ({"phone": "+862161234567"}, 400, "sms_number_not_mobile"),
        ({"phone": 8613912345678}, 400, None),
    ],
)
async def test_bad_direct_requests(api: Api, body: dict, status: int, code: str | None) -> None:  # type: ignore[type-arg]
    alice = await api.user()
    got, error = await api.call("POST", "/v1/conversations/direct", alice, json=body)
    assert got == status
    if code is not None:
        assert error["error"]["code"] == code
    _, threads = await api.call("GET", "/v1/sms/threads", alice)
    assert threads == []


async def test_fallback_over_the_websocket(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    status, opened = await api.call(
        "POST", "/v1/conversations/direct", alice, json={"phone": bob.phone}
    )
    assert status == 200 and opened["sms"] is False and opened["peer"] == bob.id
    ws = await api.ws(alice)
    frame = {
        "t": "send",
        "id": "m1",
        "conv": opened["id"],
        "kind": "text",
        "body": {"text": "are you there?"},
        "sms_fallback": True,
    }
    await ws.send_json(frame)
    ack = await ws.receive_json(timeout=5)
    assert ack["ack"] == "m1"
    api.clock.advance(60)
    assert await api.container.interworking.sweep() == 1
    while True:
        event = await ws.receive_json(timeout=5)
        if event.get("type") == "message.sms":
            break
    assert event["data"] == {"conv": opened["id"], "seq": 1, "via": "fallback", "state": "sent"}
    for _ in range(500):
        if any("are you there?" in t for n, t in api.sms.sent if n == bob.phone):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("no fallback SMS")
    await ws.close()
