"""REST routes for conversations, messages and sync (WebSocket sends use the same services)."""

from __future__ import annotations

from wanglai.domain.errors import Invalid
from wanglai.gateway.endpoint import Ctx, Query, Router
from wanglai.gateway.schemas import (
    DirectRequest,
    EditRequest,
    ReadRequest,
    SendRequest,
)
from wanglai.services.interworking import DirectOpened
from wanglai.services.sync import SyncPage
from wanglai.services.views import ConversationView, MessageView

router = Router()


@router.route(
    "GET",
    "/v1/sync",
    "Events after your cursor, oldest first, in pages",
    response=SyncPage,
    tag="sync",
    query=(
        Query("since", int, False, "Your cursor: 0 or the 'next' of the last page"),
        Query("limit", int, False, "Page size, 1..5000 (default 1000)"),
    ),
)
async def sync(ctx: Ctx) -> SyncPage:
    since = ctx.query_int("since", 0) or 0
    page = await ctx.app.sync.since(ctx.session.user_id, since, ctx.query_int("limit", 1000))
    await ctx.app.sync.save_cursor(ctx.session.device_id, since)
    return page  # type: ignore[no-any-return]


@router.route(
    "GET",
    "/v1/conversations",
    "Your conversations, most recent first",
    response=list[ConversationView],
    tag="conversations",
)
async def conversations(ctx: Ctx) -> list[ConversationView]:
    return await ctx.app.messaging.conversations(ctx.session.user_id)  # type: ignore[no-any-return]


@router.route(
    "POST",
    "/v1/conversations/direct",
    "Open (or find) the direct conversation with a user, or with any phone number (SMS)",
    body=DirectRequest,
    response=DirectOpened,
    tag="conversations",
)
async def open_direct(ctx: Ctx, body: DirectRequest) -> DirectOpened:
    if body.phone is not None and body.user_id is None:
        return await ctx.app.interworking.open_by_phone(  # type: ignore[no-any-return]
            ctx.session.user_id, body.phone
        )
    if body.user_id is None or body.phone is not None:
        raise Invalid("invalid_direct_request", "Give either 'user_id' or 'phone'.")
    conv = await ctx.app.messaging.open_direct(ctx.session.user_id, body.user_id)
    return DirectOpened(conv, body.user_id, False)


@router.route(
    "GET",
    "/v1/conversations/{conv_id}",
    "One of your conversations",
    response=ConversationView,
    tag="conversations",
)
async def conversation(ctx: Ctx) -> ConversationView:
    return await ctx.app.messaging.conversation(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id")
    )


@router.route(
    "GET",
    "/v1/conversations/{conv_id}/messages",
    "Page backwards through history",
    response=list[MessageView],
    tag="messages",
    query=(
        Query("before", int, False, "Only messages with a smaller seq"),
        Query("limit", int, False, "1..200 (default 50)"),
    ),
)
async def history(ctx: Ctx) -> list[MessageView]:
    return await ctx.app.messaging.history(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.match_int("conv_id"),
        ctx.query_int("before"),
        ctx.query_int("limit", 50),
    )


@router.route(
    "POST",
    "/v1/conversations/{conv_id}/messages",
    "Send a message (acknowledged once durable; retries with the same client_id are safe)",
    body=SendRequest,
    response=MessageView,
    status=201,
    tag="messages",
)
async def send(ctx: Ctx, body: SendRequest) -> MessageView:
    sent = await ctx.app.messaging.deliver(
        ctx.session.user_id,
        ctx.match_int("conv_id"),
        body.client_id,
        body.kind,
        body.body,
        body.reply_to,
        body.sms_fallback,
    )
    if sent.fresh:
        ctx.app.metrics.count_message(sent.view.kind)
    return sent.view  # type: ignore[no-any-return]


@router.route(
    "POST",
    "/v1/conversations/{conv_id}/messages/{seq}/recall",
    "Recall a message (yours within 2 minutes; admins any in their group)",
    response=MessageView,
    tag="messages",
)
async def recall(ctx: Ctx) -> MessageView:
    return await ctx.app.messaging.recall(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), ctx.match_int("seq")
    )


@router.route(
    "PATCH",
    "/v1/conversations/{conv_id}/messages/{seq}",
    "Edit your text message (within 24 hours)",
    body=EditRequest,
    response=MessageView,
    tag="messages",
)
async def edit(ctx: Ctx, body: EditRequest) -> MessageView:
    return await ctx.app.messaging.edit(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), ctx.match_int("seq"), body.body
    )


@router.route(
    "POST",
    "/v1/conversations/{conv_id}/read",
    "Mark messages up to seq as read",
    body=ReadRequest,
    response=ReadRequest,
    tag="messages",
)
async def read(ctx: Ctx, body: ReadRequest) -> ReadRequest:
    seq = await ctx.app.messaging.mark_read(ctx.session.user_id, ctx.match_int("conv_id"), body.seq)
    return ReadRequest(seq)


@router.route(
    "POST",
    "/v1/conversations/{conv_id}/delivered",
    "Report that this device has the messages up to seq (a direct peer gets a receipt)",
    body=ReadRequest,
    response=ReadRequest,
    tag="messages",
)
async def delivered(ctx: Ctx, body: ReadRequest) -> ReadRequest:
    conv = ctx.match_int("conv_id")
    return ReadRequest(await ctx.app.messaging.mark_delivered(ctx.session.user_id, conv, body.seq))


@router.route(
    "POST",
    "/v1/conversations/{conv_id}/typing",
    "Tell the others you are typing (not stored)",
    response=None,
    status=204,
    tag="messages",
)
async def typing(ctx: Ctx) -> None:
    await ctx.app.messaging.typing(ctx.session.user_id, ctx.match_int("conv_id"))


@router.route(
    "GET",
    "/v1/search",
    "Search the text of messages in your conversations",
    response=list[MessageView],
    tag="messages",
    query=(
        Query("q", str, True, "Text to find (1..100 characters)"),
        Query("conv", int, False, "Only this conversation"),
        Query("limit", int, False, "1..100 (default 20)"),
    ),
)
async def search(ctx: Ctx) -> list[MessageView]:
    return await ctx.app.messaging.search(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.request.query.get("q", ""),
        ctx.query_int("conv"),
        ctx.query_int("limit", 20),
    )
