"""The operator SANDBOX: the operator's side of carrier billing, for development and tests. NOT
the operator: nothing is charged to anyone's phone bill.

It serves what a real operator exposes, in the style of CAMARA Carrier Billing (v0.4):
``POST /oauth2/token`` (client credentials, HTTP Basic) and, under ``/carrier-billing/v0.4``,
``POST /payments`` (one step), ``POST /payments/prepare`` then ``/payments/{id}/confirm`` or
``/cancel`` (two steps), ``GET /payments/{id}`` and ``GET /payments?clientCorrelator=``. A
payment's status changes are posted to its ``sink`` as CloudEvents with the ``sinkCredential``
bearer token. A repeated ``clientCorrelator`` gets the first payment back (charged once).

Each number may be charged at most ``monthly_cap`` a China-time month (processing, reserved
and succeeded payments count); over it a payment is refused with ``422
CARRIER_BILLING.USER_AMOUNT_THRESHOLD_OVERPASSED``.

Modes (what the next new payments get; switched by ``--mode`` or ``POST /sandbox/mode``):
``ok`` 201 ``processing``, then ``succeeded`` and a ``payment-completed`` notification after
``delay_ms``; ``sync`` 201 ``succeeded`` at once; ``deny`` 201 ``processing``, then ``denied``
and a ``payment-denied`` notification; ``refuse`` a synchronous 403
``CARRIER_BILLING.PAYMENT_DENIED``, nothing recorded; ``error`` a synchronous 500, nothing
recorded; ``timeout`` recorded and succeeded, but the answer is held for ``delay_ms`` (default
30 s) and no notification is sent; ``no_callback`` as ``ok`` without the notification;
``duplicate_callback`` as ``ok`` with the notification sent twice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from aiohttp import web

from wanglai.carrier.billing import (
    CANCELLED,
    DENIED,
    EVENT_PREFIX,
    PHONE,
    PROCESSING,
    RESERVED,
    SUCCEEDED,
    rfc3339,
)
from wanglai.domain import money
from wanglai.domain.clock import Clock
from wanglai.domain.funding import month_of
from wanglai.sandbox.partner import SandboxServer, sandbox_json

log = logging.getLogger("wanglai.sandbox")

API = "/carrier-billing/v0.4"
MODES = ("ok", "sync", "deny", "refuse", "error", "timeout", "no_callback", "duplicate_callback")
EVENT = EVENT_PREFIX
COMPLETED, DENIED_EVENT, CANCELLED_EVENT = (
    "payment-completed",
    "payment-denied",
    "payment-cancelled",
)
DEFAULT_CAP = Decimal("500.00")
DEFAULT_TOKEN_TTL_S = 3600
MAX_AMOUNT = Decimal("100000")
COUNTS_AGAINST_CAP = (PROCESSING, RESERVED, SUCCEEDED)
_decode = msgspec.json.Decoder(float_hook=Decimal).decode
_CORRELATOR = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_X_CORRELATOR = re.compile(r"^[A-Za-z0-9-]{0,55}$")


class ApiError(Exception):
    """An answer in CAMARA's error shape: ``{"status", "code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


@dataclass
class Payment:
    payment_id: str
    client_id: str
    phone: str
    amount: Decimal
    currency: str
    description: str
    reference: str
    correlator: str | None
    sink: str | None
    sink_token: str | None
    created_ms: int
    status: str = PROCESSING
    paid_ms: int | None = None
    denial: str | None = None
    server_reference: str = field(default_factory=lambda: "SANDBOX-" + secrets.token_hex(6))

    def same_request(self, other: Payment) -> bool:
        return (self.phone, self.amount, self.currency) == (
            other.phone,
            other.amount,
            other.currency,
        )

    def view(self) -> dict[str, Any]:
        """The payment as CAMARA's ``Payment`` schema shows it."""
        transaction: dict[str, Any] = {
            "phoneNumber": self.phone,
            "paymentAmount": {
                "chargingInformation": {
                    "amount": self.amount,
                    "currency": self.currency,
                    "description": self.description,
                }
            },
            "referenceCode": self.reference,
            "resourceURL": f"urn:payments:{self.payment_id}",
            "serverReferenceCode": self.server_reference,
        }
        if self.correlator is not None:
            transaction["clientCorrelator"] = self.correlator
        out: dict[str, Any] = {
            "paymentId": self.payment_id,
            "amountTransaction": transaction,
            "paymentStatus": self.status,
            "paymentCreationDate": rfc3339(self.created_ms),
        }
        if self.paid_ms is not None:
            out["paymentDate"] = rfc3339(self.paid_ms)
        if self.sink is not None:
            out["sink"] = self.sink
        return out


