"""The rules of contacts: phone-book uploads, friend requests and who may see whom.

Pure functions of facts the store reads inside its transaction; they return a decision or raise.
A block is never revealed to the person blocked: to them the blocker looks like nobody at all.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from wanglai.domain.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from wanglai.domain.phone import try_normalise

MAX_NOTE = 200
PENDING, ACCEPTED, DECLINED, CANCELLED = "pending", "accepted", "declined", "cancelled"


# ---------------------------------------------------------------- phone book


@dataclass(frozen=True)
class PhonebookPolicy:
    max_numbers: int = 5000
    uploads_per_window: int = 10
    lookups_per_window: int = 100
    window_ms: int = 60 * 60_000
    """At most one hour: the shared rate-hit log forgets hits older than that."""


@dataclass(frozen=True)
class Phonebook:
    numbers: dict[str, str]
    """E.164 number → the entry as the caller gave it (first one, when several normalise alike)."""
    invalid: list[str]
    """Entries that are not valid phone numbers, as given, each once."""


def sort_phonebook(entries: Sequence[str], region: str, policy: PhonebookPolicy) -> Phonebook:
    """Normalise every entry; refuse an upload with more than ``policy.max_numbers`` entries."""
    if len(entries) > policy.max_numbers:
        raise TooLarge(
            "phonebook_too_large",
            f"Upload at most {policy.max_numbers} numbers per call; split the phone book.",
        )
    numbers: dict[str, str] = {}
    invalid: dict[str, None] = {}
    for raw in entries:
        e164 = try_normalise(raw, region)
        if e164 is None:
            invalid[raw] = None
        else:
            numbers.setdefault(e164, raw)
    return Phonebook(numbers, list(invalid))


# ---------------------------------------------------------------- friend requests


@dataclass(frozen=True)
class PairFacts:
    """What is true between ``me`` and another user, read in one transaction."""

    exists: bool
    blocked_by_me: bool
    blocked_by_them: bool
    friends: bool
    outgoing: int | None
    """Id of my pending request to them."""
    incoming: int | None
    """Id of their pending request to me."""


class RequestAction(enum.Enum):
    CREATE = "create"
    EXISTING = "existing"
    """A pending request to them exists already: answer with it."""
    ACCEPT_INCOMING = "accept_incoming"
    """They asked me first: asking back means yes, so we become friends."""


def check_note(note: object) -> str:
    if not isinstance(note, str):
        raise Invalid("invalid_note", "'note' is a string.")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise TooLarge("note_too_long", f"A friend request note is at most {MAX_NOTE} characters.")
    return note


def check_not_self(me: int, other: int, code: str) -> None:
    if me == other:
        raise Invalid(code, "Pick someone other than yourself.")


def is_visible(facts: PairFacts) -> bool:
    """Whether the viewer may see the other user at all (not if they blocked the viewer)."""
    return facts.exists and not facts.blocked_by_them


def decide_request(facts: PairFacts) -> RequestAction:
    """What sending a friend request does, or why it is refused."""
    if not is_visible(facts):
        raise NotFound("user_not_found", "No such user.")
    if facts.blocked_by_me:
        raise Forbidden("peer_blocked", "You blocked this person; unblock them first.")
    if facts.friends:
        raise Conflict("already_friends", "You are friends already.")
    if facts.incoming is not None:
        return RequestAction.ACCEPT_INCOMING
    if facts.outgoing is not None:
        return RequestAction.EXISTING
    return RequestAction.CREATE


def decide_answer(me: int, to_id: int | None, state: str | None, answer: str) -> bool:
    """Whether answering (``accepted`` or ``declined``) a request changes it.

    Only its recipient may answer; to anyone else it does not exist. Answering the same way
    twice is a harmless retry (returns False); answering a closed request otherwise is refused.
    """
    if to_id != me or state is None:
        raise NotFound("friend_request_not_found", "No such friend request to you.")
    if state == PENDING:
        return True
    if state == answer:
        return False
    raise Conflict("friend_request_closed", f"This friend request is {state}; it is not open.")
