"""REST routes for contacts: phone-book matching, friend requests, friends and blocks."""

from __future__ import annotations

from wanglai.gateway.endpoint import Ctx, Router
from wanglai.gateway.schemas import (
    BlockRequest,
    FriendRequestCreate,
    Ok,
    PhonebookUpload,
    PhoneLookup,
)
from wanglai.services.contacts import (
    BlockView,
    FriendRequests,
    FriendRequestView,
    FriendView,
    PhonebookMatches,
)
from wanglai.services.views import UserView

router = Router()

PHONEBOOK_BODY_BYTES = 512 * 1024
"""5,000 numbers of up to 32 characters, quoted, with room to spare."""


@router.route(
    "POST",
    "/v1/contacts/match",
    "Which numbers of your phone book are on Wanglai",
    body=PhonebookUpload,
    response=PhonebookMatches,
    tag="contacts",
    max_body=PHONEBOOK_BODY_BYTES,
)
async def match(ctx: Ctx, body: PhonebookUpload) -> PhonebookMatches:
    return await ctx.app.contacts.match_phonebook(  # type: ignore[no-any-return]
        ctx.session.user_id, body.phones
    )


@router.route(
    "POST",
    "/v1/contacts/lookup",
    "Find the user with a phone number",
    body=PhoneLookup,
    response=UserView,
    tag="contacts",
)
async def lookup(ctx: Ctx, body: PhoneLookup) -> UserView:
    return await ctx.app.contacts.lookup(  # type: ignore[no-any-return]
        ctx.session.user_id, body.phone
    )


@router.route("GET", "/v1/friends", "Your friends", response=list[FriendView], tag="contacts")
async def friends(ctx: Ctx) -> list[FriendView]:
    return await ctx.app.contacts.friends(ctx.session.user_id)  # type: ignore[no-any-return]


@router.route("DELETE", "/v1/friends/{user_id}", "Remove a friend", response=Ok, tag="contacts")
async def remove_friend(ctx: Ctx) -> Ok:
    await ctx.app.contacts.remove_friend(ctx.session.user_id, ctx.match_int("user_id"))
    return Ok()


@router.route(
    "GET",
    "/v1/friends/requests",
    "Pending friend requests to and from you",
    response=FriendRequests,
    tag="contacts",
)
async def requests(ctx: Ctx) -> FriendRequests:
    return await ctx.app.contacts.requests(ctx.session.user_id)  # type: ignore[no-any-return]


@router.route(
    "POST",
    "/v1/friends/requests",
    "Ask someone to be friends (if they asked you already, you become friends)",
    body=FriendRequestCreate,
    response=FriendRequestView,
    tag="contacts",
)
async def send_request(ctx: Ctx, body: FriendRequestCreate) -> FriendRequestView:
    return await ctx.app.contacts.request(  # type: ignore[no-any-return]
        ctx.session.user_id, body.user_id, body.note
    )


@router.route(
    "POST",
    "/v1/friends/requests/{request_id}/accept",
    "Accept a friend request sent to you",
    response=FriendRequestView,
    tag="contacts",
)
async def accept(ctx: Ctx) -> FriendRequestView:
    return await ctx.app.contacts.accept(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("request_id")
    )


@router.route(
    "POST",
    "/v1/friends/requests/{request_id}/decline",
    "Decline a friend request sent to you",
    response=FriendRequestView,
    tag="contacts",
)
async def decline(ctx: Ctx) -> FriendRequestView:
    return await ctx.app.contacts.decline(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("request_id")
    )


@router.route("GET", "/v1/blocks", "People you blocked", response=list[BlockView], tag="contacts")
async def blocks(ctx: Ctx) -> list[BlockView]:
    return await ctx.app.contacts.blocked(ctx.session.user_id)  # type: ignore[no-any-return]


@router.route(
    "POST",
    "/v1/blocks",
    "Block someone: they can no longer add, message or find you",
    body=BlockRequest,
    response=BlockView,
    tag="contacts",
)
async def block(ctx: Ctx, body: BlockRequest) -> BlockView:
    return await ctx.app.contacts.block(  # type: ignore[no-any-return]
        ctx.session.user_id, body.user_id
    )


@router.route("DELETE", "/v1/blocks/{user_id}", "Unblock someone", response=Ok, tag="contacts")
async def unblock(ctx: Ctx) -> Ok:
    await ctx.app.contacts.unblock(ctx.session.user_id, ctx.match_int("user_id"))
    return Ok()
