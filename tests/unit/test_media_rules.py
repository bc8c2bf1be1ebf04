"""Upload rules: allowed types, magic bytes against the declared type, media per message kind."""

from __future__ import annotations

import pytest

from wanglai.domain import media
from wanglai.domain.errors import Invalid

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20
GIF = b"GIF89a\x01\x00\x01\x00" + b"\x00" * 20
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20
OGG = b"OggS\x00\x02" + b"\x00" * 20
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + b"\x00" * 20
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 20
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 20
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00" + b"\x00" * 20
M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + b"\x00" * 20
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"\x00" * 20


@pytest.mark.parametrize(
    ("head", "types"),
    [
        (PNG, ("image/png",)),
        (JPEG, ("image/jpeg",)),
        (GIF, ("image/gif",)),
        (b"GIF87a" + b"\x00" * 10, ("image/gif",)),
        (WEBP, ("image/webp",)),
        (OGG, ("audio/ogg",)),
        (WEBM, ("audio/webm",)),
        (MP3_ID3, ("audio/mpeg",)),
        (MP3_FRAME, ("audio/mpeg",)),
        (MP4, ("video/mp4", "audio/mp4")),
        (M4A, ("video/mp4", "audio/mp4")),
        (PDF, ("application/pdf",)),
        (b"junk\n" + PDF, ("application/pdf",)),
        (b"hello, plain text", ()),
        (b"", ()),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", ()),  # RIFF but not WebP
        (b"\xff\xea\x90\x00", ()),  # sync bits but a reserved version: not an MP3 frame
        (b"\xff\xf9\x90\x00", ()),  # sync bits but a reserved layer
        (b"\xff\xfb\xf0\x00", ()),  # MP3 frame with the forbidden bitrate index 15
    ],
)
def test_sniff_recognises_signatures(head: bytes, types: tuple[str, ...]) -> None:
    assert media.sniff(head) == types


@pytest.mark.parametrize(
    ("header", "mime"),
    [
        ("image/png", "image/png"),
        ("IMAGE/PNG", "image/png"),
        ("text/plain; charset=utf-8", "text/plain"),
        (" application/pdf ", "application/pdf"),
        (None, "application/octet-stream"),
        ("", "application/octet-stream"),
    ],
)
def test_declared_type_is_normalised(header: str | None, mime: str) -> None:
    assert media.declared_type(header) == mime


@pytest.mark.parametrize("header", ["text/html", "image/svg+xml", "application/javascript", "x"])
def test_declared_type_outside_the_list_is_refused(header: str) -> None:
    with pytest.raises(Invalid) as info:
        media.declared_type(header)
    assert info.value.code == "media_type_not_allowed"
    assert "image/png" in info.value.message  # says what is allowed


@pytest.mark.parametrize(
    ("mime", "head"),
    [
        ("image/png", PNG),
        ("image/jpeg", JPEG),
        ("image/gif", GIF),
        ("image/webp", WEBP),
        ("audio/ogg", OGG),
        ("audio/webm", WEBM),
        ("audio/mpeg", MP3_ID3),
        ("audio/mpeg", MP3_FRAME),
        ("audio/mp4", M4A),
        ("video/mp4", MP4),
        ("application/pdf", PDF),
        # "file" types are stored whatever they contain
        ("text/plain", PNG),
        ("application/zip", b"PK\x03\x04rest"),
        ("application/octet-stream", b"\x00\x01\x02"),
    ],
)
def test_content_matching_its_declared_type_passes(mime: str, head: bytes) -> None:
    media.check_content(mime, head)


@pytest.mark.parametrize(
    ("mime", "head", "seen"),
    [
        ("image/jpeg", PNG, "looks like image/png"),
        ("image/png", JPEG, "looks like image/jpeg"),
        ("image/gif", b"plain text, not a picture", "not recognised"),
        ("audio/ogg", MP3_ID3, "looks like audio/mpeg"),
        ("audio/mpeg", OGG, "looks like audio/ogg"),
        ("video/mp4", WEBM, "looks like audio/webm"),
        ("application/pdf", b"%PDX", "not recognised"),
        ("image/png", b"", "not recognised"),
    ],
)
def test_content_not_matching_its_declared_type_is_refused(
    mime: str, head: bytes, seen: str
) -> None:
    with pytest.raises(Invalid) as info:
        media.check_content(mime, head)
    assert info.value.code == "media_type_mismatch"
    assert mime in info.value.message and seen in info.value.message


def test_pdf_header_beyond_the_sniffed_head_is_not_found() -> None:
    late = b"\x00" * media.SNIFF_BYTES + PDF
    with pytest.raises(Invalid):
        media.check_content("application/pdf", late)


@pytest.mark.parametrize(
    ("kind", "mime"),
    [
        ("image", "image/png"),
        ("image", "image/webp"),
        ("voice", "audio/ogg"),
        ("voice", "audio/mp4"),
        ("file", "application/pdf"),
        ("file", "image/png"),
        ("file", "application/octet-stream"),
    ],
)
def test_message_kind_accepts_its_media(kind: str, mime: str) -> None:
    media.check_kind(kind, mime)


@pytest.mark.parametrize(
    ("kind", "mime"),
    [("image", "application/pdf"), ("image", "audio/ogg"), ("voice", "image/png")],
)
def test_message_kind_refuses_other_media(kind: str, mime: str) -> None:
    with pytest.raises(Invalid) as info:
        media.check_kind(kind, mime)
    assert info.value.code == "media_kind_mismatch"
