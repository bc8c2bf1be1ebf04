"""Bad input over HTTP: always a JSON error with the right status, never a 500, nothing changed."""

from __future__ import annotations

from .conftest import Api


async def test_malformed_and_mistyped_bodies(api: Api) -> None:
    a, b = await api.user(), await api.user()
    status, body = await api.call(
        "POST", "/v1/conversations/direct", a, data=b"{not json", headers={"Content-Type": "x"}
    )
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body = await api.call("POST", "/v1/conversations/direct", a, json={"user_id": "7"})
    assert status == 400 and body["error"]["code"] == "invalid_body"
    assert "user_id" in body["error"]["message"]
    status, body = await api.call("POST", "/v1/conversations/direct", a, json={"who": b.id})
    assert status == 400 and body["error"]["code"] == "invalid_body"
    status, body = await api.call("POST", "/v1/conversations/direct", a, data=b"")
    assert status == 400 and body["error"]["code"] == "missing_body"
    status, body = await api.call("POST", "/v1/conversations/direct", a, json=[1, 2])
    assert status == 400
    status, conv = await api.call("POST", "/v1/conversations/direct", a, json={"user_id": b.id})
    assert status == 200
    path = f"/v1/conversations/{conv['id']}/messages"
    for bad in (
        {"client_id": "", "kind": "text", "body": {"text": "x"}},
        {"client_id": "c", "kind": "text", "body": {"text": 1}},
        {"client_id": "c", "kind": "text", "body": "x"},
        {"client_id": "c" * 65, "kind": "text", "body": {"text": "x"}},
        {"client_id": "c", "kind": "text", "body": {"text": "x"}, "reply_to": "1"},
    ):
        status, body = await api.call("POST", path, a, json=bad)
        assert status == 400, (bad, body)
        assert set(body["error"]) == {"code", "message"}
    status, history = await api.call("GET", path, a)
    assert status == 200 and history == []


async def test_text_with_a_nul_character_is_refused_everywhere(api: Api) -> None:
    """PostgreSQL cannot store U+0000 in text: every body holding one is a clean 400."""
    a = await api.user()
    status, body = await api.call("POST", "/v1/groups", a, json={"title": "t\x00", "members": []})
    assert (status, body["error"]["code"]) == (400, "invalid_text")
    # an escaped backslash followed by "u0000" is just text
    status, group = await api.call(
        "POST", "/v1/groups", a, json={"title": "a\\u0000", "members": []}
    )
    assert status == 201 and group["title"] == "a\\u0000"
    _, convs = await api.call("GET", "/v1/conversations", a)
    assert [c["title"] for c in convs] == ["a\\u0000"]


async def test_oversized_bodies_are_413(api: Api) -> None:
    a, b = await api.user(), await api.user()
    _, conv = await api.call("POST", "/v1/conversations/direct", a, json={"user_id": b.id})
    path = f"/v1/conversations/{conv['id']}/messages"
    huge = {"client_id": "c", "kind": "text", "body": {"text": "x" * 200_000}}
    status, body = await api.call("POST", path, a, json=huge)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = await api.call(
        "POST", path, a, json={"client_id": "c", "kind": "text", "body": {"text": "y" * 4001}}
    )
    assert status == 413 and body["error"]["code"] == "text_too_long"
    _, history = await api.call("GET", path, a)
    assert history == []


async def test_unknown_things_are_404(api: Api) -> None:
    a = await api.user()
    for path in (
        "/v1/nowhere",
        "/v1/conversations/999999",
        "/v1/conversations/abc",
        "/v1/conversations/99999999999999999999999",
        "/v1/conversations/999/messages",
        "/v1/users/424242",
    ):
        status, body = await api.call("GET", path, a)
        assert status == 404, path
        assert body["error"]["code"], path
    status, body = await api.call("DELETE", "/v1/devices/4242", a)
    assert status == 404 and body["error"]["code"] == "device_not_found"
    status, body = await api.call("POST", "/v1/conversations/direct", a, json={"user_id": 4242})
    assert status == 404 and body["error"]["code"] == "user_not_found"
    status, body = await api.call("DELETE", "/v1/me", a)
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


