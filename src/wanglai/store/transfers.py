"""Transfers to a person in a chat: the pending ledger transfer, its card in the direct
conversation and its row in ``chat_transfers``, made and resolved in one transaction each.

A chat transfer's id is the id of its pending ledger transfer, so a statement entry leads to it
(the pending transfer by ``id``, its post or void by ``pending_id``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from wanglai.domain import ledger as rules
from wanglai.domain import limits as spend_rules
from wanglai.domain import transfers as transfer_rules
from wanglai.domain.errors import NotFound
from wanglai.domain.ledger import Request
from wanglai.store import conversations, events, ledger, messages
from wanglai.store import wallet as wallets
from wanglai.store.events import Notice, Sent
from wanglai.store.messages import Appended
from wanglai.store.sql import Op, Row, all_rows, execute, one

KIND = "chat_transfer"
"""The ledger kind of a chat transfer's pending transfer and of its post or void."""
CARD = "transfer"
"""The message kind of the card in the conversation."""

COLUMNS = (
    "id, sender_id, receiver_id, conv_id, msg_seq, amount, currency, note, state, created_ms,"
    " expires_ms, resolved_ms"
)

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class ChatTransfer:
    id: int
    sender_id: int
    receiver_id: int
    conv_id: int
    msg_seq: int
    amount: int
    currency: str
    note: str
    state: str
    created_ms: int
    expires_ms: int
    resolved_ms: int | None


def _transfer(row: Row) -> ChatTransfer:
    return ChatTransfer(
        int(row[0]),
        int(row[1]),
        int(row[2]),
        int(row[3]),
        int(row[4]),
        int(row[5]),
        str(row[6]),
        str(row[7]),
        str(row[8]),
        int(row[9]),
        int(row[10]),
        None if row[11] is None else int(row[11]),
    )


def get(transfer_id: int) -> Op[ChatTransfer | None]:
    row = yield from one(f"SELECT {COLUMNS} FROM chat_transfers WHERE id = ?", transfer_id)
    return None if row is None else _transfer(row)


def lock(transfer_id: int) -> Op[ChatTransfer | None]:
    """The transfer, its row locked on PostgreSQL until the transaction ends (before the ledger
    accounts, always in this order)."""
    row = yield from one(
        f"SELECT {COLUMNS} FROM chat_transfers WHERE id = ?",
        transfer_id,
        pg_sql=f"SELECT {COLUMNS} FROM chat_transfers WHERE id = $1 FOR UPDATE",
    )
    return None if row is None else _transfer(row)


def due(now_ms: int, limit: int) -> Op[list[int]]:
    """Pending transfers whose 24 hours have passed, oldest first."""
    rows = yield from all_rows(
        "SELECT id FROM chat_transfers WHERE state = 'pending' AND expires_ms <= ?"
        " ORDER BY expires_ms, id LIMIT ?",
        now_ms,
        limit,
    )
    return [int(r[0]) for r in rows]


@dataclass
class Made:
    """What a use case needs after the commit: the transfer, the events appended for it, and
    the card message (whose frames are built by the messaging service)."""

    transfer: ChatTransfer
    sent: Sent
    card: Appended | None = None