class OperatorSandbox(SandboxServer):
    modes = MODES
    what = "not the operator; nothing is charged to any phone bill"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        clock: Clock | None = None,
        mode: str = "ok",
        delay_ms: int = 0,
        monthly_cap: Decimal = DEFAULT_CAP,
        token_ttl_s: int = DEFAULT_TOKEN_TTL_S,
    ) -> None:
        super().__init__("operator", clock, mode, delay_ms)
        self.clients = {client_id: client_secret}
        self.monthly_cap = monthly_cap
        self.token_ttl_s = token_ttl_s
        self.tokens: dict[str, tuple[str, int]] = {}
        """access token -> (client id, expiry in ms)."""
        self.tokens_issued = 0
        self.payments: dict[str, Payment] = {}
        self._correlators: dict[tuple[str, str], str] = {}
        self.notifications: list[tuple[str, str, int]] = []
        """(payment id, event type, HTTP status answered) of every notification delivered."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/oauth2/token", self._token)
        app.router.add_post(f"{API}/payments", self._api(self._create))
        app.router.add_get(f"{API}/payments", self._api(self._list))
        app.router.add_post(f"{API}/payments/prepare", self._api(self._prepare))
        app.router.add_get(f"{API}/payments/{{payment_id}}", self._api(self._get))
        app.router.add_post(f"{API}/payments/{{payment_id}}/confirm", self._api(self._confirm))
        app.router.add_post(f"{API}/payments/{{payment_id}}/cancel", self._api(self._cancel))
        app.router.add_get("/sandbox/payments", self._all_payments)
        app.router.add_post("/sandbox/tokens/revoke", self._revoke)

    def settings_line(self) -> str:
        return (
            f"mode={self.mode} delay_ms={self.delay_ms} monthly_cap={self.monthly_cap}"
            f" token_ttl_s={self.token_ttl_s}"
        )

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "monthly_cap": str(self.monthly_cap),
            "token_ttl_s": self.token_ttl_s,
        }

    def configure(self, payload: dict[str, Any]) -> str | None:
        cap, ttl = self.monthly_cap, self.token_ttl_s
        if "monthly_cap" in payload:
            try:
                cap = Decimal(str(payload["monthly_cap"]))
            except InvalidOperation:
                return "'monthly_cap' is an amount, e.g. \"300.00\""
            if not cap.is_finite() or cap < 0:
                return "'monthly_cap' is an amount, e.g. \"300.00\""
        if "token_ttl_s" in payload:
            ttl = payload["token_ttl_s"]
            if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= 86_400:
                return "'token_ttl_s' is 1 to 86400"
        self.monthly_cap, self.token_ttl_s = cap, ttl
        return None

    # ------------------------------------------------------------------ OAuth2

    async def _token(self, request: web.Request) -> web.Response:
        """Client credentials (RFC 6749 4.4): the client id and secret in HTTP Basic."""
        client = _basic(request.headers.get("Authorization", ""))
        if client is None or self.clients.get(client[0]) != client[1]:
            answer = sandbox_json(
                {
                    "error": "invalid_client",
                    "error_description": "SANDBOX: unknown client id or wrong secret.",
                },
                401,
            )
            answer.headers["WWW-Authenticate"] = 'Basic realm="operator-sandbox"'
            return answer
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return sandbox_json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "SANDBOX: only grant_type=client_credentials.",
                },
                400,
            )
        token = "sandbox-" + secrets.token_urlsafe(24)
        self.tokens[token] = (client[0], self.clock.now_ms() + self.token_ttl_s * 1000)
        self.tokens_issued += 1
        return sandbox_json(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s}
        )

    def _client(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        found = self.tokens.get(token)
        if found is None or self.clock.now_ms() >= found[1]:
            self.tokens.pop(token, None)
            raise ApiError(
                401,
                "UNAUTHENTICATED",
                "SANDBOX: request not authenticated due to missing, invalid, or expired"
                " credentials.",
            )
        return found[0]

    async def _revoke(self, _request: web.Request) -> web.Response:
        """Forget every token: the next API call answers 401 (as after a key rotation)."""
        revoked = len(self.tokens)
        self.tokens.clear()
        return sandbox_json({"revoked": revoked})

    # ------------------------------------------------------------------ the payments API

    def _api(self, handler: Any) -> Any:
        async def handle(request: web.Request) -> web.Response:
            try:
                client = self._client(request)
                status, answer = await handler(request, client)
                response = sandbox_json(answer, status) if answer is not None else None
            except ApiError as exc:
                body = {"status": exc.status, "code": exc.code, "message": exc.message}
                response = sandbox_json(body, exc.status)
            if response is None:
                response = web.Response(status=202)
                response.headers["X-Sandbox"] = "true"
            correlation = request.headers.get("x-correlator", "")
            if correlation and _X_CORRELATOR.match(correlation):
                response.headers["x-correlator"] = correlation
            return response

        return handle

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            payload = _decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise _invalid("SANDBOX: the body is not JSON.") from None
        if not isinstance(payload, dict):
            raise _invalid("SANDBOX: the body is a JSON object.")
        return payload

    def _payment_in(self, payload: dict[str, Any], client: str) -> Payment:
        """A new payment from a ``CreatePayment`` body, every field checked."""
        transaction = payload.get("amountTransaction")
        if not isinstance(transaction, dict):
            raise _invalid("Expected property is missing: amountTransaction.")
        phone = transaction.get("phoneNumber")
        if not isinstance(phone, str) or not PHONE.match(phone):
            raise _invalid("phoneNumber is E.164 with a leading '+', e.g. +8613800138000.")
        amount_in = transaction.get("paymentAmount")
        charging = amount_in.get("chargingInformation") if isinstance(amount_in, dict) else None
        if not isinstance(charging, dict):
            raise _invalid("Expected property is missing: paymentAmount.chargingInformation.")
        currency = charging.get("currency")
        if not isinstance(currency, str) or currency not in money.CURRENCIES:
            raise _invalid("Currency is unknown or not authorized.")
        amount = _amount(charging.get("amount"), currency)
        description = charging.get("description")
        if not isinstance(description, str) or not 0 < len(description) <= 255:
            raise _invalid("chargingInformation.description is 1-255 characters.")
        reference = transaction.get("referenceCode")
        if not isinstance(reference, str) or not 0 < len(reference) <= 64:
            raise _invalid("referenceCode is 1-64 characters.")
        correlator = transaction.get("clientCorrelator")
        if correlator is not None and (
            not isinstance(correlator, str) or not _CORRELATOR.match(correlator)
        ):
            raise _invalid("clientCorrelator is 1-64 of A-Z a-z 0-9 _ . : -")
        sink = payload.get("sink")
        if sink is not None and (
            not isinstance(sink, str) or not sink.startswith(("http://", "https://"))
        ):
            raise _invalid("sink is an http(s) URL.")
        sink_token = _sink_token(payload.get("sinkCredential"))
        return Payment(
            f"sandbox-{secrets.token_hex(10)}",
            client,
            phone,
            amount,
            currency,
            description,
            reference,
            correlator,
            sink,
            sink_token,
            self.clock.now_ms(),
        )

    def _admit(self, made: Payment) -> Payment | None:
        """The payment already made with ``made``'s correlator (a retry), or None after the
        mode and the monthly cap let ``made`` through (it is not recorded yet)."""
        if made.correlator is not None:
            known_id = self._correlators.get((made.client_id, made.correlator))
            if known_id is not None:
                known = self.payments[known_id]
                if not known.same_request(made):
                    raise _invalid("clientCorrelator already exist on server.")
                return known
        if self.mode == "error":
            raise ApiError(500, "INTERNAL", "SANDBOX: a server error (error mode).")
        if self.mode == "refuse":
            raise ApiError(
                403,
                "CARRIER_BILLING.PAYMENT_DENIED",
                f"SANDBOX: payment denied by business ({self.reason or 'refuse mode'}).",
            )
        month = month_of(made.created_ms)
        used = sum(
            (
                p.amount
                for p in self.payments.values()
                if p.phone == made.phone
                and p.status in COUNTS_AGAINST_CAP
                and month_of(p.created_ms) == month
            ),
            Decimal(0),
        )
        if used + made.amount > self.monthly_cap:
            raise ApiError(
                422,
                "CARRIER_BILLING.USER_AMOUNT_THRESHOLD_OVERPASSED",
                "SANDBOX: unauthorized payment request. Accumulated user mobile payments"
                f" overpass account amount threshold ({used} of {self.monthly_cap} used).",
            )
        return None

    def _record(self, made: Payment) -> None:
        self.payments[made.payment_id] = made
        if made.correlator is not None:
            self._correlators[(made.client_id, made.correlator)] = made.payment_id

    async def _create(self, request: web.Request, client: str) -> tuple[int, Any]:
        made = self._payment_in(await self._body(request), client)
        known = self._admit(made)
        if known is not None:  # a retry: the first payment, charged once
            return 200, known.view()
        mode = self.mode
        self._record(made)
        if mode in ("sync", "timeout"):
            made.status, made.paid_ms = SUCCEEDED, self.clock.now_ms()
            if mode == "timeout":
                await self.hold()
            return 201, made.view()
        self.spawn(self._process(made, mode, self.delay_ms))
        return 201, made.view()

    async def _prepare(self, request: web.Request, client: str) -> tuple[int, Any]:
        made = self._payment_in(await self._body(request), client)
        known = self._admit(made)
        if known is not None:
            return 200, known.view()
        made.status = RESERVED
        self._record(made)
        return 201, made.view()

    def _own(self, request: web.Request, client: str) -> Payment:
        found = self.payments.get(request.match_info["payment_id"])
        if found is None or found.client_id != client:
            raise ApiError(404, "NOT_FOUND", "SANDBOX: the specified resource is not found.")
        return found

    async def _second_step(self, request: web.Request, client: str) -> Payment:
        found = self._own(request, client)
        payload = await self._body(request)
        phone = payload.get("phoneNumber")
        if phone is not None and phone != found.phone:
            raise _invalid("phoneNumber is not the payment's.")
        if found.status == SUCCEEDED:
            raise ApiError(409, "CARRIER_BILLING.PAYMENT_CONFIRMED", "Payment has been confirmed.")
        if found.status == CANCELLED:
            raise ApiError(409, "CARRIER_BILLING.PAYMENT_CANCELLED", "Payment has been cancelled.")
        if found.status != RESERVED:
            raise ApiError(409, "ALREADY_EXISTS", f"SANDBOX: the payment is {found.status}.")
        return found

    async def _confirm(self, request: web.Request, client: str) -> tuple[int, Any]:
        found = await self._second_step(request, client)
        if self.mode == "deny":
            self._deny(found)
        else:
            found.status, found.paid_ms = SUCCEEDED, self.clock.now_ms()
        if self.mode != "no_callback":
            self.spawn(self.notify(found))
        return 202, None

    async def _cancel(self, request: web.Request, client: str) -> tuple[int, Any]:
        found = await self._second_step(request, client)
        found.status = CANCELLED
        if self.mode != "no_callback":
            self.spawn(self.notify(found))
        return 202, None

    async def _get(self, request: web.Request, client: str) -> tuple[int, Any]:
        return 200, self._own(request, client).view()

    async def _list(self, request: web.Request, client: str) -> tuple[int, Any]:
        """CAMARA's ``retrievePayments``, with ``clientCorrelator`` as an extra filter."""
        correlator = request.query.get("clientCorrelator")
        statuses = request.query.getall("paymentStatus", [])
        found = [
            p.view()
            for p in self.payments.values()
            if p.client_id == client
            and (correlator is None or p.correlator == correlator)
            and (not statuses or p.status in statuses)
        ]
        return 200, found

    async def _all_payments(self, _request: web.Request) -> web.Response:
        return sandbox_json([p.view() for p in self.payments.values()])

    # ------------------------------------------------------------------ processing

    def _deny(self, payment: Payment) -> None:
        payment.status = DENIED
        payment.denial = self.reason or "SANDBOX: the operator denied this payment (deny mode)."

    async def _process(self, payment: Payment, mode: str, delay_ms: int) -> None:
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if mode == "deny":
            self._deny(payment)
        else:
            payment.status, payment.paid_ms = SUCCEEDED, self.clock.now_ms()
        if mode == "no_callback":
            return
        for _ in range(2 if mode == "duplicate_callback" else 1):
            await self.notify(payment)

    def event(self, payment: Payment) -> dict[str, Any]:
        """The CloudEvent that tells ``payment``'s current status."""
        data: dict[str, Any] = {"paymentId": payment.payment_id}
        if payment.status == SUCCEEDED:
            kind = COMPLETED
            data.update(status="succeeded", description="SANDBOX: payment completed.")
            data["paymentDate"] = rfc3339(payment.paid_ms or self.clock.now_ms())
        elif payment.status == DENIED:
            kind = DENIED_EVENT
            data.update(status="failed", description="SANDBOX: payment denied.")
            data["denialReason"] = payment.denial
        else:
            kind = CANCELLED_EVENT
            data.update(status="succeeded", description="SANDBOX: payment cancelled.")
        return {
            "id": secrets.token_hex(12),
            "source": "urn:wanglai:operator-sandbox",
            "type": EVENT + kind,
            "specversion": "1.0",
            "datacontenttype": "application/json",
            "time": rfc3339(self.clock.now_ms()),
            "data": data,
        }

    async def notify(self, payment: Payment) -> int:
        """POST the payment's status to its sink (if it has one); returns the HTTP status."""
        if payment.sink is None:
            return 0
        event = self.event(payment)
        body = msgspec.json.encode(event)
        headers = {"Content-Type": "application/cloudevents+json", "X-Sandbox": "true"}
        if payment.sink_token is not None:
            headers["Authorization"] = f"Bearer {payment.sink_token}"
        answered = await self.deliver(payment.sink, body, lambda: headers)
        self.notifications.append((payment.payment_id, event["type"], answered))
        return answered


def _basic(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


def _amount(value: object, currency: str) -> Decimal:
    """A positive amount, as a JSON number or a decimal string, in whole minor units."""
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise _invalid("chargingInformation.amount is a number, e.g. 50.00.") from None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise _invalid("chargingInformation.amount is a number, e.g. 50.00.")
    amount = Decimal(value)
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
        raise _invalid(f"chargingInformation.amount is more than 0 and at most {MAX_AMOUNT}.")
    digits = money.CURRENCIES[currency]
    if amount != amount.quantize(Decimal(1).scaleb(-digits), rounding="ROUND_DOWN"):
        raise _invalid(f"chargingInformation.amount has at most {digits} decimals in {currency}.")
    return amount


def _sink_token(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("credentialType") != "ACCESSTOKEN":
        raise ApiError(400, "INVALID_CREDENTIAL", "Only Access token is supported")
    token = value.get("accessToken")
    if value.get("accessTokenType") != "bearer" or not isinstance(token, str) or not token:
        raise ApiError(400, "INVALID_TOKEN", "Only bearer token is supported")
    return token
