"""Who may recall or edit a message, and until when."""

from __future__ import annotations

from wanglai.domain.errors import Forbidden, Gone, Invalid
from wanglai.domain.policy import is_admin

RECALL_WINDOW_MS = 2 * 60_000
MONEY_KINDS = ("transfer", "redpacket")
"""Cards of money that moved: the money does not come back with the card, so they stay."""
EDIT_WINDOW_MS = 24 * 60 * 60_000


def check_recall(
    actor_id: int,
    actor_role: str | None,
    sender_id: int,
    sent_ms: int,
    recalled: bool,
    now_ms: int,
    kind: str = "text",
) -> None:
    """Senders recall within 2 minutes; group owners and admins recall anything, any time;
    nobody recalls the card of a transfer or a red packet."""
    if kind in MONEY_KINDS:
        raise Forbidden("cannot_recall_payment", "Transfers and red packets cannot be recalled.")
    if recalled:
        raise Invalid("already_recalled", "This message was already recalled.")
    if is_admin(actor_role):
        return
    if sender_id != actor_id:
        raise Forbidden("not_your_message", "You can only recall your own messages.")
    if now_ms - sent_ms > RECALL_WINDOW_MS:
        raise Gone("recall_window_passed", "Messages can be recalled within 2 minutes.")


def check_edit(
    actor_id: int,
    sender_id: int,
    kind: str,
    sent_ms: int,
    recalled: bool,
    now_ms: int,
    mentions_all: bool = False,
    actor_role: str | None = None,
) -> None:
    """Senders edit their own text within 24 hours; the new text may @all only if they could
    send that (group owners and admins)."""
    if sender_id != actor_id:
        raise Forbidden("not_your_message", "You can only edit your own messages.")
    if recalled:
        raise Invalid("already_recalled", "A recalled message cannot be edited.")
    if kind != "text":
        raise Invalid("not_editable", "Only text messages can be edited.")
    if now_ms - sent_ms > EDIT_WINDOW_MS:
        raise Gone("edit_window_passed", "Messages can be edited within 24 hours.")
    if mentions_all and not is_admin(actor_role):
        raise Forbidden("mention_all_forbidden", "Only group admins may mention @all.")
