"""The bank gateway: card charges (top-ups), payouts to a bank account (withdrawals), and the
status of either. The sandbox in ``wanglai.sandbox.bank`` speaks the same protocol."""

from __future__ import annotations

from wanglai.partners.http import PartnerClient


class BankClient(PartnerClient):
    async def charge(
        self, order: int, card: str, amount: int, currency: str, callback_url: str
    ) -> str:
        """Ask the bank to charge ``card``; returns the bank's reference once it accepted."""
        return await self.submit(
            "/v1/charges",
            {
                "order": order,
                "card": card,
                "amount": amount,
                "currency": currency,
                "callback_url": callback_url,
            },
        )

    async def payout(
        self, order: int, account: str, amount: int, currency: str, callback_url: str
    ) -> str:
        """Ask the bank to pay ``amount`` into ``account``; returns its reference."""
        return await self.submit(
            "/v1/payouts",
            {
                "order": order,
                "account": account,
                "amount": amount,
                "currency": currency,
                "callback_url": callback_url,
            },
        )
