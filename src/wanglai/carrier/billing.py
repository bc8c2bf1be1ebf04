"""The operator's carrier-billing API, in the style of CAMARA Carrier Billing: charge an amount to
a subscriber's phone bill in one step (``POST /payments``) or two (``/payments/prepare``, then
``/confirm`` or ``/cancel``), and read a payment back by its id or by our ``clientCorrelator``.

Every call carries an OAuth2 bearer token from the operator's token endpoint (client
credentials, the client id and secret in HTTP Basic); the token is kept until shortly before it
expires and fetched anew when the API answers 401. Answers map to the partner errors of
``partners/http.py``: a refusal (4xx) is ``Refused`` with the operator's code, a 5xx or a
network failure ``Unreachable``, no answer in time ``TimedOut`` (ask again by correlator).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from wanglai.domain import money
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid
from wanglai.partners.http import PartnerHttp, Refused, Unreachable

PROCESSING = "processing"
PENDING_VALIDATION = "pending_validation"
RESERVED = "reserved"
SUCCEEDED = "succeeded"
DENIED = "denied"
CANCELLED = "cancelled"
FINAL = (SUCCEEDED, DENIED, CANCELLED)

EVENT_PREFIX = "org.camaraproject.carrier-billing.v0."
"""The operator's notification types: ``payment-completed``, ``payment-denied``,
``payment-cancelled``, ... (CAMARA Carrier Billing v0.4)."""

PHONE = re.compile(r"^\+[1-9][0-9]{4,14}$")
"""CAMARA's phone number: E.164 with its leading ``+``."""
CORRELATOR = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PAYMENT_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
"""A payment id we keep: printable ASCII without spaces, as the operator's ids are."""
SINK_TOKEN_DAYS = 30
TOKEN_MARGIN_MS = 30_000
"""A token is fetched anew this long before the operator says it expires."""

_encode = msgspec.json.Encoder(decimal_format="number").encode
_decode_exact = msgspec.json.Decoder(float_hook=Decimal).decode


class Payment(msgspec.Struct, frozen=True):
    """A payment as the operator reports it, its amount back in minor units."""

    payment_id: str
    status: str
    """``processing``, ``pending_validation``, ``reserved``, ``succeeded``, ``denied`` or
    ``cancelled``."""
    phone: str
    amount: int
    currency: str
    correlator: str | None = None
    reference: str | None = None
    server_reference: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL


def rfc3339(ms: int) -> str:
    """``2024-05-01T08:00:00.000Z``: CAMARA's date-time."""
    at = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def check_phone(value: object) -> str:
    if not isinstance(value, str) or not PHONE.match(value):
        raise Invalid("invalid_phone", "The phone number is E.164 with a '+', e.g. +8613800138000.")
    return value


def check_correlator(value: object) -> str:
    if not isinstance(value, str) or not CORRELATOR.match(value):
        raise Invalid("invalid_correlator", "A client correlator is 1-64 of A-Z a-z 0-9 _ . : -")
    return value


def charge_body(
    phone: str,
    amount: int,
    currency: str,
    description: str,
    reference: str,
    correlator: str | None,
) -> dict[str, Any]:
    """The body of ``POST /payments`` and ``/payments/prepare`` (CAMARA's ``CreatePayment``),
    without its ``sink``; bad input is refused here, before anything is sent."""
    money.amount(amount)
    transaction: dict[str, Any] = {
        "phoneNumber": check_phone(phone),
        "paymentAmount": {
            "chargingInformation": {
                "amount": money.major(amount, money.currency(currency)),
                "currency": currency,
                "description": description,
            }
        },
        "referenceCode": reference,
    }
    if correlator is not None:
        transaction["clientCorrelator"] = check_correlator(correlator)
    return {"amountTransaction": transaction}


