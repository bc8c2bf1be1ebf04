"""Operator corrections: a posted ``adjustment`` transfer between bank clearing and a user's
wallet, with the wallet owner's movement event, in one transaction. A correction is always a new
transfer; no stored transfer or sum is ever edited."""

from __future__ import annotations

from wanglai.domain.ledger import Account, InsufficientFunds, Request, Transfer
from wanglai.store import events, ledger
from wanglai.store import wallet as wallet_store
from wanglai.store.events import Sent
from wanglai.store.sql import Op

ADJUSTMENT = "adjustment"


def adjust(
    user_id: int,
    clearing_id: int,
    amount: int,
    currency: str,
    reason: str,
    credit: bool,
    now_ms: int,
) -> Op[tuple[Transfer, Account, Sent]]:
    """Credit (``credit``) or debit the user's wallet by ``amount`` against ``clearing_id``;
    a debit that would overdraw the wallet is refused (``insufficient_funds``) and changes
    nothing. Returns the transfer, the wallet's account after it, and the events to push."""
    if credit:
        found = yield from wallet_store.open_wallet(user_id, currency, now_ms)
        request = Request(clearing_id, found.account_id, amount, currency, ADJUSTMENT, ref=reason)
    else:
        existing = yield from wallet_store.wallet(user_id)
        if existing is None:
            raise InsufficientFunds("insufficient_funds", "That user has no wallet to debit.")
        found = existing
        request = Request(found.account_id, clearing_id, amount, currency, ADJUSTMENT, ref=reason)
    transfers, loaded = yield from ledger.apply([request], now_ms)
    sent = yield from events.notify(wallet_store.movement_notices(loaded, transfers), now_ms)
    return transfers[0], loaded.book.accounts[found.account_id], sent
