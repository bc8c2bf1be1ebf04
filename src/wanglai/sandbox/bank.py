"""The bank gateway SANDBOX: card charges (top-ups) and payouts to a bank account
(withdrawals), answered and called back as ``sandbox/partner.py`` describes."""

from __future__ import annotations

from typing import Any

from wanglai.domain import funding
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid
from wanglai.sandbox.partner import BadRequest, Kind, Sandbox


def _card(value: Any) -> str:
    try:
        return funding.check_card(value)
    except Invalid as exc:
        raise BadRequest(exc.message) from None


def _account(value: Any) -> str:
    try:
        return funding.check_account(value)
    except Invalid as exc:
        raise BadRequest(exc.message) from None


def bank(secret: str, clock: Clock | None = None, mode: str = "ok", delay_ms: int = 0) -> Sandbox:
    return Sandbox(
        "bank",
        secret,
        [
            Kind("charges", "card", _card, "card_declined"),
            Kind("payouts", "account", _account, "account_rejected"),
        ],
        clock,
        mode,
        delay_ms,
    )
