"""Every failure leaves as ``{"error": {"code", "message"}}`` with the status its kind implies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from wanglai.domain.errors import RateLimited, WanglaiError

log = logging.getLogger("wanglai.gateway")

STATUS = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "gone": 410,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
}

_encode = msgspec.json.Encoder().encode


def error_body(code: str, message: str) -> bytes:
    return _encode({"error": {"code": code, "message": message}})


def error_response(code: str, message: str, status: int) -> web.Response:
    return web.Response(
        body=error_body(code, message), status=status, content_type="application/json"
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except WanglaiError as exc:
        response = error_response(exc.code, exc.message, STATUS.get(exc.kind, 400))
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(max(1, int(exc.retry_after)))
        return response
    except web.HTTPRequestEntityTooLarge:
        return error_response("body_too_large", "The request body is too large.", 413)
    except web.HTTPNotFound:
        return error_response("route_not_found", f"No endpoint {request.path}.", 404)
    except web.HTTPMethodNotAllowed as exc:
        return error_response(
            "method_not_allowed", f"{request.method} is not allowed here.", exc.status
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response("internal", "Something broke on our side; it was logged.", 500)
