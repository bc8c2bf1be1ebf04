"""REST routes for groups, and muting any conversation."""

from __future__ import annotations

from wanglai.gateway.endpoint import Ctx, Router
from wanglai.gateway.schemas import GroupCreate, GroupInvite, GroupUpdate, MuteRequest, OwnerRequest
from wanglai.services.groups import GroupView, InviteResult, JoinRequestView, MuteState

router = Router()
TAG = "groups"


@router.route(
    "POST",
    "/v1/groups",
    "Create a group with some of your friends; you become its owner",
    body=GroupCreate,
    response=GroupView,
    status=201,
    tag=TAG,
)
async def create(ctx: Ctx, body: GroupCreate) -> GroupView:
    return await ctx.app.groups.create(  # type: ignore[no-any-return]
        ctx.session.user_id, body.title, body.members
    )


@router.route(
    "GET",
    "/v1/groups/{conv_id}",
    "A group you are in, with its members",
    response=GroupView,
    tag=TAG,
)
async def get(ctx: Ctx) -> GroupView:
    return await ctx.app.groups.get(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id")
    )


@router.route(
    "PATCH",
    "/v1/groups/{conv_id}",
    "Rename, set the announcement or require approval for invitations (owner and admins)",
    body=GroupUpdate,
    response=GroupView,
    tag=TAG,
)
async def update(ctx: Ctx, body: GroupUpdate) -> GroupView:
    return await ctx.app.groups.update(  # type: ignore[no-any-return]
        ctx.session.user_id,
        ctx.match_int("conv_id"),
        body.title,
        body.announcement,
        body.approval_required,
    )


@router.route(
    "POST",
    "/v1/groups/{conv_id}/members",
    "Invite friends (a join request for the admins when the group requires approval)",
    body=GroupInvite,
    response=InviteResult,
    tag=TAG,
)
async def invite(ctx: Ctx, body: GroupInvite) -> InviteResult:
    return await ctx.app.groups.invite(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), body.user_ids
    )


@router.route(
    "DELETE",
    "/v1/groups/{conv_id}/members/{user_id}",
    "Remove a member (the owner removes anyone, admins remove members)",
    response=GroupView,
    tag=TAG,
)
async def remove(ctx: Ctx) -> GroupView:
    return await ctx.app.groups.remove(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), ctx.match_int("user_id")
    )


@router.route(
    "POST",
    "/v1/groups/{conv_id}/leave",
    "Leave the group (an owner's group passes to the longest-standing admin, else member)",
    response=None,
    status=204,
    tag=TAG,
)
async def leave(ctx: Ctx) -> None:
    await ctx.app.groups.leave(ctx.session.user_id, ctx.match_int("conv_id"))


@router.route(
    "GET",
    "/v1/groups/{conv_id}/requests",
    "Join requests awaiting approval (owner and admins)",
    response=list[JoinRequestView],
    tag=TAG,
)
async def requests(ctx: Ctx) -> list[JoinRequestView]:
    return await ctx.app.groups.requests(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id")
    )


@router.route(
    "POST",
    "/v1/groups/{conv_id}/requests/{request_id}/approve",
    "Approve a join request: the user joins (owner and admins)",
    response=JoinRequestView,
    tag=TAG,
)
async def approve(ctx: Ctx) -> JoinRequestView:
    return await ctx.app.groups.decide(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), ctx.match_int("request_id"), True
    )


@router.route(
    "POST",
    "/v1/groups/{conv_id}/requests/{request_id}/reject",
    "Reject a join request (owner and admins)",
    response=JoinRequestView,
    tag=TAG,
)
async def reject(ctx: Ctx) -> JoinRequestView:
    return await ctx.app.groups.decide(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), ctx.match_int("request_id"), False
    )


@router.route(
    "PUT",
    "/v1/groups/{conv_id}/admins/{user_id}",
    "Make a member an admin (owner only)",
    response=GroupView,
    tag=TAG,
)
async def add_admin(ctx: Ctx) -> GroupView:
    return await ctx.app.groups.set_admin(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), ctx.match_int("user_id"), True
    )


@router.route(
    "DELETE",
    "/v1/groups/{conv_id}/admins/{user_id}",
    "Make an admin a plain member again (owner only)",
    response=GroupView,
    tag=TAG,
)
async def drop_admin(ctx: Ctx) -> GroupView:
    return await ctx.app.groups.set_admin(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), ctx.match_int("user_id"), False
    )


@router.route(
    "POST",
    "/v1/groups/{conv_id}/owner",
    "Hand the group to another member; you stay on as an admin (owner only)",
    body=OwnerRequest,
    response=GroupView,
    tag=TAG,
)
async def transfer(ctx: Ctx, body: OwnerRequest) -> GroupView:
    return await ctx.app.groups.transfer(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), body.user_id
    )


@router.route(
    "PUT",
    "/v1/conversations/{conv_id}/mute",
    "Mute or unmute a conversation (direct or group) for yourself",
    body=MuteRequest,
    response=MuteState,
    tag=TAG,
)
async def mute(ctx: Ctx, body: MuteRequest) -> MuteState:
    return await ctx.app.groups.mute(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("conv_id"), body.muted
    )
