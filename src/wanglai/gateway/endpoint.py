"""The route table: each endpoint declares its body and response types once.

The same declarations drive request decoding (msgspec, so a wrong type is a clear 400), response
encoding, authentication and the OpenAPI document (``gateway/openapi.py``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from wanglai.domain.errors import Invalid, NotFound, TooLarge
from wanglai.domain.idempotency import MAX_KEY
from wanglai.services.accounts import Session

APP_KEY: web.AppKey[Any] = web.AppKey("wanglai", object)
USAGE_OWNER: web.RequestKey[tuple[int, int]] = web.RequestKey("usage_owner", tuple)
"""The (user, device) whose usage record counts this request (gateway/metering.py)."""

_encode = msgspec.json.Encoder().encode
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""An escaped NUL in a JSON body (not an escaped backslash followed by "u0000"): PostgreSQL
cannot store U+0000 in text, so no text anywhere may hold it."""


@dataclass(frozen=True)
class Query:
    name: str
    kind: type = int
    required: bool = False
    description: str = ""
    schema: dict[str, Any] | None = None
    """The parameter's JSON Schema, when more than its type (``kind``) is worth stating."""


IDEMPOTENCY_KEY = Query(
    "Idempotency-Key",
    str,
    required=True,
    description="A unique string per payment (1-64 printable ASCII), sent again on retries:"
    " a retry gets the first answer; the same key with another request is refused (409).",
    schema={"type": "string", "pattern": f"^[!-~]{{1,{MAX_KEY}}}$"},
)


@dataclass
class Ctx:
    """What a handler gets: the request, the caller's session (if any) and the services."""

    request: web.Request
    session: Session
    app: Any

    def query_int(self, name: str, default: int | None = None) -> int | None:
        raw = self.request.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise Invalid("invalid_" + name, f"'{name}' must be an integer.") from None
        if not -(2**62) <= value <= 2**62:
            raise Invalid("invalid_" + name, f"'{name}' is out of range.")
        return value

    @property
    def idempotency_key(self) -> str | None:
        """The request's ``Idempotency-Key`` header (checked by the use case)."""
        return self.request.headers.get(IDEMPOTENCY_KEY.name)

    def match_int(self, name: str) -> int:
        raw = self.request.match_info[name]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise NotFound("not_found", f"No such {name.replace('_', ' ')}.")
        return int(raw)


Handler = Callable[..., Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: Any = None
    response: Any = None
    status: int = 200
    auth: bool = True
    tag: str = ""
    query: tuple[Query, ...] = ()
    headers: tuple[Query, ...] = ()
    """Request headers the handler reads (``Idempotency-Key``), for the OpenAPI document."""
    errors: tuple[str, ...] = field(default_factory=tuple)
    raw_body: str | None = None
    """A non-JSON request body's media type (uploads); the handler reads it itself."""
    raw_response: str | None = None
    max_body: int | None = None
    """This endpoint's JSON body limit, when not ``settings.max_body_bytes``."""
    signed: bool = False
    """No session: the handler checks a partner's HMAC signature instead (a 401 if wrong)."""
    idempotent: bool = False
    """Moves money: takes a required ``Idempotency-Key`` header (``Ctx.idempotency_key``)."""


class Router:
    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        body: Any = None,
        response: Any = None,
        status: int = 200,
        auth: bool = True,
        tag: str = "",
        query: tuple[Query, ...] = (),
        headers: tuple[Query, ...] = (),
        raw_body: str | None = None,
        raw_response: str | None = None,
        max_body: int | None = None,
        signed: bool = False,
        idempotent: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    fn,
                    summary,
                    body,
                    response,
                    status,
                    auth,
                    tag,
                    query,
                    headers=(*headers, IDEMPOTENCY_KEY) if idempotent else headers,
                    raw_body=raw_body,
                    raw_response=raw_response,
                    max_body=max_body,
                    signed=signed,
                    idempotent=idempotent,
                )
            )
            return fn

        return register

    def install(self, app: web.Application, container: Any, prefix: str = "") -> None:
        """Add the routes to ``app``; ``prefix`` is stripped when ``app`` is mounted under it."""
        for ep in self.endpoints:
            assert ep.path.startswith(prefix)
            app.router.add_route(ep.method, ep.path[len(prefix) :], _wrap(ep, container))


def _wrap(ep: Endpoint, container: Any) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    decoder = msgspec.json.Decoder(ep.body) if ep.body is not None else None
    limit = ep.max_body or container.settings.max_body_bytes

    async def handle(request: web.Request) -> web.StreamResponse:
        session = Session(0, 0)
        if ep.auth:
            session = await container.accounts.authenticate(bearer(request))
            request[USAGE_OWNER] = (session.user_id, session.device_id)
        ctx = Ctx(request, session, container)
        if decoder is not None:
            if request.content_length is not None and request.content_length > limit:
                raise TooLarge("body_too_large", f"Request bodies are limited to {limit} bytes.")
            raw = await request.read()
            if len(raw) > limit:  # a chunked body has no Content-Length to check up front
                raise TooLarge("body_too_large", f"Request bodies are limited to {limit} bytes.")
            if not raw:
                raise Invalid("missing_body", "Send a JSON body.")
            if b"\\u0000" in raw and _NUL.search(raw):
                raise Invalid("invalid_text", "Text may not contain the NUL character (U+0000).")
            try:
                body = decoder.decode(raw)
            except msgspec.ValidationError as exc:
                raise Invalid("invalid_body", str(exc)) from None
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                raise Invalid("malformed_json", "The body is not valid JSON.") from None
            result = await ep.handler(ctx, body)
        else:
            result = await ep.handler(ctx)
        if isinstance(result, web.StreamResponse):
            return result
        if ep.status == 204:
            return web.Response(status=204)
        return web.Response(body=_encode(result), status=ep.status, content_type="application/json")

    return handle


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    return request.query.get("token") or None
