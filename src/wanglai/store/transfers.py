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
from wanglai.domain import pin as pin_rules
from wanglai.domain import transfers as transfer_rules
from wanglai.domain.errors import NotFound, WanglaiError
from wanglai.domain.ledger import Request
from wanglai.store import conversations, events, ledger, messages
from wanglai.store import wallet as wallets
from wanglai.store.events import Notice, Sent
from wanglai.store.messages import Appended
from wanglai.store.sql import Op, Row, all_rows, batched, execute, many, one

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


@dataclass(frozen=True)
class Send:
    """One transfer to make: who pays whom how much, under which idempotency key."""

    sender_id: int
    receiver_id: int
    amount: int
    currency: str
    note: str
    now_ms: int
    limits: spend_rules.SpendLimits
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Replayed:
    """The answer first given to this idempotency key (a retry): nothing was done again."""

    transfer: ChatTransfer


def create(item: Send) -> Op[Made | Replayed]:
    """Reserve ``amount`` from the sender's wallet for the receiver (a pending ledger transfer
    that times out in 24 hours), post its card in their direct conversation and tell both —
    once per idempotency key.

    Refuses (changing nothing) a key reused for another request, blocked pairs, strangers
    unless the receiver allows them, a locked or capped payer and an overdraft."""
    (outcome,) = yield from create_many([item])
    if isinstance(outcome, WanglaiError):
        raise outcome
    return outcome


_decode_transfer = msgspec.json.Decoder(ChatTransfer)


