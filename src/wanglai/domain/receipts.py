"""Read and delivered receipts: who hears that a member's pointer moved."""

from __future__ import annotations

POINTERS = ("read", "delivered")


def audience(pointer: str, conv_kind: str, user_id: int, members: list[int]) -> list[int]:
    """Whose logs get the receipt when ``user_id`` moves ``pointer`` in a conversation.

    ``read`` goes to the reader's own devices (to clear unread counts) and, in a direct
    conversation, to the other person; ``delivered`` only to the other person of a direct
    conversation. Group pointers are stored but not broadcast: a receipt to 500 people for every
    message would cost more than the message.
    """
    if pointer not in POINTERS:
        raise ValueError(f"unknown pointer {pointer!r}")
    own = [user_id] if pointer == "read" else []
    peers = [m for m in members if m != user_id] if conv_kind == "direct" else []
    return own + peers
