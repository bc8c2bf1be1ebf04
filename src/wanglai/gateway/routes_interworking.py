"""REST routes for texting numbers not on Wanglai: your SMS threads and your daily SMS quota.
(Starting one is ``POST /v1/conversations/direct`` with a ``phone``; sending is the usual send.)"""

from __future__ import annotations

from wanglai.gateway.endpoint import Ctx, Router
from wanglai.services.interworking import SmsQuota, SmsThread

router = Router()


@router.route(
    "GET",
    "/v1/sms/threads",
    "Your conversations with phone numbers (texted as SMS), most recently texted first",
    response=list[SmsThread],
    tag="sms",
)
async def threads(ctx: Ctx) -> list[SmsThread]:
    return await ctx.app.interworking.threads(ctx.session.user_id)  # type: ignore[no-any-return]


@router.route(
    "GET",
    "/v1/sms/quota",
    "Your free SMS today and the SMS fallback delay",
    response=SmsQuota,
    tag="sms",
)
async def quota(ctx: Ctx) -> SmsQuota:
    return await ctx.app.interworking.quota(ctx.session.user_id)  # type: ignore[no-any-return]
