"""The OpenAPI 3.1 document, generated from the route table and msgspec's JSON Schema."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from wanglai import __version__
from wanglai.gateway.endpoint import Endpoint, Router

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}

_TYPE_NAMES = {int: "integer", str: "string", bool: "boolean"}
# Path parameters are integer ids, except these.
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"},
}


def document(routers: list[Router]) -> dict[str, Any]:
    endpoints = [ep for r in routers for ep in r.endpoints]
    types: list[Any] = []
    for ep in endpoints:
        for t in (ep.body, ep.response):
            if t is not None and t not in types:
                types.append(t)
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    by_type = dict(zip(types, schemas, strict=True))
    components["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, by_type)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Wanglai API",
            "version": __version__,
            "description": "Messaging, contacts and sync. WebSocket frames: docs/protocol.md.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(ep: Endpoint, by_type: dict[Any, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op: dict[str, Any] = {
        "summary": ep.summary,
        "operationId": f"{ep.method.lower()}_{ep.handler.__name__}",
        "tags": [ep.tag] if ep.tag else [],
        "responses": {
            "400": {"description": "Invalid input", **error},
            "403": {"description": "Not allowed", **error},
            "404": {"description": "Not found", **error},
            "409": {"description": "Conflicts with the current state", **error},
            "410": {"description": "Expired", **error},
            "429": {"description": "Rate limited", **error},
            "503": {"description": "A partner (bank, operator) did not answer", **error},
        },
    }
    if ep.auth:
        op["security"] = [{"bearer": []}]
        op["responses"]["401"] = {"description": "Not logged in", **error}
    elif ep.signed:
        op["responses"]["401"] = {"description": "Not signed by the partner", **error}
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _PATH_SCHEMAS.get(name, {"type": "integer"}),
        }
        for name in _path_params(ep.path)
    ]
    for where, declared in (("query", ep.query), ("header", ep.headers)):
        for q in declared:
            params.append(
                {
                    "name": q.name,
                    "in": where,
                    "required": q.required,
                    "description": q.description,
                    "schema": q.schema or {"type": _TYPE_NAMES.get(q.kind, "string")},
                }
            )
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": by_type[ep.body]}},
        }
        op["responses"]["413"] = {"description": "Body too large", **error}
    elif ep.raw_body:
        op["requestBody"] = {
            "required": True,
            "content": {ep.raw_body: {"schema": {"type": "string", "format": "binary"}}},
        }
        op["responses"]["413"] = {"description": "Body too large", **error}
    ok: dict[str, Any] = {"description": "OK"}
    if ep.raw_response:
        ok["content"] = {ep.raw_response: {"schema": {"type": "string", "format": "binary"}}}
    elif ep.response is not None and ep.status != 204:
        ok["content"] = {"application/json": {"schema": by_type[ep.response]}}
    op["responses"][str(ep.status)] = ok
    return op


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Wanglai API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2rem} .op{margin:.8rem 0;padding:.5rem .8rem;
border:1px solid #e3e3e3;border-radius:6px} .m{display:inline-block;min-width:4.5rem;
font-weight:600} code,pre{background:#f6f6f6;padding:.1rem .3rem;border-radius:4px}
pre{padding:.6rem;overflow:auto;font-size:13px} details summary{cursor:pointer}
</style></head><body>
<h1>Wanglai API</h1>
<p>Generated from <a href="/openapi.json">/openapi.json</a>. Authenticate with
<code>Authorization: Bearer TOKEN</code>. Live events: WebSocket <code>/v1/ws</code>.</p>
<div id="ops">Loading…</div>
<script type="module">
const spec = await (await fetch('/openapi.json')).json();
const root = document.getElementById('ops'); root.textContent = '';
const byTag = {};
for (const [path, ops] of Object.entries(spec.paths))
  for (const [method, op] of Object.entries(ops))
    (byTag[op.tags[0] || 'other'] ??= []).push([method, path, op]);
for (const [tag, ops] of Object.entries(byTag)) {
  const h = document.createElement('h2'); h.textContent = tag; root.append(h);
  for (const [method, path, op] of ops) {
    const d = document.createElement('div'); d.className = 'op';
    const head = document.createElement('div');
    const m = document.createElement('span'); m.className = 'm';
    m.textContent = method.toUpperCase();
    const p = document.createElement('code'); p.textContent = path;
    head.append(m, p, ' — ' + op.summary); d.append(head);
    const det = document.createElement('details'); const s = document.createElement('summary');
    s.textContent = 'schema'; const pre = document.createElement('pre');
    pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody,
      responses: op.responses}, null, 1);
    det.append(s, pre); d.append(det); root.append(d);
  }
}
</script></body></html>
"""


def install(app: web.Application, routers: list[Router]) -> None:
    doc = msgspec.json.encode(document(routers))

    async def spec(_request: web.Request) -> web.Response:
        return web.Response(body=doc, content_type="application/json")

    async def docs(_request: web.Request) -> web.Response:
        return web.Response(text=DOCS_PAGE, content_type="text/html")

    app.router.add_get("/openapi.json", spec)
    app.router.add_get("/docs", docs)
