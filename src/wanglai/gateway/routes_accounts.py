"""REST routes for login, devices and profiles."""

from __future__ import annotations

import msgspec

from wanglai.gateway.endpoint import Ctx, Router
from wanglai.gateway.schemas import CodeRequest, CodeSent, LoginRequest, Ok, ProfileUpdate
from wanglai.services.views import DeviceView, MeView, UserView

router = Router()


class LoginResponse(msgspec.Struct):
    token: str
    user: MeView
    device_id: int
    new_user: bool


@router.route(
    "POST",
    "/v1/auth/code",
    "Send a login code by SMS",
    body=CodeRequest,
    response=CodeSent,
    auth=False,
    tag="auth",
)
async def request_code(ctx: Ctx, body: CodeRequest) -> CodeSent:
    address = ctx.request.remote or "unknown"
    forwarded = ctx.request.headers.get("X-Forwarded-For")
    if ctx.app.settings.trust_proxy and forwarded:
        address = forwarded.rsplit(",", 1)[-1].strip() or address
    seconds = await ctx.app.accounts.request_code(body.phone, address)
    return CodeSent(ctx.app.accounts.phone(body.phone), seconds, ctx.app.settings.sms_channel)


@router.route(
    "POST",
    "/v1/auth/login",
    "Log in with the code; opens a device session",
    body=LoginRequest,
    response=LoginResponse,
    auth=False,
    tag="auth",
)
async def login(ctx: Ctx, body: LoginRequest) -> LoginResponse:
    result = await ctx.app.accounts.login(body.phone, body.code, body.device_name)
    return LoginResponse(result.token, result.user, result.device_id, result.new_user)


@router.route("POST", "/v1/auth/logout", "End this device's session", response=Ok, tag="auth")
async def logout(ctx: Ctx) -> Ok:
    await ctx.app.accounts.revoke(ctx.session, ctx.session.device_id)
    return Ok()


@router.route("GET", "/v1/me", "Your profile", response=MeView, tag="profile")
async def me(ctx: Ctx) -> MeView:
    return await ctx.app.accounts.me(ctx.session)  # type: ignore[no-any-return]


@router.route(
    "PATCH",
    "/v1/me",
    "Change your name, about text or who may message you",
    body=ProfileUpdate,
    response=MeView,
    tag="profile",
)
async def update_me(ctx: Ctx, body: ProfileUpdate) -> MeView:
    return await ctx.app.accounts.update_profile(  # type: ignore[no-any-return]
        ctx.session, body.name, body.about, body.dm_policy
    )


@router.route(
    "GET", "/v1/users/{user_id}", "A user's public profile", response=UserView, tag="profile"
)
async def user(ctx: Ctx) -> UserView:
    return await ctx.app.contacts.profile(  # type: ignore[no-any-return]
        ctx.session.user_id, ctx.match_int("user_id")
    )


@router.route(
    "GET", "/v1/devices", "Your logged-in devices", response=list[DeviceView], tag="devices"
)
async def devices(ctx: Ctx) -> list[DeviceView]:
    return await ctx.app.accounts.devices(ctx.session)  # type: ignore[no-any-return]


@router.route(
    "DELETE",
    "/v1/devices/{device_id}",
    "Log a device out; its sockets close at once",
    response=Ok,
    tag="devices",
)
async def revoke(ctx: Ctx) -> Ok:
    await ctx.app.accounts.revoke(ctx.session, ctx.match_int("device_id"))
    return Ok()
