"""Media: a content-addressed local store with size and type limits.

A blob is stored once under ``root/ab/cd/<sha256>``: streamed into a temporary file while it is
hashed and measured, checked against its declared type, fsynced, then renamed into place, so a
reader never sees half a file and an acknowledged upload survives a crash. The same bytes
uploaded again (by anyone) are not written twice. Who may fetch a blob is ``store/media.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import msgspec

from wanglai.domain import media as media_rules
from wanglai.domain.clock import Clock
from wanglai.domain.content import MEDIA_HASH
from wanglai.domain.errors import Invalid, NotFound, TooLarge
from wanglai.store import media as media_store
from wanglai.store.database import Database

log = logging.getLogger("wanglai.media")

FLUSH_BYTES = 1 << 20
"""Received bytes are written (and hashed) off the event loop in pieces of about this size."""
STALE_PARTIAL_S = 24 * 3600
"""A temporary file untouched this long is left from an upload a crash interrupted."""


class MediaView(msgspec.Struct):
    hash: str
    """Lowercase hex SHA-256 of the bytes: what a message's ``media`` field carries."""
    size: int
    mime: str


@dataclass(frozen=True)
class Blob:
    """A stored file the caller may read."""

    digest: str
    path: Path
    mime: str
    size: int


def _not_found() -> NotFound:
    return NotFound("media_not_found", "No such media; upload it with POST /v1/media first.")


class MediaService:
    def __init__(self, db: Database, clock: Clock, root: Path, max_bytes: int):
        self.db = db
        self.clock = clock
        self.root = root
        self.max_bytes = max_bytes
        self._swept = False

    def blob_path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def _too_large(self) -> TooLarge:
        mb = self.max_bytes / (1024 * 1024)
        return TooLarge(
            "media_too_large", f"Files are limited to {mb:g} MB ({self.max_bytes} bytes)."
        )

    async def upload(
        self,
        user_id: int,
        content_type: str | None,
        chunks: AsyncIterable[bytes],
        declared_length: int | None = None,
    ) -> MediaView:
        """Store the streamed bytes; durable when this returns. Refused uploads leave no file.

        ``content_type`` is the declared type (the request's Content-Type); ``declared_length``
        the Content-Length, if any, so an upload that announces its excess is refused unread.
        """
        mime = media_rules.declared_type(content_type)
        if declared_length is not None and declared_length > self.max_bytes:
            raise self._too_large()
        tmp_dir = self.root / "tmp"
        if not self._swept:  # once per process: what a crash left behind goes
            self._swept = True
            await asyncio.to_thread(_remove_stale, tmp_dir, time.time() - STALE_PARTIAL_S)
        fd, name = await asyncio.to_thread(_make_temp, tmp_dir)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = await self._receive(chunks, out, mime)
                await asyncio.to_thread(_flush_to_disk, out)
            await asyncio.to_thread(_publish, tmp, self.blob_path(digest))
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
        row = await self.db.write(
            media_store.record_upload, digest, size, mime, user_id, self.clock.now_ms()
        )
        return MediaView(digest, int(row[0]), str(row[1]))

    async def _receive(
        self, chunks: AsyncIterable[bytes], out: IO[bytes], mime: str
    ) -> tuple[str, int]:
        hasher = hashlib.sha256()
        size = 0
        head = b""
        checked = False
        pending: list[bytes] = []
        pending_size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            if not checked:
                head += chunk[: media_rules.SNIFF_BYTES - len(head)]
                if len(head) >= media_rules.SNIFF_BYTES:
                    media_rules.check_content(mime, head)
                    checked = True
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= FLUSH_BYTES:
                await asyncio.to_thread(_write, out, hasher, b"".join(pending))
                pending, pending_size = [], 0
        if size == 0:
            raise Invalid("empty_media", "The file is empty: send its bytes as the request body.")
        if not checked:
            media_rules.check_content(mime, head)
        if pending:
            await asyncio.to_thread(_write, out, hasher, b"".join(pending))
        return hasher.hexdigest(), size

    async def open(self, user_id: int, digest: str) -> Blob:
        """The blob, if ``user_id`` uploaded it or is in a conversation where it was sent."""
        if not MEDIA_HASH.match(digest):
            raise _not_found()
        row = await self.db.read(media_store.visible, digest, user_id)
        if row is None:
            raise _not_found()
        path = self.blob_path(digest)
        if not await asyncio.to_thread(path.is_file):
            log.error("media %s is recorded but its file %s is missing", digest, path)
            raise _not_found()
        return Blob(digest, path, str(row[1]), int(row[0]))

    async def check_attachable(self, user_id: int, kind: str, digest: str) -> None:
        """Refuse a ``kind`` message carrying media the sender cannot see or of the wrong type.

        The messaging service calls this before it stores an image, voice or file message.
        """
        row = await self.db.read(media_store.visible, digest, user_id)
        if row is None:
            raise _not_found()
        media_rules.check_kind(kind, str(row[1]))


def _make_temp(tmp_dir: Path) -> tuple[int, str]:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=tmp_dir, suffix=".part")


def _remove_stale(tmp_dir: Path, before: float) -> None:
    """Delete temporary files last written before ``before`` (filesystem time, seconds)."""
    for path in tmp_dir.glob("*.part"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < before:
                path.unlink()


def _write(out: IO[bytes], hasher: hashlib._Hash, data: bytes) -> None:
    hasher.update(data)  # releases the GIL for large buffers, like the write
    out.write(data)


def _flush_to_disk(out: IO[bytes]) -> None:
    out.flush()
    os.fsync(out.fileno())


def _publish(tmp: Path, final: Path) -> None:
    """Move a synced temporary file to its content address, unless those bytes are there."""
    if final.is_file():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    # The rename (and any new shard directories) must reach the disk too.
    for directory in (final.parent, final.parent.parent):
        _fsync_dir(directory)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)
