"""What the partner SANDBOXES share. ``SandboxServer``: the failure mode switched at start or at
run time through ``POST /sandbox/mode``, held answers, background work owned by the app, and
callbacks delivered with retries (the operator SANDBOX in ``sandbox/operator.py`` builds on it).
``Sandbox``: the bank's protocol on top: signed requests in, an "accepted" answer with the
sandbox's own reference, a signed callback with the outcome later, and a status query.

Modes (what the next requests get):
``ok`` accepted, then a ``succeeded`` callback after ``delay_ms``;
``decline`` accepted, then a ``failed`` callback with the decline reason;
``refuse`` a synchronous 402 refusal, nothing recorded;
``error`` a synchronous 500, nothing recorded;
``timeout`` recorded and succeeded, but the answer is held for ``delay_ms`` (default 30 s) and
no callback is sent: only a status query tells the outcome;
``no_callback`` accepted and succeeded after ``delay_ms``, never called back;
``duplicate_callback`` as ``ok``, with the callback sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from wanglai.domain.clock import Clock, SystemClock
from wanglai.domain.errors import Unauthorized
from wanglai.partners import signing

log = logging.getLogger("wanglai.sandbox")

MODES = ("ok", "decline", "refuse", "error", "timeout", "no_callback", "duplicate_callback")
TIMEOUT_HOLD_MS = 30_000
CALLBACK_TRIES = 5
_encode = msgspec.json.Encoder(decimal_format="number").encode


class BadRequest(Exception):
    """A request the sandbox refuses as malformed (400)."""


Validator = Callable[[Any], str]
"""Checks the instrument field of a request (card, account, msisdn); returns it or raises."""


@dataclass(frozen=True)
class Kind:
    """One kind of request the sandbox takes: ``POST /v1/<path>`` with ``field`` naming what
    to charge or pay, and the reason it gives when declining."""

    path: str
    field: str
    validate: Validator
    decline_reason: str


@dataclass
class Order:
    order: int
    ref: str
    kind: str
    amount: int
    currency: str
    instrument: str
    callback_url: str
    status: str = "pending"
    reason: str | None = None


def sandbox_json(data: Any, status: int = 200) -> web.Response:
    """A JSON answer marked as coming from a sandbox (``X-Sandbox: true``)."""
    response = web.Response(body=_encode(data), status=status, content_type="application/json")
    response.headers["X-Sandbox"] = "true"
    return response


_json = sandbox_json


class SandboxServer:
    """A sandbox's life: its mode (one of ``modes``), the delay before outcomes, the tasks it
    runs in the background (owned by its aiohttp app, cancelled when it stops) and the HTTP
    session its callbacks go out on. Subclasses add their API in ``routes``."""

    modes: tuple[str, ...] = MODES
    what: str = "not a real partner; nothing is charged or paid."

    def __init__(
        self, name: str, clock: Clock | None = None, mode: str = "ok", delay_ms: int = 0
    ) -> None:
        if mode not in self.modes:
            raise ValueError(f"mode is one of {', '.join(self.modes)}")
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self.mode = mode
        self.delay_ms = delay_ms
        self.reason: str | None = None
        """A decline reason set through the control API (else the sandbox's own)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._about)
        self.routes(app)
        app.router.add_get("/sandbox/mode", self._get_mode)
        app.router.add_post("/sandbox/mode", self._set_mode)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._stop)
        return app

    def routes(self, app: web.Application) -> None:
        """Add the partner's own API."""

    def banner(self, url: str) -> str:
        return f"SANDBOX {self.name} ({self.what}) on {url} {self.settings_line()}"

    def settings_line(self) -> str:
        return f"mode={self.mode} delay_ms={self.delay_ms}"

    async def _start(self, _app: web.Application) -> None:
        self._closing = asyncio.Event()
        self._session = aiohttp.ClientSession()

    async def _stop(self, _app: web.Application) -> None:
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    async def _about(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "sandbox": self.name,
                "note": f"SANDBOX {self.name}: {self.what}",
                **self.settings(),
            }
        )

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, owned by the sandbox (cancelled when it stops)."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def hold(self) -> None:
        """What ``timeout`` mode does to an answer: hold it for ``delay_ms`` (default 30 s),
        or until the sandbox stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), (self.delay_ms or TIMEOUT_HOLD_MS) / 1000)

    async def deliver(self, url: str, body: bytes, headers: Callable[[], dict[str, str]]) -> int:
        """POST ``body`` to ``url``, retried on network errors and 5xx answers (``headers`` is
        called for each try). Returns the final HTTP status (0: never delivered)."""
        assert self._session is not None
        answered = 0
        for attempt in range(CALLBACK_TRIES):
            try:
                async with self._session.post(url, data=body, headers=headers()) as resp:
                    await resp.read()
                    answered = resp.status
            except aiohttp.ClientError as exc:
                log.warning("sandbox %s: callback to %s failed: %s", self.name, url, exc)
                answered = 0
            if 0 < answered < 500:
                break
            await asyncio.sleep(0.1 * 2**attempt)
        return answered

    # ------------------------------------------------------------------ control (unsigned)

    def settings(self) -> dict[str, Any]:
        return {"mode": self.mode, "delay_ms": self.delay_ms, "reason": self.reason}

    def configure(self, payload: dict[str, Any]) -> str | None:
        """Apply a subclass's own settings from a ``POST /sandbox/mode`` body; returns an
        error to answer instead (nothing is changed then)."""
        return None

    async def _get_mode(self, _request: web.Request) -> web.Response:
        return _json(self.settings())

    async def _set_mode(self, request: web.Request) -> web.Response:
        try:
            payload = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            return _json({"error": "the body is not JSON"}, 400)
        if not isinstance(payload, dict):
            return _json({"error": "the body is a JSON object"}, 400)
        mode = payload.get("mode", self.mode)
        if mode not in self.modes:
            return _json({"error": f"'mode' is one of {', '.join(self.modes)}"}, 400)
        delay = payload.get("delay_ms", 0 if "mode" in payload else self.delay_ms)
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 600_000:
            return _json({"error": "'delay_ms' is 0 to 600000"}, 400)
        reason = payload.get("reason", None if "mode" in payload else self.reason)
        if reason is not None and not isinstance(reason, str):
            return _json({"error": "'reason' is a string"}, 400)
        error = self.configure(payload)
        if error is not None:
            return _json({"error": error}, 400)
        self.mode, self.delay_ms, self.reason = mode, delay, reason
        log.info("sandbox %s: %s", self.name, self.settings_line())
        return await self._get_mode(request)


class Sandbox(SandboxServer):
    """The signed partner protocol (the bank): see the module's docstring."""

    def __init__(
        self,
        name: str,
        secret: str,
        kinds: list[Kind],
        clock: Clock | None = None,
        mode: str = "ok",
        delay_ms: int = 0,
    ) -> None:
        super().__init__(name, clock, mode, delay_ms)
        self.secret = secret
        self.kinds = kinds
        self.orders: dict[int, Order] = {}
        self.callbacks: list[tuple[int, str, int]] = []
        """(order, status sent, HTTP status answered) of every callback delivered."""

    def routes(self, app: web.Application) -> None:
        for kind in self.kinds:
            app.router.add_post(f"/v1/{kind.path}", self._handler(kind))
        app.router.add_post("/v1/status", self._status)
        app.router.add_get("/sandbox/orders", self._list_orders)

    # ------------------------------------------------------------------ signed API

    async def _verified(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        signing.verify(self.secret, request.headers.get(signing.HEADER), raw, self.clock.now_ms())
        try:
            payload = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise BadRequest("the body is not JSON") from None
        if not isinstance(payload, dict):
            raise BadRequest("the body is a JSON object")
        return payload

    def _handler(self, kind: Kind) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            try:
                payload = await self._verified(request)
                order = _positive(payload, "order")
                amount = _positive(payload, "amount")
                currency = payload.get("currency")
                if not (isinstance(currency, str) and len(currency) == 3):
                    raise BadRequest("'currency' is an ISO 4217 code")
                callback_url = payload.get("callback_url")
                if not isinstance(callback_url, str) or not callback_url.startswith(
                    ("http://", "https://")
                ):
                    raise BadRequest("'callback_url' is an http(s) URL")
                instrument = kind.validate(payload.get(kind.field))
            except Unauthorized as exc:
                return _json({"status": "refused", "reason": exc.code}, 401)
            except BadRequest as exc:
                return _json(
                    {"status": "refused", "reason": "invalid_request", "detail": str(exc)}, 400
                )
            known = self.orders.get(order)
            if known is not None:  # a retry of the same order: the same answer, no new charge
                if (known.kind, known.amount) != (kind.path, amount):
                    return _json({"status": "refused", "reason": "order_reused"}, 409)
                return _json({"ref": known.ref, "status": "accepted"}, 202)
            mode = self.mode
            if mode == "error":
                return _json({"status": "error", "reason": "sandbox_error"}, 500)
            if mode == "refuse":
                return _json({"status": "refused", "reason": self._reason(kind)}, 402)
            made = Order(
                order,
                f"{self.name}_{secrets.token_hex(8)}",
                kind.path,
                amount,
                currency,
                instrument,
                callback_url,
            )
            self.orders[order] = made
            if mode == "timeout":
                made.status = "succeeded"
                await self.hold()
            else:
                self.spawn(self._process(made, kind, mode, self.delay_ms))
            return _json({"ref": made.ref, "status": "accepted"}, 202)

        return handle

    async def _status(self, request: web.Request) -> web.Response:
        try:
            payload = await self._verified(request)
            order = _positive(payload, "order")
        except Unauthorized as exc:
            return _json({"status": "refused", "reason": exc.code}, 401)
        except BadRequest as exc:
            return _json(
                {"status": "refused", "reason": "invalid_request", "detail": str(exc)}, 400
            )
        found = self.orders.get(order)
        if found is None:
            return _json({"status": "unknown", "reason": "no_such_order"}, 404)
        return _json(self._outcome(found))

    # ------------------------------------------------------------------ processing

    def _reason(self, kind: Kind) -> str:
        return self.reason or kind.decline_reason

    async def _process(self, order: Order, kind: Kind, mode: str, delay_ms: int) -> None:
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if mode == "decline":
            order.status, order.reason = "failed", self._reason(kind)
        else:
            order.status = "succeeded"
        if mode == "no_callback":
            return
        for _ in range(2 if mode == "duplicate_callback" else 1):
            await self.send_callback(order)

    def _outcome(self, order: Order) -> dict[str, Any]:
        return {
            "order": order.order,
            "ref": order.ref,
            "status": order.status,
            "amount": order.amount,
            "currency": order.currency,
            "reason": order.reason,
        }

    async def send_callback(self, order: Order) -> int:
        """POST the order's outcome, signed, to its callback URL; retried on network errors
        and 5xx answers. Returns the final HTTP status (0: never delivered)."""
        body = _encode(self._outcome(order))

        def headers() -> dict[str, str]:
            return {
                signing.HEADER: signing.sign(self.secret, body, self.clock.now_ms()),
                "Content-Type": "application/json",
            }

        answered = await self.deliver(order.callback_url, body, headers)
        self.callbacks.append((order.order, order.status, answered))
        return answered

    async def _list_orders(self, _request: web.Request) -> web.Response:
        return _json([asdict(o) for o in self.orders.values()])


def _positive(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequest(f"'{name}' is a positive integer")
    return value


async def run(sandbox: SandboxServer, host: str, port: int) -> None:
    """Serve ``sandbox`` until SIGINT/SIGTERM; prints where it listens once it does."""
    import signal

    runner = web.AppRunner(sandbox.make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    print(sandbox.banner(f"http://{host}:{port}"), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
