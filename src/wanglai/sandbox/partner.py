"""What the bank and billing SANDBOXES share: signed requests in, an "accepted" answer with the
sandbox's own reference, a signed callback with the outcome later, a status query, and failure
modes switched at run time through ``POST /sandbox/mode``.

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
_encode = msgspec.json.Encoder().encode


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


def _json(data: Any, status: int = 200) -> web.Response:
    response = web.Response(body=_encode(data), status=status, content_type="application/json")
    response.headers["X-Sandbox"] = "true"
    return response


class Sandbox:
    def __init__(
        self,
        name: str,
        secret: str,
        kinds: list[Kind],
        clock: Clock | None = None,
        mode: str = "ok",
        delay_ms: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode is one of {', '.join(MODES)}")
        self.name = name
        self.secret = secret
        self.kinds = kinds
        self.clock: Clock = clock or SystemClock()
        self.mode = mode
        self.delay_ms = delay_ms
        self.reason: str | None = None
        """A decline reason set through the control API (else each kind's own)."""
        self.orders: dict[int, Order] = {}
        self.callbacks: list[tuple[int, str, int]] = []
        """(order, status sent, HTTP status answered) of every callback delivered."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ the app

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._about)
        for kind in self.kinds:
            app.router.add_post(f"/v1/{kind.path}", self._handler(kind))
        app.router.add_post("/v1/status", self._status)
        app.router.add_get("/sandbox/mode", self._get_mode)
        app.router.add_post("/sandbox/mode", self._set_mode)
        app.router.add_get("/sandbox/orders", self._list_orders)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._stop)
        return app

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
                "note": f"SANDBOX {self.name}: not a real partner; nothing is charged or paid.",
                "mode": self.mode,
                "delay_ms": self.delay_ms,
            }
        )

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
                hold = self.delay_ms or TIMEOUT_HOLD_MS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), hold / 1000)
            else:
                self._spawn(self._process(made, kind, mode, self.delay_ms))
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

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        assert self._session is not None
        body = _encode(self._outcome(order))
        answered = 0
        for attempt in range(CALLBACK_TRIES):
            headers = {
                signing.HEADER: signing.sign(self.secret, body, self.clock.now_ms()),
                "Content-Type": "application/json",
            }
            try:
                async with self._session.post(
                    order.callback_url, data=body, headers=headers
                ) as resp:
                    await resp.read()
                    answered = resp.status
            except aiohttp.ClientError as exc:
                log.warning("sandbox %s: callback for %d failed: %s", self.name, order.order, exc)
                answered = 0
            if 0 < answered < 500:
                break
            await asyncio.sleep(0.1 * 2**attempt)
        self.callbacks.append((order.order, order.status, answered))
        return answered

    # ------------------------------------------------------------------ control (unsigned)

    async def _get_mode(self, _request: web.Request) -> web.Response:
        return _json({"mode": self.mode, "delay_ms": self.delay_ms, "reason": self.reason})

    async def _set_mode(self, request: web.Request) -> web.Response:
        try:
            payload = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            return _json({"error": "the body is not JSON"}, 400)
        if not isinstance(payload, dict) or payload.get("mode") not in MODES:
            return _json({"error": f"'mode' is one of {', '.join(MODES)}"}, 400)
        delay = payload.get("delay_ms", 0)
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 600_000:
            return _json({"error": "'delay_ms' is 0 to 600000"}, 400)
        reason = payload.get("reason")
        if reason is not None and not isinstance(reason, str):
            return _json({"error": "'reason' is a string"}, 400)
        self.mode, self.delay_ms, self.reason = payload["mode"], delay, reason
        log.info("sandbox %s: mode %s, delay %d ms", self.name, self.mode, delay)
        return await self._get_mode(request)

    async def _list_orders(self, _request: web.Request) -> web.Response:
        return _json([asdict(o) for o in self.orders.values()])


def _positive(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequest(f"'{name}' is a positive integer")
    return value


async def run(sandbox: Sandbox, host: str, port: int) -> None:
    """Serve ``sandbox`` until SIGINT/SIGTERM; prints where it listens once it does."""
    import signal

    runner = web.AppRunner(sandbox.make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    print(
        f"SANDBOX {sandbox.name} (not a real partner) on http://{host}:{port}"
        f" mode={sandbox.mode} delay_ms={sandbox.delay_ms}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
