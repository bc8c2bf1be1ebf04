"""Transfers to a person in a chat: sent as a card in the direct conversation, accepted or
declined by the receiver, returned to the sender when not accepted within 24 hours."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

from wanglai.domain import transfers as rules
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid, WanglaiError
from wanglai.domain.groups import MAX_ID
from wanglai.domain.idempotency import check_key, fingerprint
from wanglai.services.messaging import MessagingService
from wanglai.services.wallet import WalletService
from wanglai.store import transfers as store
from wanglai.store.database import Database
from wanglai.store.events import Sent
from wanglai.store.sql import Op
from wanglai.store.transfers import ChatTransfer, Made

log = logging.getLogger("wanglai.transfers")


class ChatTransferView(msgspec.Struct):
    """A transfer to a person, as its sender and receiver see it."""

    id: int
    sender: int
    receiver: int
    conv: int
    """The direct conversation holding the transfer's card."""
    seq: int
    """The card's message seq in that conversation."""
    amount: int
    currency: str
    note: str
    state: str
    """``pending`` (awaiting the receiver), ``accepted``, ``declined`` or ``returned`` (not
    accepted within 24 hours)."""
    created_at: int
    expires_at: int
    resolved_at: int | None = None


def transfer_view(t: ChatTransfer) -> ChatTransferView:
    return ChatTransferView(
        id=t.id,
        sender=t.sender_id,
        receiver=t.receiver_id,
        conv=t.conv_id,
        seq=t.msg_seq,
        amount=t.amount,
        currency=t.currency,
        note=t.note,
        state=t.state,
        created_at=t.created_ms,
        expires_at=t.expires_ms,
        resolved_at=t.resolved_ms,
    )


def event_data(t: ChatTransfer) -> dict[str, Any]:
    """The payload of a ``transfer.updated`` event: the transfer's view."""
    data: dict[str, Any] = msgspec.to_builtins(transfer_view(t))
    return data


def _user_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_ID:
        raise Invalid("invalid_to", "'to' is the id of the person to pay.")
    return value


class TransferService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        wallet: WalletService,
        messaging: MessagingService,
        sweep_batch: int = 100,
    ) -> None:
        self.db = db
        self.clock = clock
        self.wallet = wallet
        self.messaging = messaging
        self.sweep_batch = sweep_batch

    async def send(
        self,
        user_id: int,
        to: object,
        amount: object,
        currency: object | None = None,
        note: object = "",
        pin: str | None = None,
        key: object = None,
    ) -> ChatTransferView:
        """Send money to a person: it waits, reserved, until they accept it (24 hours at most).

        Everything is checked before the PIN is, so a mistyped amount costs no PIN try."""
        value, code = self.wallet.check_amount(amount, currency)
        receiver = _user_id(to)
        rules.check_payee(user_id, receiver)
        text = rules.check_note(note)
        idem_key = check_key(key)
        await self.wallet.authorize(user_id, value, pin)
        item = store.Send(
            user_id,
            receiver,
            value,
            code,
            text,
            self.clock.now_ms(),
            self.wallet.limits,
            idem_key,
            fingerprint("chat_transfer", receiver, value, code, text),
        )
        done = await self.db.write(store.create, item)
        if isinstance(done, store.Replayed):
            # a retry is answered from the idempotency record and pushes nothing
            return transfer_view(done.transfer)
        self.wallet.publish(done.sent)
        # the card's event comes after the movement events in both logs
        if done.card is not None:
            self.messaging.publish("message", done.card)
        return transfer_view(done.transfer)

    async def get(self, user_id: int, transfer_id: int) -> ChatTransferView:
        found = await self.db.read(store.get, transfer_id)
        if found is None:
            raise rules.not_found()
        rules.check_visible(user_id, found.sender_id, found.receiver_id)
        return transfer_view(found)

    async def accept(self, user_id: int, transfer_id: int, key: object) -> ChatTransferView:
        """The receiver takes the money: the pending transfer is posted."""
        return await self._resolve(user_id, transfer_id, rules.ACCEPTED, key)

    async def decline(self, user_id: int, transfer_id: int, key: object) -> ChatTransferView:
        """The receiver refuses the money: the pending transfer is voided, the sender has it
        back (and, the same day, the amount no longer counts against their daily cap)."""
        return await self._resolve(user_id, transfer_id, rules.DECLINED, key)

    async def _resolve(
        self, user_id: int, transfer_id: int, state: str, key: object
    ) -> ChatTransferView:
        # Others learn nothing, not even that an idempotency key is missing.
        await self.get(user_id, transfer_id)
        now = self.clock.now_ms()

        def run() -> Op[tuple[ChatTransferView, Sent]]:
            result = yield from store.resolve(transfer_id, user_id, state, now, event_data)
            return transfer_view(result.transfer), result.sent

        return await self.wallet.once(
            user_id,
            key,
            fingerprint("chat_transfer." + state, transfer_id),
            run,
            ChatTransferView,
        )

    async def expire(self) -> int:
        """Return every transfer not accepted within 24 hours to its sender; returns how many.

        Each is its own write (committed together by the group-commit writer); one that the
        receiver resolved meanwhile is refused by its own check and left alone."""
        returned = 0
        while True:
            now = self.clock.now_ms()
            ids = await self.db.read(store.due, now, self.sweep_batch)
            outcomes = await asyncio.gather(
                *(
                    self.db.write(store.resolve, i, None, rules.RETURNED, now, event_data)
                    for i in ids
                ),
                return_exceptions=True,
            )
            progress = 0
            for transfer_id, outcome in zip(ids, outcomes, strict=True):
                if isinstance(outcome, Made):
                    self.wallet.publish(outcome.sent)
                    progress += 1
                elif isinstance(outcome, WanglaiError):
                    log.info("transfer %d not returned: %s", transfer_id, outcome.code)
                elif isinstance(outcome, BaseException):
                    raise outcome
            returned += progress
            if len(ids) < self.sweep_batch or not progress:
                return returned
