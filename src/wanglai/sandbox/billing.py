"""The operator billing SANDBOX: charges to a subscriber's phone bill, answered and called back
as ``sandbox/partner.py`` describes. The carrier issue replaces it with the operator's API."""

from __future__ import annotations

from typing import Any

from wanglai.domain.clock import Clock
from wanglai.sandbox.partner import BadRequest, Kind, Sandbox


def _msisdn(value: Any) -> str:
    if not (
        isinstance(value, str)
        and value.startswith("+")
        and value[1:].isascii()
        and value[1:].isdigit()
        and 8 <= len(value) <= 16
    ):
        raise BadRequest("'msisdn' is an E.164 number, e.g. +8613800138000")
    return value


def billing(
    secret: str, clock: Clock | None = None, mode: str = "ok", delay_ms: int = 0
) -> Sandbox:
    return Sandbox(
        "billing",
        secret,
        [Kind("charges", "msisdn", _msisdn, "credit_limit_exceeded")],
        clock,
        mode,
        delay_ms,
    )
