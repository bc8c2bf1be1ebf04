"""Signed JSON over HTTP to a partner: one aiohttp session, owned by the funding service and
opened and closed with the container; each outcome mapped to what the caller must do next."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from wanglai.domain.clock import Clock
from wanglai.partners import signing

_encode = msgspec.json.Encoder().encode


class PartnerError(Exception):
    """A partner call that did not end in an accepted request."""


class Refused(PartnerError):
    """The partner answered and refused (4xx): nothing was done; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unreachable(PartnerError):
    """The partner could not be reached, or failed (5xx) before taking the request."""


class TimedOut(PartnerError):
    """No answer in time: the partner may or may not have taken the request (ask its status)."""


class PartnerHttp:
    def __init__(self, clock: Clock, timeout_s: float = 10.0) -> None:
        self.clock = clock
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; returns (status, raw body) of whatever the partner answered. A
        timeout is ``TimedOut``, a network failure ``Unreachable``."""
        if self._session is None:
            raise Unreachable("the partner client is not started")
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as resp:
                return resp.status, await resp.read()
        except TimeoutError:
            raise TimedOut(url) from None
        except aiohttp.ClientError as exc:
            raise Unreachable(f"{url}: {exc}") from None

    async def post(self, url: str, secret: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """POST ``payload`` signed; returns (status, decoded JSON) of a 2xx or 404 answer."""
        body = _encode(payload)
        headers = {
            signing.HEADER: signing.sign(secret, body, self.clock.now_ms()),
            "Content-Type": "application/json",
        }
        status, raw = await self.request("POST", url, body, headers)
        answer = decode_json(raw)
        if status >= 500:
            raise Unreachable(f"{url} answered {status}")
        if 400 <= status < 500 and status != 404:
            reason = answer.get("reason") if isinstance(answer, dict) else None
            raise Refused(str(reason or f"refused_{status}"))
        return status, answer


def decode_json(raw: bytes) -> Any:
    """A partner's answer as JSON, or ``{}`` when it is empty or not JSON."""
    try:
        return msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError:
        return {}


class Outcome(msgspec.Struct):
    """What a partner knows of one of our orders (a status answer or a callback)."""

    order: int
    ref: str
    status: str
    """``pending``, ``succeeded`` or ``failed``."""
    amount: int
    reason: str | None = None


def accepted_ref(answer: Any) -> str:
    """The partner's reference from an "accepted" answer."""
    ref = answer.get("ref") if isinstance(answer, dict) else None
    if not isinstance(ref, str) or not ref or len(ref) > 64:
        raise Unreachable("the partner's answer has no reference")
    return ref


def outcome_of(status: int, answer: Any) -> Outcome | None:
    """A status answer: the order's outcome, or None when the partner never heard of it."""
    if status == 404:
        return None
    try:
        return msgspec.convert(answer, Outcome)
    except msgspec.ValidationError:
        raise Unreachable("the partner's status answer is malformed") from None


class PartnerClient:
    """A partner's order API: submit an order (its reference comes back once accepted) and ask
    what became of one. The bank and the operator's billing are each one of these."""

    def __init__(self, http: PartnerHttp, base_url: str, secret: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.secret = secret

    async def submit(self, path: str, order: dict[str, Any]) -> str:
        """POST a signed order; returns the partner's reference once it accepted it."""
        _status, answer = await self.http.post(f"{self.base_url}{path}", self.secret, order)
        return accepted_ref(answer)

    async def status(self, order: int) -> Outcome | None:
        status, answer = await self.http.post(
            f"{self.base_url}/v1/status", self.secret, {"order": order}
        )
        return outcome_of(status, answer)