def payment_of(answer: Any) -> Payment:
    """A ``Payment`` from the operator's JSON (CAMARA's ``Payment`` / ``PaymentCreated``)."""
    try:
        transaction = answer["amountTransaction"]
        charging = transaction["paymentAmount"]["chargingInformation"]
        currency = money.currency(charging["currency"])
        amount = charging["amount"]
        if isinstance(amount, str):
            amount = Decimal(amount)
        if isinstance(amount, bool) or not isinstance(amount, (int, Decimal)):
            raise TypeError(amount)
        payment_id, status = answer["paymentId"], answer["paymentStatus"]
        if not (isinstance(payment_id, str) and PAYMENT_ID.fullmatch(payment_id)):
            raise TypeError(payment_id)
        if not isinstance(status, str):
            raise TypeError(status)
        return Payment(
            payment_id,
            status,
            str(transaction.get("phoneNumber", "")),
            money.minor(Decimal(amount), currency),
            currency,
            transaction.get("clientCorrelator"),
            transaction.get("referenceCode"),
            transaction.get("serverReferenceCode"),
        )
    except (KeyError, TypeError, ArithmeticError, Invalid):
        raise Unreachable("the operator's payment answer is malformed") from None


class TokenSource:
    """OAuth2 client credentials: one bearer token, reused until shortly before it expires."""

    def __init__(
        self, http: PartnerHttp, clock: Clock, url: str, client_id: str, client_secret: str
    ) -> None:
        self.http = http
        self.clock = clock
        self.url = url
        self.client_id = client_id
        self.client_secret = client_secret
        self._token: str | None = None
        self._expires_ms = 0
        self.fetched = 0
        """How many tokens were fetched (a test reads it)."""

    async def token(self) -> str:
        if self._token is not None and self.clock.now_ms() < self._expires_ms - TOKEN_MARGIN_MS:
            return self._token
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        status, raw = await self.http.request(
            "POST",
            self.url,
            b"grant_type=client_credentials",
            {
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            answer = msgspec.json.decode(raw) if raw else {}
        except msgspec.DecodeError:
            answer = {}
        if status >= 500 or not isinstance(answer, dict):
            raise Unreachable(f"the operator's token endpoint answered {status}")
        if status != 200:
            raise Refused(str(answer.get("error") or f"token_refused_{status}"))
        token, expires_in = answer.get("access_token"), answer.get("expires_in", 3600)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise Unreachable("the operator's token answer is malformed")
        self._token = token
        self._expires_ms = self.clock.now_ms() + expires_in * 1000
        self.fetched += 1
        return token

    def forget(self, token: str) -> None:
        """The API refused ``token`` (401): the next call fetches another."""
        if self._token == token:
            self._token = None


def token_url_for(api_url: str) -> str:
    """The token endpoint at the API's origin (``http://host:port/oauth2/token``)."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/oauth2/token"


class BillingClient:
    def __init__(
        self,
        http: PartnerHttp,
        clock: Clock,
        base_url: str,
        client_id: str,
        client_secret: str,
        token_url: str = "",
    ) -> None:
        self.http = http
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.tokens = TokenSource(
            http, clock, token_url or token_url_for(base_url), client_id, client_secret
        )

    # ------------------------------------------------------------ the payments API

    async def create_payment(
        self,
        phone: str,
        amount: int,
        currency: str,
        description: str,
        reference: str,
        correlator: str | None = None,
        sink: str | None = None,
        sink_token: str | None = None,
    ) -> Payment:
        """One-step payment: charge ``amount`` (minor units) to ``phone``'s bill. A retry with
        the same ``correlator`` gets the first payment back; it is charged once."""
        body = charge_body(phone, amount, currency, description, reference, correlator)
        self._add_sink(body, sink, sink_token)
        return payment_of(await self._call("POST", "/payments", body))

    async def prepare_payment(
        self,
        phone: str,
        amount: int,
        currency: str,
        description: str,
        reference: str,
        correlator: str | None = None,
        sink: str | None = None,
        sink_token: str | None = None,
    ) -> Payment:
        """Two-step payment, first step: reserve ``amount`` on ``phone``'s account."""
        body = charge_body(phone, amount, currency, description, reference, correlator)
        self._add_sink(body, sink, sink_token)
        return payment_of(await self._call("POST", "/payments/prepare", body))

    async def confirm_payment(self, payment_id: str, phone: str) -> None:
        """Charge a reserved payment (the outcome comes as a notification, or ask for it)."""
        path = f"/payments/{quote(payment_id, safe='')}/confirm"
        await self._call("POST", path, {"phoneNumber": check_phone(phone)})

    async def cancel_payment(self, payment_id: str, phone: str) -> None:
        """Release a reserved payment; nothing is charged."""
        path = f"/payments/{quote(payment_id, safe='')}/cancel"
        await self._call("POST", path, {"phoneNumber": check_phone(phone)})

    async def payment(self, payment_id: str) -> Payment | None:
        """The payment, or None when the operator has none by that id."""
        answer = await self._call("GET", f"/payments/{quote(payment_id, safe='')}", None)
        return None if answer is None else payment_of(answer)

    async def payment_by_correlator(self, correlator: str) -> Payment | None:
        """Our payment with this correlator, or None when the operator never took it."""
        path = f"/payments?clientCorrelator={quote(check_correlator(correlator), safe='')}"
        answer = await self._call("GET", path, None)
        if not isinstance(answer, list):
            raise Unreachable("the operator's payment list is malformed")
        found = [payment_of(item) for item in answer]
        return next((p for p in found if p.correlator == correlator), None)

    # ------------------------------------------------------------ transport

    def _add_sink(self, body: dict[str, Any], sink: str | None, token: str | None) -> None:
        """Where the operator posts the payment's notifications, and the bearer token it shows
        there (CAMARA's ``sinkCredential``, valid for ``SINK_TOKEN_DAYS``)."""
        if sink is None:
            return
        body["sink"] = sink
        if token is not None:
            expires = self.clock.now_ms() // 1000 + SINK_TOKEN_DAYS * 86_400
            body["sinkCredential"] = {
                "credentialType": "ACCESSTOKEN",
                "accessToken": token,
                "accessTokenExpiresUtc": rfc3339(expires * 1000),
                "accessTokenType": "bearer",
            }

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One authorised call; a 401 fetches a new token and tries once more. Returns the
        decoded answer, or None for a 404 on a read."""
        raw_body = None if body is None else _encode(body)
        url = f"{self.base_url}{path}"
        for attempt in (1, 2):
            token = await self.tokens.token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if raw_body is not None:
                headers["Content-Type"] = "application/json"
            status, raw = await self.http.request(method, url, raw_body, headers)
            if status == 401 and attempt == 1:
                self.tokens.forget(token)
                continue
            break
        try:
            answer = _decode_exact(raw) if raw else None
        except msgspec.DecodeError:
            answer = None
        if status >= 500 or status == 429:
            raise Unreachable(f"{url} answered {status}")
        if status == 404 and method == "GET":
            return None
        if status >= 400:
            raise Refused(reason_of(answer, status))
        return answer


def reason_of(answer: Any, status: int) -> str:
    """The operator's error code as our short reason: ``CARRIER_BILLING.PAYMENT_DENIED`` is
    ``payment_denied``."""
    code = answer.get("code") if isinstance(answer, dict) else None
    reason = code.rsplit(".", 1)[-1].lower()[:64] if isinstance(code, str) else ""
    if not re.fullmatch(r"[a-z0-9_]+", reason):
        return f"refused_{status}"
    return reason


# ---------------------------------------------------------------- our side of the notifications


def sink_token(secret: str, order_id: int) -> str:
    """The bearer token the operator shows when it notifies us about ``order_id``'s payment:
    the order id and a MAC of it, so a token speaks for one order only."""
    mac = hmac.new(secret.encode(), f"wanglai-sink:{order_id}".encode(), hashlib.sha256)
    return f"{order_id}.{base64.urlsafe_b64encode(mac.digest()).decode().rstrip('=')}"


def sink_order(secret: str, token: str | None) -> int | None:
    """The order a sink token speaks for, or None when it is not one of ours."""
    if not token or len(token) > 128:
        return None
    order, dot, _mac = token.partition(".")
    if not dot or not (order.isascii() and order.isdigit()) or len(order) > 18:
        return None
    order_id = int(order)
    if order_id <= 0 or not hmac.compare_digest(sink_token(secret, order_id), token):
        return None
    return order_id
