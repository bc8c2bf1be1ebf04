"""Message kinds and the rules for their bodies: what a valid text, image, voice … looks like.

``validate(kind, body)`` returns the body to store (only known fields, normalised) and the text
that search indexes, or raises ``Invalid``. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wanglai.domain.errors import Invalid, TooLarge

MAX_TEXT = 4000
USER_KINDS = ("text", "image", "voice", "file", "location", "contact")
MEDIA_KINDS = ("image", "voice", "file")
MEDIA_HASH = re.compile(r"^[0-9a-f]{64}$")
MENTION_ALL = "all"


@dataclass(frozen=True)
class Content:
    kind: str
    body: dict[str, Any]
    search_text: str
    media: str | None
    mentions: tuple[int, ...]
    mentions_all: bool


def _text(body: dict[str, Any], key: str, limit: int, required: bool = True) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise Invalid("invalid_body", f"'{key}' must be a string.")
    if required and not value.strip():
        raise Invalid("invalid_body", f"'{key}' must not be empty.")
    if "\x00" in value:
        raise Invalid("invalid_text", "Text may not contain the NUL character (U+0000).")
    if len(value) > limit:
        raise TooLarge("text_too_long", f"'{key}' is limited to {limit} characters.")
    return value


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Invalid("invalid_body", f"'{key}' must be a number between {low} and {high}.")
    return float(value)


def _int(body: dict[str, Any], key: str, low: int, high: int, required: bool = False) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid("invalid_body", f"'{key}' must be an integer between {low} and {high}.")
    return value


def _mentions(body: dict[str, Any]) -> tuple[tuple[int, ...], bool]:
    raw = body.get("mentions", [])
    if not isinstance(raw, list) or len(raw) > 100:
        raise Invalid("invalid_mentions", "'mentions' is a list of at most 100 user ids or 'all'.")
    ids: list[int] = []
    everyone = False
    for item in raw:
        if item == MENTION_ALL:
            everyone = True
        elif isinstance(item, int) and not isinstance(item, bool) and item > 0:
            ids.append(item)
        else:
            raise Invalid("invalid_mentions", "Mention user ids (integers) or 'all'.")
    return tuple(dict.fromkeys(ids)), everyone


def validate(kind: object, body: object) -> Content:
    """Check a message a user sends. System notices are made by the server, never accepted here."""
    if kind not in USER_KINDS:
        raise Invalid("invalid_kind", f"Message kind must be one of {', '.join(USER_KINDS)}.")
    if not isinstance(body, dict):
        raise Invalid("invalid_body", "'body' must be an object.")
    assert isinstance(kind, str)
    if kind == "text":
        text = _text(body, "text", MAX_TEXT)
        mentions, everyone = _mentions(body)
        stored: dict[str, Any] = {"text": text}
        if mentions or everyone:
            stored["mentions"] = [*mentions, *([MENTION_ALL] if everyone else [])]
        return Content(kind, stored, text, None, mentions, everyone)
    if kind in MEDIA_KINDS:
        digest = body.get("media")
        if not isinstance(digest, str) or not MEDIA_HASH.match(digest):
            raise Invalid("invalid_body", "'media' must be the hash returned by POST /v1/media.")
        stored = {"media": digest}
        name = _text(body, "name", 255, required=kind == "file")
        if name:
            stored["name"] = name
        for key in ("width", "height"):
            value = _int(body, key, 1, 100_000)
            if value is not None:
                stored[key] = value
        duration = _int(body, "duration_ms", 1, 10 * 60_000, required=kind == "voice")
        if duration is not None:
            stored["duration_ms"] = duration
        caption = _text(body, "caption", 1000, required=False)
        if caption:
            stored["caption"] = caption
        return Content(kind, stored, " ".join(x for x in (name, caption) if x), digest, (), False)
    if kind == "location":
        stored = {
            "lat": _number(body, "lat", -90, 90),
            "lon": _number(body, "lon", -180, 180),
        }
        label = _text(body, "label", 200, required=False)
        if label:
            stored["label"] = label
        return Content(kind, stored, label, None, (), False)
    # contact card
    user_id = _int(body, "user_id", 1, 2**62, required=True)
    return Content(kind, {"user_id": user_id}, "", None, (), False)
