"""Who may do what: the rules for messaging a person or a group, as pure functions of facts."""

from __future__ import annotations

from dataclasses import dataclass

from wanglai.domain.errors import Forbidden, Invalid, NotFound

DM_POLICIES = ("friends", "anyone")
ADMIN_ROLES = ("owner", "admin")


@dataclass(frozen=True)
class PeerFacts:
    """What matters when ``me`` talks to one other person."""

    blocked_by_me: bool
    blocked_by_peer: bool
    friends: bool
    peer_dm_policy: str
    placeholder: bool = False
    """The peer is a number not on Wanglai (it gets texts; see domain/interworking.py)."""
    sms_thread: bool = False
    """One of the two once texted the other's number: their conversation stays open both ways
    (the number's replies come in, and go on once it joins), whatever the DM policy."""


def check_direct(facts: PeerFacts) -> None:
    """Raise unless a direct message to this peer is allowed."""
    if facts.placeholder:
        # Only its SMS thread may reach a number that is not on Wanglai (check_send).
        raise NotFound("user_not_found", "No such user.")
    if facts.blocked_by_peer:
        # Say nothing that reveals the block: the peer is simply not reachable.
        raise Forbidden("peer_unreachable", "This person does not accept your messages.")
    if facts.blocked_by_me:
        raise Forbidden("peer_blocked", "You blocked this person; unblock them to write.")
    if not facts.friends and facts.peer_dm_policy != "anyone" and not facts.sms_thread:
        raise Forbidden("not_friends", "This person accepts messages from friends only.")


@dataclass(frozen=True)
class SendFacts:
    conv_kind: str
    sender_role: str | None
    peer: PeerFacts | None
    mentions_all: bool
    mentions_outsiders: bool = False


def check_send(facts: SendFacts) -> None:
    if facts.sender_role is None:
        raise NotFound("conversation_not_found", "No such conversation.")
    if facts.mentions_outsiders:
        raise Invalid("mention_not_member", "Mention only members of this conversation.")
    if facts.conv_kind == "direct":
        if facts.peer is not None and not facts.peer.placeholder:
            check_direct(facts.peer)  # a number not on Wanglai: the SMS rules apply instead
        if facts.mentions_all:
            raise Forbidden("mention_all_forbidden", "@all is for group admins.")
    elif facts.mentions_all and facts.sender_role not in ADMIN_ROLES:
        raise Forbidden("mention_all_forbidden", "Only the owner and admins may mention @all.")


def is_admin(role: str | None) -> bool:
    return role in ADMIN_ROLES
