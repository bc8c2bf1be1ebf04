"""The rules of a transfer to someone in a chat: who may be paid, what a note may say, and the
life of a transfer (pending until the receiver accepts or declines it, or it returns by itself
after 24 hours)."""

from __future__ import annotations

from dataclasses import replace

from wanglai.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from wanglai.domain.policy import PeerFacts, check_direct

TIMEOUT_MS = 24 * 3600 * 1000
"""A transfer not accepted within this long returns to the sender."""
MAX_NOTE = 140

PENDING = "pending"
ACCEPTED = "accepted"
DECLINED = "declined"
RETURNED = "returned"


def check_note(value: object) -> str:
    """An optional note shown on the transfer card: up to 140 characters, no control characters."""
    if not isinstance(value, str):
        raise Invalid("invalid_note", "'note' is a string.")
    note = value.strip()
    if len(note) > MAX_NOTE:
        raise Invalid("invalid_note", f"A transfer note is at most {MAX_NOTE} characters.")
    if not note.isprintable():
        raise Invalid("invalid_note", "A transfer note is one line of text.")
    return note


def check_payee(sender_id: int, receiver_id: int) -> None:
    if sender_id == receiver_id:
        raise Invalid("cannot_pay_self", "Pick someone other than yourself.")


def check_may_pay(facts: PeerFacts, accepts_strangers: bool) -> None:
    """Blocks refuse a transfer either way; strangers may pay only someone who allows it
    (the receiver's wallet setting ``strangers``), whatever their messaging policy."""
    check_direct(replace(facts, friends=True))
    if not facts.friends and not accepts_strangers:
        raise Forbidden(
            "transfer_to_stranger", "You can send money to friends only; add them as a friend."
        )


def check_visible(user_id: int, sender_id: int, receiver_id: int) -> None:
    """Only the two people of a transfer know it exists."""
    if user_id not in (sender_id, receiver_id):
        raise not_found()


def check_receiver(user_id: int, receiver_id: int) -> None:
    """Only the receiver accepts or declines; the sender hears ``not_your_transfer``."""
    if user_id != receiver_id:
        raise Forbidden("not_your_transfer", "Only the receiver can accept or decline a transfer.")


def check_open(state: str) -> None:
    """A transfer is resolved exactly once."""
    if state != PENDING:
        raise Conflict("transfer_already_" + state, f"This transfer was already {state}.")


def check_resolution(target: str, state: str, expires_ms: int, now_ms: int) -> None:
    """Whether a pending transfer may become ``target`` now: accepted before its 24 hours are
    up, declined any time, returned (by the expiry sweep) only after them."""
    check_open(state)
    if target == ACCEPTED and now_ms >= expires_ms:
        raise Gone(
            "transfer_expired",
            "This transfer was not accepted within 24 hours; it returns to the sender.",
        )
    if target == RETURNED and now_ms < expires_ms:
        raise Conflict("transfer_not_due", "This transfer is still waiting for the receiver.")


def not_found() -> NotFound:
    return NotFound("transfer_not_found", "No such transfer.")
