"""REST routes of the wallet: balance, statement, payment PIN and settings, and transfers to a
person in a chat. Every POST that moves money reads the ``Idempotency-Key`` header."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from wanglai.domain.groups import MAX_ID
from wanglai.domain.money import MAX_AMOUNT
from wanglai.domain.transfers import MAX_NOTE
from wanglai.gateway.endpoint import Ctx, Query, Router
from wanglai.services.transfers import ChatTransferView
from wanglai.services.wallet import BalanceView, StatementView

router = Router()

Amount = Annotated[
    Any,
    msgspec.Meta(
        description="Whole fen (minor units): 1250 is 12.50. Floats, strings and booleans are"
        " refused with `invalid_amount`.",
        extra_json_schema={"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT},
    ),
]
Pin = Annotated[str, msgspec.Meta(pattern="^[0-9]{6}$", examples=["246810"])]


class TransferCreate(msgspec.Struct, forbid_unknown_fields=True):
    to: Annotated[int, msgspec.Meta(ge=1, lt=MAX_ID, description="The user to pay")]
    amount: Amount
    currency: Annotated[str, msgspec.Meta(max_length=8, examples=["CNY"])] | None = None
    note: Annotated[str, msgspec.Meta(max_length=MAX_NOTE)] = ""
    pin: Pin | None = None
    """Needed above the payer's PIN-free amount (0 unless they raised it)."""


class PinUpdate(msgspec.Struct, forbid_unknown_fields=True):
    pin: Annotated[str, msgspec.Meta(max_length=16, examples=["246810"])]
    current: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    """The PIN in use, needed to change it."""


class SettingsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    strangers: bool | None = None
    """Whether people who are not your friends may send you money."""
    pin_free_limit: int | None = None
    """Payments up to this many fen need no PIN (0 to the platform's maximum)."""


@router.route(
    "GET", "/v1/wallet", "Your balance, limits and settings", response=BalanceView, tag="wallet"
)
async def balance(ctx: Ctx) -> BalanceView:
    return await ctx.app.wallet.balance(ctx.session.user_id)  # type: ignore[no-any-return]


@router.route(
    "GET",
    "/v1/wallet/statement",
    "Your wallet's movements, newest first",
    response=StatementView,
    tag="wallet",
    query=(
        Query("before", description="Only movements with a smaller id (next_before of a page)"),
        Query("limit", description="1 to 200 (default 50)"),
        Query("kind", str, description="Only these kinds, repeated or comma-separated"),
        Query("since", description="Only movements at or after this time (ms since the epoch)"),
        Query("until", description="Only movements before this time (ms since the epoch)"),
    ),
)
async def statement(ctx: Ctx) -> StatementView:
    return await ctx.app.wallet.statement(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.query_int("before"),
        ctx.query_int("limit", 50),
        ctx.request.query.getall("kind", []),
        ctx.query_int("since"),
        ctx.query_int("until"),
    )


@router.route(
    "PUT",
    "/v1/wallet/pin",
    "Set your 6-digit payment PIN (changing it needs the current one)",
    body=PinUpdate,
    response=BalanceView,
    tag="wallet",
)
async def set_pin(ctx: Ctx, body: PinUpdate) -> BalanceView:
    await ctx.app.wallet.set_pin(ctx.session.user_id, body.pin, body.current)
    return await ctx.app.wallet.balance(ctx.session.user_id)  # type: ignore[no-any-return]


@router.route(
    "PATCH",
    "/v1/wallet/settings",
    "Allow money from strangers; set the amount payable without a PIN",
    body=SettingsUpdate,
    response=BalanceView,
    tag="wallet",
)
async def update_settings(ctx: Ctx, body: SettingsUpdate) -> BalanceView:
    return await ctx.app.wallet.update_settings(  # type: ignore[no-any-return]
        ctx.session.user_id, body.strangers, body.pin_free_limit
    )


@router.route(
    "POST",
    "/v1/wallet/transfers",
    "Send money to a person: a card in your chat, theirs once they accept (24 hours)",
    body=TransferCreate,
    response=ChatTransferView,
    status=201,
    tag="wallet",
    idempotent=True,
)
async def send_transfer(ctx: Ctx, body: TransferCreate) -> ChatTransferView:
    return await ctx.app.transfers.send(  # type: ignore[no-any-return]
        ctx.session.user_id,
        body.to,
        body.amount,
        body.currency,
        body.note,
        body.pin,
        ctx.idempotency_key,
    )


@router.route(
    "GET",
    "/v1/wallet/transfers/{transfer_id}",
    "A transfer you sent or received",
    response=ChatTransferView,
    tag="wallet",
)
async def get_transfer(ctx: Ctx) -> ChatTransferView:
    return await ctx.app.transfers.get(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("transfer_id")
    )


@router.route(
    "POST",
    "/v1/wallet/transfers/{transfer_id}/accept",
    "Accept a transfer sent to you: the money moves into your wallet",
    response=ChatTransferView,
    tag="wallet",
    idempotent=True,
)
async def accept_transfer(ctx: Ctx) -> ChatTransferView:
    return await ctx.app.transfers.accept(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("transfer_id"), ctx.idempotency_key
    )


@router.route(
    "POST",
    "/v1/wallet/transfers/{transfer_id}/decline",
    "Decline a transfer sent to you: the money goes back to the sender",
    response=ChatTransferView,
    tag="wallet",
    idempotent=True,
)
async def decline_transfer(ctx: Ctx) -> ChatTransferView:
    return await ctx.app.transfers.decline(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("transfer_id"), ctx.idempotency_key
    )