async def test_bad_query_parameters(api: Api) -> None:
    a = await api.user()
    for path, code in (
        ("/v1/sync?since=abc", "invalid_since"),
        ("/v1/sync?since=-1", "invalid_since"),
        ("/v1/sync?since=0&limit=0", "invalid_limit"),
        ("/v1/sync?since=0&limit=100000", "invalid_limit"),
        ("/v1/search?q=", "invalid_query"),
        ("/v1/search?q=" + "x" * 101, "invalid_query"),
    ):
        status, body = await api.call("GET", path, a)
        assert status == 400, path
        assert body["error"]["code"] == code, (path, body)


async def test_authentication_required(api: Api) -> None:
    status, body = await api.call("GET", "/v1/me")
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    status, body = await api.call("GET", "/v1/me", headers={"Authorization": "Bearer nope"})
    assert status == 401 and body["error"]["code"] == "invalid_token"
    status, _ = await api.call("GET", "/v1/ws")
    assert status == 401


async def test_login_code_errors(api: Api) -> None:
    phone = "+8613911112222"
    status, body = await api.call("POST", "/v1/auth/code", json={"phone": "12"})
    assert status == 400 and body["error"]["code"] == "invalid_phone"
    status, body = await api.call("POST", "/v1/auth/login", json={"phone": phone, "code": "1"})
    assert status == 400 and body["error"]["code"] == "invalid_code_format"
    status, body = await api.call("POST", "/v1/auth/login", json={"phone": phone, "code": "123456"})
    assert status == 400 and body["error"]["code"] == "otp_not_requested"
    await api.call("POST", "/v1/auth/code", json={"phone": phone})
    code = api.sms.last_code(phone)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        status, body = await api.call(
            "POST", "/v1/auth/login", json={"phone": phone, "code": wrong}
        )
        assert status == 401 and body["error"]["code"] == "wrong_code"
    status, body = await api.call("POST", "/v1/auth/login", json={"phone": phone, "code": code})
    assert status == 429 and body["error"]["code"] == "otp_too_many_tries"
    await api.call("POST", "/v1/auth/code", json={"phone": phone})
    code = api.sms.last_code(phone)
    api.clock.advance(301)
    status, body = await api.call("POST", "/v1/auth/login", json={"phone": phone, "code": code})
    assert status == 410 and body["error"]["code"] == "otp_expired"
    status, body = await api.call("POST", "/v1/auth/code", json={"phone": phone})
    assert status == 200  # the third code in ten minutes is still allowed
    status, body = await api.call("POST", "/v1/auth/code", json={"phone": phone})
    assert status == 429 and body["error"]["code"] == "otp_number_limit"
    # nothing was created by all of that
    assert await api.container.db.read(_count_users) == 0


def _count_users():  # type: ignore[no-untyped-def]
    from wanglai.store.accounts import count_users

    return count_users()


async def test_chunked_bodies_obey_the_limit_too(api: Api) -> None:
    a = await api.user()

    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"about": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    async with api.http.patch(api.url("/v1/me"), data=chunks(), headers=a.auth) as resp:
        body = await resp.json()
    assert resp.status == 413 and body["error"]["code"] == "body_too_large"
    _, me = await api.call("GET", "/v1/me", a)
    assert me["about"] == ""


async def test_phone_numbers_are_for_friends(api: Api) -> None:
    a, b = await api.user(), await api.user()
    _, stranger_view = await api.call("GET", f"/v1/users/{a.id}", b)
    assert "phone" not in stranger_view and stranger_view["id"] == a.id
    _, own = await api.call("GET", f"/v1/users/{a.id}", a)
    assert own["phone"] == a.phone
    _, req = await api.call("POST", "/v1/friends/requests", b, json={"user_id": a.id})
    await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", a)
    _, friend_view = await api.call("GET", f"/v1/users/{a.id}", b)
    assert friend_view["phone"] == a.phone


def test_unknown_sms_channel_is_refused_at_start() -> None:
    import pytest

    from wanglai.settings import Settings

    with pytest.raises(ValueError, match="WANGLAI_SMS_CHANNEL"):
        Settings(sms_channel="pigeon")
    assert "secret" not in Settings(database_url="postgresql://u:secret@h/db").database_label
