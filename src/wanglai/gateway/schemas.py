"""Request bodies of the REST API (responses are the views in ``services/views.py``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

Phone = Annotated[str, msgspec.Meta(min_length=1, max_length=32, examples=["+8613800138000"])]


class CodeRequest(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone


class CodeSent(msgspec.Struct):
    phone: str
    expires_in: int
    channel: str


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=12)]
    device_name: Annotated[str, msgspec.Meta(max_length=64)] = ""


class ProfileUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    about: str | None = None
    dm_policy: str | None = None


class DirectRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Either ``user_id`` or ``phone``: any valid mobile number, on Wanglai or not (then your
    messages there go out as SMS)."""

    user_id: int | None = None
    phone: Phone | None = None


class SendRequest(msgspec.Struct, forbid_unknown_fields=True):
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    kind: str
    body: dict[str, Any]
    reply_to: int | None = None
    sms_fallback: bool = False
    """Direct conversations: text it to the recipient if no device of theirs receives it in
    time (``GET /v1/sms/quota``: ``fallback_after_s``); counts against your daily SMS."""


class EditRequest(msgspec.Struct, forbid_unknown_fields=True):
    body: dict[str, Any]


class ReadRequest(msgspec.Struct, forbid_unknown_fields=True):
    seq: int


class Ok(msgspec.Struct):
    ok: bool = True


class ConversationRef(msgspec.Struct):
    id: int


class GroupCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    members: list[int] = []


class GroupUpdate(msgspec.Struct, forbid_unknown_fields=True):
    title: str | None = None
    announcement: str | None = None
    approval_required: bool | None = None


class GroupInvite(msgspec.Struct, forbid_unknown_fields=True):
    user_ids: list[int]


class OwnerRequest(msgspec.Struct, forbid_unknown_fields=True):
    user_id: int


class MuteRequest(msgspec.Struct, forbid_unknown_fields=True):
    muted: bool


class PhonebookUpload(msgspec.Struct, forbid_unknown_fields=True):
    phones: Annotated[
        list[str],
        msgspec.Meta(description="Numbers as in the phone book; at most 5,000 per call."),
    ]


class PhoneLookup(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone


class FriendRequestCreate(msgspec.Struct, forbid_unknown_fields=True):
    user_id: int
    note: Annotated[str, msgspec.Meta(description="At most 200 characters.")] = ""


class BlockRequest(msgspec.Struct, forbid_unknown_fields=True):
    user_id: int
