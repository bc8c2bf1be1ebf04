"""REST routes for media: upload raw bytes, fetch them back by hash."""

from __future__ import annotations

from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.helpers import ETag

from wanglai.gateway.endpoint import Ctx, Router
from wanglai.services.media import MediaView

router = Router()

CHUNK_BYTES = 64 * 1024
CACHE_FOREVER = "private, max-age=31536000, immutable"
"""A hash names one content forever; "private" because fetching it needs the caller's token."""


class BlobResponse(web.FileResponse):
    """A stored file whose ETag is its hash (aiohttp would derive one from mtime and size)."""

    def __init__(self, path: Path, digest: str, mime: str) -> None:
        self._digest = digest  # before the base class, which may set the ETag
        super().__init__(
            path,
            headers={
                hdrs.CONTENT_TYPE: mime,
                hdrs.CACHE_CONTROL: CACHE_FOREVER,
                "X-Content-Type-Options": "nosniff",
            },
        )

    @property
    def etag(self) -> ETag | None:
        return ETag(value=self._digest)

    @etag.setter
    def etag(self, _value: object) -> None:
        self.headers[hdrs.ETAG] = f'"{self._digest}"'


@router.route(
    "POST",
    "/v1/media",
    "Upload a file: the raw bytes as the body, its type as Content-Type. Returns the hash to"
    " put in an image, voice or file message; the same bytes give the same hash.",
    response=MediaView,
    status=201,
    tag="media",
    raw_body="application/octet-stream",
)
async def upload(ctx: Ctx) -> MediaView:
    request = ctx.request
    return await ctx.app.media.upload(  # type: ignore[no-any-return]
        ctx.session.user_id,
        request.headers.get(hdrs.CONTENT_TYPE),
        request.content.iter_chunked(CHUNK_BYTES),
        request.content_length,
    )


@router.route(
    "GET",
    "/v1/media/{hash}",
    "Download a file you uploaded or that was sent in one of your conversations",
    tag="media",
    raw_response="application/octet-stream",
)
async def download(ctx: Ctx) -> web.StreamResponse:
    blob = await ctx.app.media.open(ctx.session.user_id, ctx.request.match_info["hash"])
    if any(tag.value in (blob.digest, "*") for tag in ctx.request.if_none_match or ()):
        return web.Response(
            status=304, headers={hdrs.ETAG: f'"{blob.digest}"', hdrs.CACHE_CONTROL: CACHE_FOREVER}
        )
    return BlobResponse(blob.path, blob.digest, blob.mime)
