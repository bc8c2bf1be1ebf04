"""REST routes for merchants: opening one, payment codes and their QR images, paying a code,
refunds and the merchant's statement."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import hdrs, web

from wanglai.domain import paycode
from wanglai.gateway.endpoint import Ctx, Query, Router
from wanglai.services.merchants import (
    CodeView,
    MerchantStatement,
    MerchantView,
    PayCodeView,
    PaymentView,
    RefundView,
)

router = Router()


class MerchantCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=paycode.MAX_NAME)]


class CodeCreate(msgspec.Struct, forbid_unknown_fields=True):
    amount: int | None = None
    """Fen. With an amount the code is dynamic (expires, paid once); without, static."""
    description: str | None = None
    expires_in_s: int | None = None
    """A dynamic code's lifetime, 30 s to 24 h (default 300)."""


class PayRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    """The code's token, or the ``wanglai://pay/<token>`` URI its QR image holds."""
    amount: int | None = None
    """Fen; required for a static code, and must be left out (or equal) for a dynamic one."""
    pin: str | None = None


class RefundRequest(msgspec.Struct, forbid_unknown_fields=True):
    amount: int


@router.route(
    "POST",
    "/v1/merchants",
    "Open a merchant: an account that takes payments through payment codes",
    body=MerchantCreate,
    response=MerchantView,
    status=201,
    tag="merchants",
)
async def open_merchant(ctx: Ctx, body: MerchantCreate) -> MerchantView:
    return await ctx.app.merchants.open(  # type: ignore[no-any-return]
        ctx.session.user_id, body.name
    )


@router.route(
    "GET", "/v1/merchants", "Your merchants", response=list[MerchantView], tag="merchants"
)
async def my_merchants(ctx: Ctx) -> list[MerchantView]:
    return await ctx.app.merchants.mine(ctx.session.user_id)  # type: ignore[no-any-return]


@router.route(
    "GET",
    "/v1/merchants/{merchant_id}",
    "One of your merchants, with its balance",
    response=MerchantView,
    tag="merchants",
)
async def get_merchant(ctx: Ctx) -> MerchantView:
    return await ctx.app.merchants.get(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("merchant_id")
    )


@router.route(
    "POST",
    "/v1/merchants/{merchant_id}/codes",
    "Make a payment code: with an amount a dynamic code (expires, paid once), without one a"
    " static code (the payer enters the amount)",
    body=CodeCreate,
    response=CodeView,
    status=201,
    tag="merchants",
)
async def create_code(ctx: Ctx, body: CodeCreate) -> CodeView:
    return await ctx.app.merchants.create_code(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.match_int("merchant_id"),
        body.amount,
        body.description,
        body.expires_in_s,
    )


@router.route(
    "GET",
    "/v1/merchants/{merchant_id}/codes/{code_id}/qr.png",
    "The QR image (PNG) of one of your payment codes",
    tag="merchants",
    raw_response="image/png",
)
async def code_qr(ctx: Ctx) -> web.StreamResponse:
    png = await ctx.app.merchants.qr_png(
        ctx.session.user_id, ctx.match_int("merchant_id"), ctx.match_int("code_id")
    )
    return web.Response(
        body=png,
        content_type="image/png",
        headers={hdrs.CACHE_CONTROL: "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.route(
    "GET",
    "/v1/merchants/{merchant_id}/statement",
    "One of your merchants' payments and refunds, newest first, with fees and net amounts",
    response=MerchantStatement,
    tag="merchants",
    query=(
        Query("before", description="A transfer_id: entries older than it (paging)"),
        Query("limit", description="1-200, default 50"),
    ),
)
async def merchant_statement(ctx: Ctx) -> MerchantStatement:
    return await ctx.app.merchants.statement(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.match_int("merchant_id"),
        ctx.query_int("before"),
        ctx.query_int("limit", 50),
    )


@router.route(
    "POST",
    "/v1/merchants/{merchant_id}/payments/{payment_id}/refunds",
    "Refund all or part of a payment to your merchant (Idempotency-Key header required)",
    body=RefundRequest,
    response=RefundView,
    status=201,
    tag="merchants",
    idempotent=True,
)
async def refund(ctx: Ctx, body: RefundRequest) -> RefundView:
    return await ctx.app.merchants.refund(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.idempotency_key,
        ctx.match_int("merchant_id"),
        ctx.match_int("payment_id"),
        body.amount,
    )


@router.route(
    "GET",
    "/v1/pay/codes/{token}",
    "What a scanned payment code asks for: the merchant, the amount (if fixed), its expiry",
    response=PayCodeView,
    tag="merchants",
)
async def show_code(ctx: Ctx) -> PayCodeView:
    return await ctx.app.merchants.show_code(  # type: ignore[no-any-return]
        ctx.request.match_info["token"]
    )


@router.route(
    "POST",
    "/v1/pay",
    "Pay a payment code from your wallet (Idempotency-Key header required)",
    body=PayRequest,
    response=PaymentView,
    status=201,
    tag="merchants",
    idempotent=True,
)
async def pay(ctx: Ctx, body: PayRequest) -> PaymentView:
    return await ctx.app.merchants.pay(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.idempotency_key,
        body.code,
        body.amount,
        body.pin,
    )
