"""REST routes for funding: top-ups, withdrawals, their orders, the bank's callbacks and the
operator's payment notifications."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from wanglai.gateway.endpoint import Ctx, Query, Router, bearer
from wanglai.partners import signing
from wanglai.services.funding import (
    CallbackAck,
    FundingPage,
    FundingView,
    OperatorEvent,
    PartnerCallback,
)

router = Router()

Card = Annotated[str, msgspec.Meta(max_length=32, examples=["4242 4242 4242 4242"])]
Account = Annotated[str, msgspec.Meta(max_length=40, examples=["6222020200112233445"])]


class TopupRequest(msgspec.Struct, forbid_unknown_fields=True):
    channel: Literal["carrier", "bank"]
    amount: int
    """In fen."""
    card: Card | None = None
    """The card to charge (``bank`` only)."""


class WithdrawRequest(msgspec.Struct, forbid_unknown_fields=True):
    amount: int
    account: Account
    pin: Annotated[str, msgspec.Meta(max_length=12)] | None = None


@router.route(
    "POST",
    "/v1/wallet/topups",
    "Top up the wallet from the phone bill or a bank card (Idempotency-Key header)",
    body=TopupRequest,
    response=FundingView,
    status=201,
    tag="wallet",
    idempotent=True,
)
async def topup(ctx: Ctx, body: TopupRequest) -> FundingView:
    return await ctx.app.funding.topup(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.idempotency_key, body.channel, body.amount, body.card
    )


@router.route(
    "POST",
    "/v1/wallet/withdrawals",
    "Withdraw to a bank account; the amount is held until the bank pays (Idempotency-Key)",
    body=WithdrawRequest,
    response=FundingView,
    status=201,
    tag="wallet",
    idempotent=True,
)
async def withdraw(ctx: Ctx, body: WithdrawRequest) -> FundingView:
    return await ctx.app.funding.withdraw(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.idempotency_key, body.amount, body.account, body.pin
    )


@router.route(
    "GET",
    "/v1/wallet/funding",
    "Your top-ups and withdrawals, newest first",
    response=FundingPage,
    tag="wallet",
    query=(Query("before", int), Query("limit", int, description="1-200, default 50")),
)
async def orders(ctx: Ctx) -> FundingPage:
    return await ctx.app.funding.orders(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.query_int("before"), ctx.query_int("limit", 50)
    )


@router.route(
    "GET",
    "/v1/wallet/funding/{order_id}",
    "One of your top-ups or withdrawals",
    response=FundingView,
    tag="wallet",
)
async def order(ctx: Ctx) -> FundingView:
    return await ctx.app.funding.get(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("order_id")
    )


@router.route(
    "POST",
    "/v1/partners/bank/callback",
    "The bank's signed callback with an order's outcome (X-Wanglai-Signature)",
    body=PartnerCallback,
    response=CallbackAck,
    auth=False,
    signed=True,
    tag="partners",
)
async def bank_callback(ctx: Ctx, body: PartnerCallback) -> CallbackAck:
    raw = await ctx.request.read()  # the bytes the signature covers (aiohttp keeps them)
    return await ctx.app.funding.callback(  # type: ignore[no-any-return]
        raw, ctx.request.headers.get(signing.HEADER), body
    )


@router.route(
    "POST",
    "/v1/partners/operator/notifications",
    "The operator's payment notification (a CloudEvent; the bearer token given as the"
    " payment's sinkCredential)",
    body=OperatorEvent,
    status=204,
    auth=False,
    signed=True,
    tag="partners",
)
async def operator_notification(ctx: Ctx, body: OperatorEvent) -> None:
    await ctx.app.funding.operator_notification(bearer(ctx.request), body)
