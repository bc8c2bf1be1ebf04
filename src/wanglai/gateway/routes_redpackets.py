"""REST routes for red packets: send one into a chat, claim a share, look at a packet."""

from __future__ import annotations

import msgspec

from wanglai.gateway.endpoint import Ctx, Router
from wanglai.services.redpackets import ClaimResult, PacketView

router = Router()


class RedPacketSend(msgspec.Struct, forbid_unknown_fields=True):
    conv: int
    """The conversation to send it into (you must be a member)."""
    kind: str
    """``single`` in a one-to-one chat; ``lucky`` or ``equal`` in a group."""
    amount: int
    """The whole packet, in fen: 1 to 20000 (200.00)."""
    shares: int | None = None
    """How many people can claim it (1 to 100, at most the group's members); 1 for single."""
    greeting: str | None = None
    pin: str | None = None
    """Your payment PIN, unless the amount is within your PIN-free limit."""


@router.route(
    "POST",
    "/v1/redpackets",
    "Send a red packet into a chat (Idempotency-Key header required)",
    body=RedPacketSend,
    response=PacketView,
    status=201,
    tag="wallet",
    idempotent=True,
)
async def send(ctx: Ctx, body: RedPacketSend) -> PacketView:
    return await ctx.app.redpackets.send(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.idempotency_key,
        body.conv,
        body.kind,
        body.amount,
        body.shares,
        body.greeting,
        body.pin,
    )


@router.route(
    "GET",
    "/v1/redpackets/{packet_id}",
    "A red packet of one of your chats: its shares, who claimed what, your own claim",
    response=PacketView,
    tag="wallet",
)
async def get(ctx: Ctx) -> PacketView:
    return await ctx.app.redpackets.get(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("packet_id")
    )


@router.route(
    "POST",
    "/v1/redpackets/{packet_id}/claim",
    "Claim a share of a red packet (a second claim returns your first)",
    response=ClaimResult,
    tag="wallet",
)
async def claim(ctx: Ctx) -> ClaimResult:
    return await ctx.app.redpackets.claim(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("packet_id")
    )
