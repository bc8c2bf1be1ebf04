"""Operational endpoints: health and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def install(app: web.Application, container: Any) -> None:
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "connections": container.hub.count()})

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(container.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", health)
    app.router.add_get("/metrics", metrics)