def create(
    sender_id: int,
    receiver_id: int,
    amount: int,
    currency: str,
    note: str,
    now_ms: int,
    limits: spend_rules.SpendLimits,
) -> Op[Made]:
    """Reserve ``amount`` from the sender's wallet for the receiver (a pending ledger transfer
    that times out in 24 hours), post its card in their direct conversation and tell both.

    Refuses (changing nothing) blocked pairs, strangers unless the receiver allows them, a
    locked or capped payer and an overdraft."""
    transfer_rules.check_payee(sender_id, receiver_id)
    facts = yield from conversations.peer_facts({(sender_id, receiver_id)})
    pair = facts.get((sender_id, receiver_id))
    if pair is None:
        raise NotFound("user_not_found", "No such user.")
    receiver_wallet = yield from wallets.wallet(receiver_id)
    transfer_rules.check_may_pay(pair, receiver_wallet is not None and receiver_wallet.strangers)
    sender_wallet = yield from wallets.wallet(sender_id)
    if sender_wallet is None:
        raise wallets.ledger_empty()
    if receiver_wallet is None:
        receiver_wallet = yield from wallets.open_wallet(receiver_id, currency, now_ms)
    request = Request(
        sender_wallet.account_id,
        receiver_wallet.account_id,
        amount,
        currency,
        KIND,
        rules.PENDING,
        timeout_ms=transfer_rules.TIMEOUT_MS,
    )
    made, loaded = yield from ledger.apply([request], now_ms)
    # Counted once the sender's account is locked (PostgreSQL): concurrent payments of one
    # sender are counted against the caps one after the other.
    yield from wallets.spend(sender_id, amount, now_ms, limits)
    pending = made[0]
    # The movement events go first: the card's event is pushed after them, in seq order.
    sent = yield from events.notify(wallets.movement_notices(loaded, made), now_ms)
    conv_id, _created = yield from conversations.open_direct(sender_id, receiver_id, now_ms)
    body = {"transfer": pending.id, "amount": amount, "currency": currency, "note": note}
    card = yield from messages.append_card(conv_id, sender_id, CARD, _encode(body).decode(), now_ms)
    msg_seq = int(card.message[1])
    expires_ms = now_ms + transfer_rules.TIMEOUT_MS
    yield from execute(
        "INSERT INTO chat_transfers (id, sender_id, receiver_id, conv_id, msg_seq, pending_id,"
        " amount, currency, note, state, created_ms, expires_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        pending.id,
        sender_id,
        receiver_id,
        conv_id,
        msg_seq,
        pending.id,
        amount,
        currency,
        note,
        now_ms,
        expires_ms,
    )
    transfer = ChatTransfer(
        pending.id,
        sender_id,
        receiver_id,
        conv_id,
        msg_seq,
        amount,
        currency,
        note,
        transfer_rules.PENDING,
        now_ms,
        expires_ms,
        None,
    )
    return Made(transfer, sent, card)


def resolve(
    transfer_id: int,
    actor_id: int | None,
    state: str,
    now_ms: int,
    view: Callable[[ChatTransfer], dict[str, Any]],
) -> Op[Made]:
    """Accept (post), decline or return (void) a pending transfer, exactly once.

    ``actor_id`` is the receiver acting (None: the expiry sweep). ``view(transfer)`` is what
    the ``transfer.updated`` event carries. A transfer that is not pending any more is refused
    with ``transfer_already_<state>`` and nothing changes."""
    found = yield from lock(transfer_id)
    if found is None:
        raise transfer_rules.not_found()
    if actor_id is not None:
        transfer_rules.check_visible(actor_id, found.sender_id, found.receiver_id)
        transfer_rules.check_receiver(actor_id, found.receiver_id)
    transfer_rules.check_resolution(state, found.state, found.expires_ms, now_ms)
    flags = rules.POST if state == transfer_rules.ACCEPTED else rules.VOID
    request = Request(kind=KIND, flags=flags, pending_id=found.id)
    made, loaded = yield from ledger.apply([request], now_ms)
    yield from execute(
        "UPDATE chat_transfers SET state = ?, resolved_ms = ? WHERE id = ?",
        state,
        now_ms,
        found.id,
    )
    if flags == rules.VOID:
        day = spend_rules.day_of(found.created_ms)
        if day == spend_rules.day_of(now_ms):
            yield from wallets.unspend(found.sender_id, found.amount, day)
    resolved = ChatTransfer(
        found.id,
        found.sender_id,
        found.receiver_id,
        found.conv_id,
        found.msg_seq,
        found.amount,
        found.currency,
        found.note,
        state,
        found.created_ms,
        found.expires_ms,
        now_ms,
    )
    notices = wallets.movement_notices(loaded, made)
    notices.append(
        Notice(
            [found.sender_id, found.receiver_id],
            "transfer.updated",
            view(resolved),
            conv_id=found.conv_id,
        )
    )
    sent = yield from events.notify(notices, now_ms)
    return Made(resolved, sent)
