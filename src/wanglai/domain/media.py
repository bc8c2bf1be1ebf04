"""What may be uploaded: the allowed media types and the magic bytes that prove a declared type.

Pure rules, no I/O: ``declared_type`` normalises a Content-Type and refuses types we do not
store; ``check_content`` compares the declared type with the first bytes of the file;
``check_kind`` says which media a message kind may carry.
"""

from __future__ import annotations

from wanglai.domain.errors import Invalid

SNIFF_BYTES = 1024
"""How much of the start of a file ``check_content`` needs (fewer is fine for short files)."""

ALLOWED_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "audio/ogg",
        "audio/webm",
        "audio/mpeg",
        "audio/mp4",
        "video/mp4",
        "application/pdf",
        "text/plain",
        "application/zip",
        "application/octet-stream",
    }
)

UNCHECKED_TYPES = frozenset({"text/plain", "application/zip", "application/octet-stream"})
"""Types accepted for "file" messages whatever their bytes are."""

_MP4 = ("video/mp4", "audio/mp4")


def sniff(head: bytes) -> tuple[str, ...]:
    """The allowed types whose signature ``head`` (the start of a file) carries, if any."""
    if head.startswith(b"\xff\xd8\xff"):
        return ("image/jpeg",)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ("image/png",)
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ("image/gif",)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ("image/webp",)
    if head.startswith(b"OggS"):
        return ("audio/ogg",)
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM / Matroska
        return ("audio/webm",)
    if head[4:8] == b"ftyp":  # ISO base media: MP4 video or M4A audio share the container
        return _MP4
    if head.startswith(b"ID3") or _mpeg_frame(head):
        return ("audio/mpeg",)
    if b"%PDF-" in head[:SNIFF_BYTES]:  # readers accept leading junk before the header
        return ("application/pdf",)
    return ()


def _mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a valid version and layer, a usable bitrate."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    return version != 0b01 and layer != 0b00 and bitrate not in (0b0000, 0b1111)


def declared_type(content_type: str | None) -> str:
    """The media type of a Content-Type header (parameters dropped), if we store that type.

    A missing header means ``application/octet-stream``, as HTTP says a recipient may assume.
    """
    mime = (content_type or "").split(";", 1)[0].strip().lower() or "application/octet-stream"
    if mime not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise Invalid(
            "media_type_not_allowed",
            f"Files of type {mime!r} cannot be uploaded; allowed types: {allowed}.",
        )
    return mime


def check_content(mime: str, head: bytes) -> None:
    """Refuse a file whose first bytes say it is not what ``mime`` (from ``declared_type``) says.

    ``head`` is the first ``SNIFF_BYTES`` of the file, or all of it when it is shorter.
    """
    if mime in UNCHECKED_TYPES:
        return
    found = sniff(head)
    if mime in found:
        return
    seen = f"it looks like {found[0]}" if found else "its content is not recognised"
    raise Invalid(
        "media_type_mismatch",
        f"The file was declared as {mime} but {seen}; upload it with its real Content-Type.",
    )


def check_kind(kind: str, mime: str) -> None:
    """An image message carries an image and a voice message audio; a file may be anything."""
    wanted = {"image": "image/", "voice": "audio/"}.get(kind)
    if wanted is not None and not mime.startswith(wanted):
        raise Invalid(
            "media_kind_mismatch",
            f"A {kind} message needs {wanted}* media; this file is {mime}. Send it as a file.",
        )
