"""The operator's billing interface: charge a top-up to a subscriber's phone bill, and ask what
became of a charge. Until the carrier issue points it at the operator's real API it talks to
the sandbox in ``wanglai.sandbox.billing``, which speaks the same protocol."""

from __future__ import annotations

from wanglai.partners.http import PartnerClient


class BillingClient(PartnerClient):
    async def charge(
        self, order: int, msisdn: str, amount: int, currency: str, callback_url: str
    ) -> str:
        """Put ``amount`` on the bill of ``msisdn`` (E.164); returns the operator's reference."""
        return await self.submit(
            "/v1/charges",
            {
                "order": order,
                "msisdn": msisdn,
                "amount": amount,
                "currency": currency,
                "callback_url": callback_url,
            },
        )
