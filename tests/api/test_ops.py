"""Health, metrics and the API description."""

from __future__ import annotations

from .conftest import Api


async def test_metrics_count_what_happened(api: Api) -> None:
    a, b = await api.user(), await api.user()
    _, conv = await api.call("POST", "/v1/conversations/direct", a, json={"user_id": b.id})
    for i in range(3):
        await api.call(
            "POST",
            f"/v1/conversations/{conv['id']}/messages",
            a,
            json={"client_id": f"c{i}", "kind": "text", "body": {"text": "hi"}},
        )
    await api.call("GET", "/v1/conversations/424242", a)
    ws = await api.ws(b)
    status, body = await api.call("GET", "/metrics")
    assert status == 200
    text = body.decode()
    assert 'wanglai_messages_total{kind="text"} 3.0' in text
    assert "wanglai_ws_connections 1.0" in text
    assert (
        'wanglai_http_seconds_count{method="POST",route="/v1/conversations/{conv_id}/messages",'
        'status="201"} 3.0' in text
    )
    assert 'route="/v1/conversations/{conv_id}",status="404"' in text
    assert "wanglai_commit_batch_size_count" in text
    await ws.close()


async def test_health_and_openapi(api: Api) -> None:
    status, body = await api.call("GET", "/healthz")
    assert status == 200 and body["ok"] is True
    status, spec = await api.call("GET", "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    ops = [(m.upper(), p) for p, item in spec["paths"].items() for m in item]
    assert ("POST", "/v1/conversations/{conv_id}/messages") in ops
    assert ("GET", "/v1/sync") in ops
    assert len(ops) >= 40
    send = spec["paths"]["/v1/conversations/{conv_id}/messages"]["post"]
    schema_ref = send["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = schema_ref.rsplit("/", 1)[-1]
    assert set(spec["components"]["schemas"][name]["required"]) >= {"client_id", "kind", "body"}
    status, page = await api.call("GET", "/docs")
    assert status == 200 and b"/openapi.json" in page
