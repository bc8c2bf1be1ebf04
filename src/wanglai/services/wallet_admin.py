"""Operator corrections to a wallet (``wanglai admin wallet credit|debit``).

Money put in or taken out by hand moves as a posted ``adjustment`` transfer between the bank
clearing account and the wallet, with the reason kept on the transfer, so the correction shows
on the owner's statement and in every audit; nothing already recorded is changed.
"""

from __future__ import annotations

import msgspec

from wanglai.domain.errors import Invalid
from wanglai.services.wallet import WalletService
from wanglai.store import adjustments, ledger

MAX_REASON = 64
"""The length of ``ledger_transfers.ref``, where the reason is kept."""


class Adjustment(msgspec.Struct):
    transfer_id: int
    user_id: int
    direction: str
    """``credit`` (into the wallet) or ``debit`` (out of it)."""
    amount: int
    currency: str
    reason: str
    balance: int
    available: int


def check_reason(reason: object) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text or len(text) > MAX_REASON:
        raise Invalid(
            "invalid_reason",
            f"Give a reason of 1 to {MAX_REASON} characters; it is kept on the transfer.",
        )
    return text


class WalletAdmin:
    def __init__(self, wallet: WalletService) -> None:
        self.wallet = wallet

    async def credit(self, user_id: int, amount: object, reason: object) -> Adjustment:
        """Put ``amount`` fen into the user's wallet (made if the user has none yet)."""
        return await self._adjust(user_id, amount, reason, credit=True)

    async def debit(self, user_id: int, amount: object, reason: object) -> Adjustment:
        """Take ``amount`` fen out of the user's wallet; refused if it would overdraw it
        (counting what pending payments hold back)."""
        return await self._adjust(user_id, amount, reason, credit=False)

    async def _adjust(
        self, user_id: int, amount: object, reason: object, credit: bool
    ) -> Adjustment:
        value, currency = self.wallet.check_amount(amount, None)
        text = check_reason(reason)
        clearing = self.wallet.system_account(ledger.BANK_CLEARING, currency)
        transfer, account, sent = await self.wallet.db.write(
            adjustments.adjust,
            user_id,
            clearing,
            value,
            currency,
            text,
            credit,
            self.wallet.clock.now_ms(),
        )
        self.wallet.publish(sent)
        return Adjustment(
            transfer.id,
            user_id,
            "credit" if credit else "debit",
            value,
            currency,
            text,
            account.balance,
            account.available,
        )
