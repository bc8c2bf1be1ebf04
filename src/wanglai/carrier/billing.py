"""The operator's billing interface: charge a top-up to a subscriber's phone bill, and ask what
became of a charge. Until the carrier issue points it at the operator's real API it talks to
the sandbox in ``wanglai.sandbox.billing``, which speaks the same protocol."""

from __future__ import annotations

from wanglai.partners.http import Outcome, PartnerHttp, accepted_ref, outcome_of


class BillingClient:
    def __init__(self, http: PartnerHttp, base_url: str, secret: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.secret = secret

    async def charge(
        self, order: int, msisdn: str, amount: int, currency: str, callback_url: str
    ) -> str:
        """Put ``amount`` on the bill of ``msisdn`` (E.164); returns the operator's reference."""
        _status, answer = await self.http.post(
            f"{self.base_url}/v1/charges",
            self.secret,
            {
                "order": order,
                "msisdn": msisdn,
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
