"""The server serves the browser client: its page at ``/`` and its modules under ``/web/``."""

from __future__ import annotations

from .conftest import Api


async def test_page_and_modules_are_served(api: Api) -> None:
    async with api.http.get(api.url("/")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert resp.headers["Cache-Control"] == "no-cache"
        page = await resp.text()
    assert 'type="module"' in page and "/web/app.js" in page
    async with api.http.get(api.url("/web/app.js")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/javascript")
        etag = resp.headers["ETag"]
        assert "import" in await resp.text()
    async with api.http.get(api.url("/web/app.js"), headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    async with api.http.get(api.url("/web/style.css")) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/css")


async def test_nothing_outside_the_web_folder(api: Api) -> None:
    for path in ("/web/../app.py", "/web/%2e%2e/app.py", "/web/nope.js", "/web/"):
        async with api.http.get(api.url(path)) as resp:
            assert resp.status == 404, path
    status, body = await api.call("GET", "/v2/nothing")
    assert status == 404 and body["error"]["code"] == "route_not_found"