def create_many(items: list[Send]) -> Op[list[Made | Replayed | WanglaiError]]:
    """``create`` for a batch, set-wise: whatever the batch's size, a fixed number of
    statements reads the keys, wallets, friendships, spend counters, ledger accounts and
    conversations, and writes the transfers, cards, events and keys. Each item is applied or
    refused on its own, in order; a later item sees what earlier ones did (a balance spent, a
    key used)."""
    out: list[Made | Replayed | WanglaiError | wallets.Same | None] = [None] * len(items)
    first = yield from wallets.known_keys([(i.sender_id, i.key) for i in items])
    pairs = {(i.sender_id, i.receiver_id) for i in items}
    facts = yield from conversations.peer_facts(pairs)
    people = sorted({u for i in items for u in (i.sender_id, i.receiver_id)})
    found = yield from wallets.wallets(people)
    days = {spend_rules.day_of(i.now_ms) for i in items}
    keys = wallets.BatchKeys(first)
    accepted: list[int] = []
    for n, item in enumerate(items):
        try:
            answered = keys.check(item.sender_id, item.key, item.fingerprint)
            if answered is not None:
                # a retry: the first answer (stored, or the earlier item's in this batch)
                out[n] = (
                    Replayed(_decode_transfer.decode(answered))
                    if isinstance(answered, str)
                    else answered
                )
                continue
            transfer_rules.check_payee(item.sender_id, item.receiver_id)
            pair = facts.get((item.sender_id, item.receiver_id))
            if pair is None:
                raise NotFound("user_not_found", "No such user.")
            receiver = found.get(item.receiver_id)
            transfer_rules.check_may_pay(pair, receiver is not None and receiver.strangers)
            sender = found.get(item.sender_id)
            if sender is None:
                raise wallets.ledger_empty()
            pin_rules.check_unlocked(sender.locked_until_ms, item.now_ms)
            if receiver is None:
                receiver = yield from wallets.open_wallet(
                    item.receiver_id, item.currency, item.now_ms
                )
                found[item.receiver_id] = receiver
        except WanglaiError as refused:
            out[n] = refused
            continue
        keys.take(n, item.sender_id, item.key, item.fingerprint)
        accepted.append(n)

    # the money: one book for the batch; an overdraft refuses that item only
    loaded = yield from ledger.load(
        [found[items[n].sender_id].account_id for n in accepted]
        + [found[items[n].receiver_id].account_id for n in accepted]
    )
    # read once the payers' accounts are locked: concurrent payments are counted in turn
    spent = yield from wallets.spent_on(people, sorted(days))
    first_id = yield from ledger.reserve_ids(max(len(accepted), 1))
    moved: list[int] = []
    pendings: dict[int, rules.Transfer] = {}
    for offset, n in enumerate(accepted):
        item = items[n]
        request = Request(
            found[item.sender_id].account_id,
            found[item.receiver_id].account_id,
            item.amount,
            item.currency,
            KIND,
            rules.PENDING,
            timeout_ms=transfer_rules.TIMEOUT_MS,
        )
        day = spend_rules.day_of(item.now_ms)
        try:
            # checked item by item, so two payments of one payer in a batch add up
            loaded.book.check_funds(request.debit_id, item.amount)
            spend_rules.check_spend(
                item.amount,
                spent.get((item.sender_id, day), 0),
                found[item.sender_id].verified,
                item.limits,
            )
            pendings[n] = loaded.book.apply(request, first_id + offset, item.now_ms)
        except WanglaiError as refused:
            out[n] = refused
            continue
        spent[(item.sender_id, day)] = spent.get((item.sender_id, day), 0) + item.amount
        moved.append(n)
    yield from ledger.save(loaded.book)
    if not moved:
        return _settled(out)
    yield from wallets.add_spend(
        [(items[n].sender_id, spend_rules.day_of(items[n].now_ms), items[n].amount) for n in moved]
    )

    # the cards: one direct conversation per pair; each card after its movement events
    convs = yield from conversations.open_directs(
        [(items[n].sender_id, items[n].receiver_id) for n in moved], items[moved[0]].now_ms
    )
    cards = []
    for n in moved:
        item, pending = items[n], pendings[n]
        body = {
            "transfer": pending.id,
            "amount": item.amount,
            "currency": item.currency,
            "note": item.note,
        }
        cards.append(
            messages.Card(
                convs[(item.sender_id, item.receiver_id)],
                item.sender_id,
                CARD,
                _encode(body).decode(),
                (item.sender_id, item.receiver_id),
                wallets.movement_notices(loaded, [pending]),
                item.now_ms,
            )
        )
    appended = yield from messages.append_cards(cards, items[moved[0]].now_ms)
    made: dict[int, ChatTransfer] = {}
    for n, (card, _sent) in zip(moved, appended, strict=True):
        item = items[n]
        made[n] = ChatTransfer(
            pendings[n].id,
            item.sender_id,
            item.receiver_id,
            int(card.message[0]),
            int(card.message[1]),
            item.amount,
            item.currency,
            item.note,
            transfer_rules.PENDING,
            item.now_ms,
            item.now_ms + transfer_rules.TIMEOUT_MS,
            None,
        )
    yield from many(
        "INSERT INTO chat_transfers (id, sender_id, receiver_id, conv_id, msg_seq, pending_id,"
        " amount, currency, note, state, created_ms, expires_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        [
            (
                t.id,
                t.sender_id,
                t.receiver_id,
                t.conv_id,
                t.msg_seq,
                t.id,
                t.amount,
                t.currency,
                t.note,
                t.created_ms,
                t.expires_ms,
            )
            for t in (made[n] for n in moved)
        ],
    )
    yield from wallets.remember_keys(
        [
            (
                items[n].sender_id,
                items[n].key,
                items[n].fingerprint,
                _encode(made[n]).decode(),
                items[n].now_ms,
            )
            for n in moved
        ]
    )
    for n, (card, sent) in zip(moved, appended, strict=True):
        out[n] = Made(made[n], sent, card)
    return _settled(out)


def _settled(
    out: list[Made | Replayed | WanglaiError | wallets.Same | None],
) -> list[Made | Replayed | WanglaiError]:
    """Items that repeated an earlier item's key in the same batch get its answer."""
    return wallets.settle(out, lambda first: Replayed(first.transfer))  # type: ignore[attr-defined,return-value]


batched(create, create_many)


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
