"""HTTP request metrics: latency by method, route template and status (WebSockets excluded)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from wanglai.gateway.endpoint import APP_KEY


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path == "/v1/ws":
        return await handler(request)
    started = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[APP_KEY].metrics.http_seconds.labels(
        request.method, route, str(response.status)
    ).observe(time.perf_counter() - started)
    return response
