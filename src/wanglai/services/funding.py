"""Money in and out of the wallet through the outside parties: top-ups charged to the phone
bill (the operator's billing) or to a bank card, and withdrawals to a bank account.

An order is written first (in the caller's idempotent transaction), then sent to the partner.
The bank answers "accepted" and later posts a signed callback with the outcome. The operator's
carrier billing (``carrier/billing.py``) takes a one-step payment whose ``clientCorrelator`` is
derived from the order, so a retry after a timeout charges once; it answers with the payment's
status and later posts a notification (CloudEvent) to our sink. ``store.funding.settle``
applies each outcome exactly once. Orders whose outcome never comes are settled by
``reconcile``, which asks the partner (the operator by payment id, or by correlator when its
answer was lost).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

import msgspec

from wanglai.carrier import billing as operator
from wanglai.carrier.billing import BillingClient, Payment
from wanglai.domain import funding as rules
from wanglai.domain import money
from wanglai.domain.clock import Clock
from wanglai.domain.errors import (
    Conflict,
    Invalid,
    NotFound,
    Unauthorized,
    Unavailable,
    WanglaiError,
)
from wanglai.domain.idempotency import check_key, fingerprint
from wanglai.domain.paging import check_limit
from wanglai.partners import signing
from wanglai.partners.bank import BankClient
from wanglai.partners.http import Outcome, PartnerError, PartnerHttp, Refused, TimedOut
from wanglai.services.wallet import WalletService
from wanglai.settings import Settings
from wanglai.store import accounts as account_store
from wanglai.store import funding as store
from wanglai.store import ledger
from wanglai.store.database import Database
from wanglai.store.events import Sent
from wanglai.store.sql import Op

log = logging.getLogger("wanglai.funding")

BANK_PARTNER = "bank"
OPERATOR_EVENT = operator.EVENT_PREFIX


class FundingView(msgspec.Struct):
    """A top-up or withdrawal as its owner sees it."""

    id: int
    direction: str
    """``topup`` or ``withdraw``."""
    channel: str
    """``carrier`` (the phone bill) or ``bank``."""
    amount: int
    currency: str
    state: str
    """``pending`` until the partner confirms, then ``succeeded`` or ``failed``."""
    instrument: str
    """The card or account charged or paid, masked; empty for the phone bill."""
    created_at: int
    updated_at: int
    failure: str | None = None
    """Why it failed (the partner's reason code)."""
    partner_ref: str | None = None
    transfer_id: int | None = None


class FundingPage(msgspec.Struct):
    orders: list[FundingView]
    next_before: int | None
    """Pass as ``before`` for the next (older) page; null on the last page."""


class PartnerCallback(msgspec.Struct):
    """What a partner posts to its callback URL when an order is settled."""

    order: int
    ref: str
    status: str
    """``succeeded`` or ``failed``."""
    amount: int
    currency: str = money.DEFAULT_CURRENCY
    reason: str | None = None


class OperatorEventData(msgspec.Struct, rename="camel"):
    payment_id: Annotated[str, msgspec.Meta(pattern=r"^[\x21-\x7e]{1,64}$")]
    status: Annotated[str, msgspec.Meta(max_length=32)] = ""
    """``succeeded`` or ``failed``: how the procedure the event tells of ended."""
    description: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    denial_reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class OperatorEvent(msgspec.Struct):
    """A payment notification from the operator: a CloudEvent (CAMARA Carrier Billing)."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    type: Annotated[str, msgspec.Meta(max_length=200)]
    """``org.camaraproject.carrier-billing.v0.payment-completed`` (or ``-denied``,
    ``-cancelled``; others are acknowledged and change nothing)."""
    specversion: Annotated[str, msgspec.Meta(max_length=10)]
    time: Annotated[str, msgspec.Meta(max_length=64)]
    data: OperatorEventData
    datacontenttype: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class CallbackAck(msgspec.Struct):
    order: int
    state: str
    applied: bool
    """False when the outcome had already been applied (a duplicate callback)."""


def view(order: store.Order) -> FundingView:
    return msgspec.convert(store.order_data(order), FundingView)


def correlator(order: store.Order | FundingView) -> str:
    """The ``clientCorrelator`` of a phone-bill top-up: the same for every try of the order,
    so the operator charges it once. Its creation time keeps it unique even if a database is
    started afresh and order ids begin again."""
    created = order.created_ms if isinstance(order, store.Order) else order.created_at
    return f"wanglai-{order.id}-{created}"


def outcome_of(order_id: int, payment: Payment) -> Outcome:
    """What an operator's payment means for our order."""
    if payment.status == operator.SUCCEEDED:
        status, reason = rules.SUCCEEDED, None
    elif payment.status in (operator.DENIED, operator.CANCELLED):
        status, reason = rules.FAILED, f"payment_{payment.status}"
    else:
        status, reason = rules.PENDING, None
    return Outcome(order_id, payment.payment_id, status, payment.amount, reason)


class FundingService:
    def __init__(
        self, db: Database, clock: Clock, wallet: WalletService, settings: Settings
    ) -> None:
        self.db = db
        self.clock = clock
        self.wallet = wallet
        self.settings = settings
        self.http = PartnerHttp(clock, settings.partner_timeout_s)
        self.bank = BankClient(self.http, settings.bank_url, settings.bank_secret)
        self.billing = BillingClient(
            self.http,
            clock,
            settings.operator_billing_url,
            settings.operator_client_id,
            settings.operator_client_secret,
            settings.operator_token_url,
        )

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    def _callback_url(self, partner: str) -> str:
        return f"{self.settings.callback_base}/v1/partners/{partner}/callback"

    @property
    def sink(self) -> str:
        """Where the operator posts its payment notifications."""
        return f"{self.settings.callback_base}/v1/partners/operator/notifications"

    # ------------------------------------------------------------ use cases

    async def topup(
        self, user_id: int, key: object, channel: object, amount: object, card: object = None
    ) -> FundingView:
        """Start a top-up; the order stays ``pending`` until the partner says how it ended."""
        chosen = rules.check_channel(channel)
        value, currency = self.wallet.check_amount(amount, None)
        if chosen == rules.BANK:
            number = rules.check_card(card)
            instrument = rules.mask(number)
            clearing = None
        else:
            row = await self.db.read(account_store.user_by_id, user_id)
            if row is None:
                raise NotFound("user_not_found", "No such user.")
            number, instrument = str(row[1]), ""
            clearing = self.wallet.system_account(ledger.OPERATOR_CLEARING, currency)
        cap = self.settings.carrier_monthly_cap
        now = self.clock.now_ms()

        def run() -> Op[tuple[FundingView, Sent]]:
            made, sent = yield from store.create_topup(
                user_id, chosen, value, currency, instrument, cap, now, clearing
            )
            return view(made), sent

        made = await self.wallet.once(
            user_id, key, fingerprint("topup", chosen, value, number), run, FundingView
        )
        if chosen == rules.BANK:
            url = self._callback_url(BANK_PARTNER)

            async def charge_card() -> Outcome:
                ref = await self.bank.charge(made.id, number, value, currency, url)
                return Outcome(made.id, ref, rules.PENDING, value)

            return await self._submit(made.id, charge_card)

        async def charge_bill() -> Outcome:
            payment = await self.billing.create_payment(
                number,
                value,
                currency,
                "Wanglai wallet top-up",
                f"wanglai-topup-{made.id}",
                correlator=correlator(made),
                sink=self.sink,
                sink_token=operator.sink_token(self.settings.operator_sink_secret, made.id),
            )
            return outcome_of(made.id, payment)

        return await self._submit(made.id, charge_bill)

    async def withdraw(
        self, user_id: int, key: object, amount: object, account: object, pin: str | None
    ) -> FundingView:
        """Reserve ``amount`` at once and ask the bank to pay it out to ``account``."""
        check_key(key)  # before the PIN: a request that cannot go through costs no PIN try
        value, currency = self.wallet.check_amount(amount, None)
        number = rules.check_account(account)
        await self.wallet.authorize(user_id, value, pin)
        clearing = self.wallet.system_account(ledger.BANK_CLEARING, currency)
        limits = self.wallet.limits
        now = self.clock.now_ms()

        def run() -> Op[tuple[FundingView, Sent]]:
            made, sent = yield from store.create_withdrawal(
                user_id, value, currency, rules.mask(number), clearing, limits, now
            )
            return view(made), sent

        made = await self.wallet.once(
            user_id, key, fingerprint("withdraw", value, number), run, FundingView
        )
        url = self._callback_url(BANK_PARTNER)

        async def payout() -> Outcome:
            ref = await self.bank.payout(made.id, number, value, currency, url)
            return Outcome(made.id, ref, rules.PENDING, value)

        return await self._submit(made.id, payout)

    async def _submit(self, order_id: int, send: Callable[[], Awaitable[Outcome]]) -> FundingView:
        """Send an order to its partner unless it is already known there (a retry of an order
        whose answer was lost is sent again: the bank knows it by order id, the operator by
        client correlator, and neither charges twice). A refusal or an unreachable partner
        fails the order and the caller is told; a timeout leaves it pending, since the partner
        may have taken it, for a retry or ``reconcile`` to settle. An answer that already
        tells the outcome (a synchronous payment) is applied at once."""
        found = await self.db.read(store.order, order_id)
        assert found is not None
        if found.state != rules.PENDING or found.partner_ref is not None:
            return view(found)
        try:
            outcome = await send()
        except Refused as refused:
            await self._settle(found, False, refused.reason)
            raise Conflict(
                "partner_declined",
                f"The {self._partner_name(found)} declined this ({refused.reason});"
                f" order {order_id} failed and nothing was charged.",
            ) from None
        except TimedOut:
            log.warning("funding order %d: the partner did not answer in time", order_id)
            current = await self.db.read(store.order, order_id)
            assert current is not None
            return view(current)
        except PartnerError as exc:
            log.warning("funding order %d: partner unavailable: %s", order_id, exc)
            await self._settle(found, False, "partner_unavailable")
            raise Unavailable(
                "partner_unavailable",
                f"The {self._partner_name(found)} could not be reached; order {order_id}"
                " failed and nothing was charged. Try again later.",
            ) from None
        except WanglaiError as exc:  # refused before sending: nothing reached the partner
            await self._settle(found, False, exc.code)
            raise
        await self.db.write(store.record_ref, order_id, outcome.ref, self.clock.now_ms())
        if outcome.status != rules.PENDING:
            settled, _ = await self._settle(
                found,
                outcome.status == rules.SUCCEEDED,
                outcome.reason,
                outcome.ref,
                outcome.amount,
            )
            return view(settled)
        current = await self.db.read(store.order, order_id)
        assert current is not None
        return view(current)

    @staticmethod
    def _partner_name(order: store.Order) -> str:
        return "bank" if order.channel == rules.BANK else "operator's billing"

    async def _settle(
        self,
        order: store.Order,
        succeeded: bool,
        reason: str | None,
        ref: str | None = None,
        amount: int | None = None,
    ) -> tuple[store.Order, bool]:
        name = ledger.BANK_CLEARING if order.channel == rules.BANK else ledger.OPERATOR_CLEARING
        clearing = self.wallet.system_account(name, order.currency)
        settled, applied, sent = await self.db.write(
            store.settle,
            order.id,
            order.channel,
            succeeded,
            reason,
            ref,
            amount,
            clearing,
            self.clock.now_ms(),
        )
        self.wallet.publish(sent)
        return settled, applied

    # ------------------------------------------------------------ reads

    async def get(self, user_id: int, order_id: int) -> FundingView:
        found = await self.db.read(store.order, order_id)
        if found is None or found.user_id != user_id:
            raise NotFound("funding_order_not_found", "No such funding order.")
        return view(found)

    async def orders(self, user_id: int, before: int | None, limit: int) -> FundingPage:
        check_limit(limit)
        found = await self.db.read(store.orders_of, user_id, before, limit)
        views = [view(o) for o in found]
        return FundingPage(views, views[-1].id if len(views) == limit else None)

    # ------------------------------------------------------------ partners calling back

    async def callback(
        self, raw: bytes, signature: str | None, body: PartnerCallback
    ) -> CallbackAck:
        """Apply the bank's signed callback; a duplicate is acknowledged and changes nothing."""
        signing.verify(self.settings.bank_secret, signature, raw, self.clock.now_ms())
        if body.status not in (rules.SUCCEEDED, rules.FAILED):
            raise Invalid("invalid_status", "'status' is 'succeeded' or 'failed'.")
        if not 0 < body.order < 2**62:
            raise NotFound("funding_order_not_found", "No such funding order.")
        found = await self.db.read(store.order, body.order)
        if found is None or found.channel != rules.BANK:
            raise NotFound("funding_order_not_found", "No such funding order.")
        settled, applied = await self._settle(
            found, body.status == rules.SUCCEEDED, body.reason, body.ref, body.amount
        )
        if not applied and settled.state != body.status:
            log.warning(
                "funding order %d: bank callback says %s, order is %s; ignored",
                settled.id,
                body.status,
                settled.state,
            )
        return CallbackAck(settled.id, settled.state, applied)

    async def operator_notification(self, token: str | None, event: OperatorEvent) -> None:
        """Apply the operator's notification about a phone-bill top-up's payment. Its bearer
        token (the ``sinkCredential`` we gave with the payment) names the order; a duplicate,
        or an event that tells no outcome, changes nothing."""
        order_id = operator.sink_order(self.settings.operator_sink_secret, token)
        if order_id is None:
            raise Unauthorized(
                "sink_token_invalid",
                "Notifications carry the bearer token given with the payment (sinkCredential).",
            )
        if not event.type.startswith(OPERATOR_EVENT):
            raise Invalid("invalid_event_type", f"Event types begin with {OPERATOR_EVENT}.")
        kind = event.type.removeprefix(OPERATOR_EVENT)
        found = await self.db.read(store.order, order_id)
        if found is None or found.channel != rules.CARRIER:
            raise NotFound("funding_order_not_found", "No such funding order.")
        ref = event.data.payment_id
        if kind == "payment-completed" and event.data.status == rules.SUCCEEDED:
            settled, applied = await self._settle(found, True, None, ref)
        elif kind in ("payment-denied", "payment-cancelled"):
            reason = "payment_denied" if kind == "payment-denied" else "payment_cancelled"
            settled, applied = await self._settle(found, False, reason, ref)
        else:
            log.info("funding order %d: operator event %s changes nothing", order_id, kind)
            return
        if not applied:
            log.info(
                "funding order %d: operator says %s again; already %s",
                order_id,
                kind,
                settled.state,
            )

    # ------------------------------------------------------------ reconciliation

    async def _ask(self, order: store.Order) -> Outcome | None:
        """What the partner knows of ``order`` (None: it never heard of it)."""
        if order.channel == rules.BANK:
            return await self.bank.status(order.id)
        if order.partner_ref is not None:
            payment = await self.billing.payment(order.partner_ref)
        else:  # our request's answer was lost: did the operator take it?
            payment = await self.billing.payment_by_correlator(correlator(order))
        return None if payment is None else outcome_of(order.id, payment)

    async def reconcile(self, limit: int = 100) -> int:
        """Ask the partners about orders whose outcome is overdue and apply what they say; an
        order the partner never heard of failed (nothing was charged). Returns how many
        orders were settled."""
        now = self.clock.now_ms()
        cutoff = now - int(self.settings.reconcile_after_s * 1000)
        settled = 0
        for order in await self.db.read(store.stale_pending, cutoff, limit):
            try:
                outcome = await self._ask(order)
            except PartnerError as exc:
                log.warning("reconcile: order %d: status unknown: %s", order.id, exc)
                continue
            try:
                if outcome is None:
                    _, applied = await self._settle(order, False, "unknown_to_partner")
                elif outcome.status in (rules.SUCCEEDED, rules.FAILED):
                    _, applied = await self._settle(
                        order,
                        outcome.status == rules.SUCCEEDED,
                        outcome.reason,
                        outcome.ref,
                        outcome.amount,
                    )
                else:
                    continue
            except WanglaiError as exc:
                log.error("reconcile: order %d: %s: %s", order.id, exc.code, exc.message)
                continue
            settled += int(applied)
        return settled
