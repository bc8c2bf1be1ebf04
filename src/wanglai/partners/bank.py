"""The bank gateway: card charges (top-ups), payouts to a bank account (withdrawals), and the
status of either. The sandbox in ``wanglai.sandbox.bank`` speaks the same protocol."""

from __future__ import annotations

from wanglai.partners.http import Outcome, PartnerHttp, accepted_ref, outcome_of


class BankClient:
    def __init__(self, http: PartnerHttp, base_url: str, secret: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.secret = secret

    async def charge(
        self, order: int, card: str, amount: int, currency: str, callback_url: str
    ) -> str:
        """Ask the bank to charge ``card``; returns the bank's reference once it accepted."""
        _status, answer = await self.http.post(
            f"{self.base_url}/v1/charges",
            self.secret,
            {
                "order": order,
                "card": card,
                "amount": amount,
                "currency": currency,
                "callback_url": callback_url,
            },
        )
        return accepted_ref(answer)

    async def payout(
        self, order: int, account: str, amount: int, currency: str, callback_url: str
    ) -> str:
        """Ask the bank to pay ``amount`` into ``account``; returns its reference."""
        _status, answer = await self.http.post(
            f"{self.base_url}/v1/payouts",
            self.secret,
            {
                "order": order,
                "account": account,
                "amount": amount,
                "currency": currency,
                "callback_url": callback_url,
            },
        )
        return accepted_ref(answer)

    async def status(self, order: int) -> Outcome | None:
        status, answer = await self.http.post(
            f"{self.base_url}/v1/status", self.secret, {"order": order}
        )
        return outcome_of(status, answer)
