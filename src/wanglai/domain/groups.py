"""The rules of group conversations: sizes, who may manage whom, how invitations go, who inherits.

Pure functions of plain facts; the store reads the facts inside the write transaction and applies
what these functions decide (``store/groups.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from wanglai.domain.errors import Conflict, Forbidden, Invalid, TooLarge

MAX_MEMBERS = 500
MAX_TITLE = 64
MAX_ANNOUNCEMENT = 2000
MAX_ID = 2**62
ROLES = ("owner", "admin", "member")


@dataclass(frozen=True)
class Member:
    """A member as the succession rule sees them; ``from_seq`` orders members who joined in the
    same millisecond (each join appends a notice, so later joins start at a higher seq)."""

    user_id: int
    role: str
    joined_ms: int
    from_seq: int


def clean_title(value: object) -> str:
    """A group title: 1 to 64 characters once surrounding spaces are trimmed."""
    if not isinstance(value, str):
        raise Invalid("invalid_title", "'title' must be a string.")
    title = value.strip()
    if not title:
        raise Invalid("invalid_title", "Give the group a title.")
    if len(title) > MAX_TITLE:
        raise Invalid("invalid_title", f"A group title is at most {MAX_TITLE} characters.")
    return title


def clean_announcement(value: object) -> str:
    """An announcement: up to 2,000 characters; empty clears it."""
    if not isinstance(value, str):
        raise Invalid("invalid_announcement", "'announcement' must be a string.")
    text = value.strip()
    if len(text) > MAX_ANNOUNCEMENT:
        raise TooLarge(
            "announcement_too_long", f"An announcement is at most {MAX_ANNOUNCEMENT} characters."
        )
    return text


def clean_user_ids(values: Iterable[object], *, required: bool) -> list[int]:
    """Positive user ids, duplicates dropped, in the order given."""
    seen: dict[int, None] = {}
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_ID:
            raise Invalid("invalid_user_id", "User ids are positive integers.")
        seen[value] = None
    if required and not seen:
        raise Invalid("no_users", "Name at least one user.")
    return list(seen)


def check_capacity(current: int, adding: int) -> None:
    """A group holds at most ``MAX_MEMBERS`` members, its owner included."""
    if current + adding > MAX_MEMBERS:
        room = max(0, MAX_MEMBERS - current)
        raise Conflict(
            "group_full",
            f"A group has at most {MAX_MEMBERS} members; there is room for {room} more.",
        )


def check_friends(invitees: Iterable[int], friends: Collection[int]) -> None:
    """Only your friends can be added. Unknown ids are refused the same way, so the answer
    says nothing about who exists."""
    if any(uid not in friends for uid in invitees):
        raise Forbidden("not_friends", "You can only add your friends to a group.")


def is_manager(role: str | None) -> bool:
    return role in ("owner", "admin")


def check_manage(role: str) -> None:
    """Settings, join requests: the owner and admins."""
    if not is_manager(role):
        raise Forbidden("not_group_admin", "Only the group's owner and admins may do this.")


def check_owner(role: str) -> None:
    """Roles and ownership: the owner alone."""
    if role != "owner":
        raise Forbidden("not_group_owner", "Only the group's owner may do this.")


def needs_approval(inviter_role: str, approval_required: bool) -> bool:
    """Whether an invitation becomes a join request for the admins instead of a join."""
    return approval_required and not is_manager(inviter_role)


def check_remove(actor_id: int, actor_role: str, target_id: int, target_role: str) -> None:
    """The owner removes anyone; admins remove plain members; nobody removes themselves."""
    if actor_id == target_id:
        raise Invalid("cannot_remove_self", "To leave the group, use leave.")
    if actor_role == "owner":
        return
    if actor_role == "admin":
        if target_role == "member":
            return
        raise Forbidden(
            "cannot_remove_admin", "Admins may remove plain members only, not admins or the owner."
        )
    raise Forbidden("not_group_admin", "Only the group's owner and admins may remove members.")


def check_role_change(actor_id: int, actor_role: str, target_id: int) -> None:
    """Only the owner names or demotes admins, and not themselves."""
    check_owner(actor_role)
    if actor_id == target_id:
        raise Invalid("cannot_change_own_role", "The owner's role changes only by transfer.")


def check_transfer(actor_id: int, actor_role: str, target_id: int) -> None:
    check_owner(actor_role)
    if actor_id == target_id:
        raise Invalid("already_owner", "You already own this group.")


def successor(members: Sequence[Member], leaving_id: int) -> int | None:
    """Who owns the group after its owner leaves: the longest-standing admin, else the
    longest-standing member; None when nobody is left."""
    rest = [m for m in members if m.user_id != leaving_id]
    if not rest:
        return None
    admins = [m for m in rest if m.role == "admin"]
    pool = admins or rest
    return min(pool, key=lambda m: (m.joined_ms, m.from_seq, m.user_id)).user_id
