"""Merchant payments: opening a merchant, payment codes (dynamic and static) and their QR
images, paying a code with the wallet, refunds, and the merchant's statement.

Every payment and refund is one transaction (through ``WalletService.once``): the ledger
transfers (payer → merchant, merchant → fees; back again on a refund), the payment or refund
row, the code marked paid, and the events of everyone involved.
"""

from __future__ import annotations

import asyncio
import io
import secrets

import msgspec

from wanglai.domain import paycode
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid, NotFound
from wanglai.domain.idempotency import check_key, fingerprint
from wanglai.domain.ledger import Request, Transfer
from wanglai.domain.paging import check_limit
from wanglai.services.wallet import WalletService
from wanglai.store import events, ledger
from wanglai.store import merchants as store
from wanglai.store import wallet as wallet_store
from wanglai.store.database import Database
from wanglai.store.events import Notice, Sent
from wanglai.store.sql import Op

# ---------------------------------------------------------------- views


class MerchantView(msgspec.Struct):
    id: int
    name: str
    currency: str
    fee_ppm: int
    """The platform's fee on each payment, in parts per million (6000 = 0.6%)."""
    balance: int
    created_at: int


class CodeView(msgspec.Struct):
    id: int
    merchant_id: int
    kind: str
    """``dynamic`` (an amount, an expiry, paid once) or ``static`` (the payer enters it)."""
    token: str
    uri: str
    """What the QR image encodes."""
    amount: int | None
    currency: str
    description: str
    expires_at: int | None
    paid_id: int | None
    created_at: int


class PayCodeView(msgspec.Struct):
    """What a payer sees after scanning a code."""

    token: str
    merchant_id: int
    merchant: str
    kind: str
    amount: int | None
    currency: str
    description: str
    expires_at: int | None
    state: str
    """``open``, ``paid`` (a dynamic code paid already) or ``expired``."""


class PaymentView(msgspec.Struct):
    id: int
    merchant_id: int
    merchant: str
    payer_id: int
    code_id: int | None
    amount: int
    currency: str
    fee: int
    net: int
    """What the merchant keeps: the amount less the fee."""
    refunded: int
    transfer_id: int
    at: int


class RefundView(msgspec.Struct):
    id: int
    payment_id: int
    merchant_id: int
    payer_id: int
    amount: int
    currency: str
    fee_returned: int
    """The part of the payment's fee the platform gave back to the merchant."""
    refunded: int
    """All refunds of the payment so far, this one included."""
    refundable: int
    transfer_id: int
    at: int


class StatementEntry(msgspec.Struct):
    kind: str
    """``payment`` (money in) or ``refund`` (money out)."""
    id: int
    payment_id: int
    payer_id: int
    amount: int
    fee: int
    """The fee charged on a payment, or the fee returned with a refund."""
    net: int
    """The change to the merchant's balance: ``amount - fee`` for a payment,
    ``-(amount - fee)`` for a refund."""
    transfer_id: int
    at: int


class MerchantStatement(msgspec.Struct):
    merchant: MerchantView
    entries: list[StatementEntry]
    next_before: int | None
    """Pass as ``before`` for the next (older) page; null on the last page."""


# ---------------------------------------------------------------- the service


def render_qr(text: str) -> bytes:
    """A PNG of the QR code of ``text`` (medium error correction, quiet zone included)."""
    import qrcode
    from qrcode.image.pil import PilImage

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image(image_factory=PilImage).save(out)
    return out.getvalue()


def _code_view(code: paycode.Code) -> CodeView:
    return CodeView(
        code.id,
        code.merchant_id,
        "dynamic" if code.dynamic else "static",
        code.token,
        paycode.payment_uri(code.token),
        code.amount,
        code.currency,
        code.description,
        code.expires_ms,
        code.paid_id,
        code.created_ms,
    )


def _payment_view(payment: store.Payment, merchant: store.Merchant) -> PaymentView:
    return PaymentView(
        payment.id,
        merchant.id,
        merchant.name,
        payment.payer_id,
        payment.code_id,
        payment.amount,
        payment.currency,
        payment.fee,
        payment.amount - payment.fee,
        payment.refunded,
        payment.transfer_id,
        payment.created_ms,
    )


def _entry(e: store.Entry) -> StatementEntry:
    net = e.amount - e.fee
    return StatementEntry(
        e.kind,
        e.id,
        e.payment_id,
        e.payer_id,
        e.amount,
        e.fee,
        net if e.kind == "payment" else -net,
        e.transfer_id,
        e.created_ms,
    )


def payment_not_found() -> NotFound:
    return NotFound("payment_not_found", "No such payment to this merchant.")


class MerchantService:
    def __init__(self, db: Database, clock: Clock, wallet: WalletService, fee_ppm: int) -> None:
        self.db = db
        self.clock = clock
        self.wallet = wallet
        self.fee_ppm = fee_ppm

    # ------------------------------------------------------------ merchants

    async def open(self, owner_id: int, name: object) -> MerchantView:
        checked = paycode.check_name(name)
        merchant = await self.db.write(
            store.open_merchant,
            owner_id,
            checked,
            self.fee_ppm,
            self.wallet.currency,
            self.clock.now_ms(),
        )
        return MerchantView(
            merchant.id,
            merchant.name,
            self.wallet.currency,
            merchant.fee_ppm,
            0,
            merchant.created_ms,
        )

    async def get(self, owner_id: int, merchant_id: int) -> MerchantView:
        merchant = await self.db.read(store.owned, merchant_id, owner_id)
        return (await self._views([merchant]))[0]

    async def mine(self, owner_id: int) -> list[MerchantView]:
        return await self._views(await self.db.read(store.merchants_of, owner_id))

    async def _views(self, merchants: list[store.Merchant]) -> list[MerchantView]:
        accounts = await self.db.read(ledger.accounts, [m.account_id for m in merchants])
        return [
            MerchantView(
                m.id,
                m.name,
                accounts[m.account_id].currency,
                m.fee_ppm,
                accounts[m.account_id].balance,
                m.created_ms,
            )
            for m in merchants
        ]

    # ------------------------------------------------------------ codes

    async def create_code(
        self,
        owner_id: int,
        merchant_id: int,
        amount: object,
        description: object,
        expires_in_s: object,
    ) -> CodeView:
        merchant = await self.db.read(store.owned, merchant_id, owner_id)
        spec = paycode.check_code(amount, description, expires_in_s)
        token = paycode.make_token(secrets.token_bytes(paycode.TOKEN_BYTES))
        code = await self.db.write(
            store.create_code, merchant.id, token, spec, self.wallet.currency, self.clock.now_ms()
        )
        return _code_view(code)

    async def qr_png(self, owner_id: int, merchant_id: int, code_id: int) -> bytes:
        await self.db.read(store.owned, merchant_id, owner_id)
        code = await self.db.read(store.code, code_id, merchant_id)
        if code is None:
            raise NotFound("code_not_found", "No such payment code of this merchant.")
        return await asyncio.to_thread(render_qr, paycode.payment_uri(code.token))

    async def show_code(self, token: str) -> PayCodeView:
        found = await self.db.read(store.code_by_token, paycode.parse_code(token))
        if found is None:
            raise paycode.unknown_code()
        code, merchant = found
        state = "open"
        if code.paid_id is not None:
            state = "paid"
        elif code.expires_ms is not None and self.clock.now_ms() >= code.expires_ms:
            state = "expired"
        return PayCodeView(
            code.token,
            merchant.id,
            merchant.name,
            "dynamic" if code.dynamic else "static",
            code.amount,
            code.currency,
            code.description,
            code.expires_ms,
            state,
        )

    # ------------------------------------------------------------ paying

    async def pay(
        self, payer_id: int, key: object, code: object, amount: object, pin: str | None
    ) -> PaymentView:
        """Pay a code from the wallet. The code, the rules and the balance are checked again
        inside the payment's transaction (the code's row locked), so a dynamic code is paid
        once however many payers race for it."""
        check_key(key)
        token = paycode.parse_code(code)
        found = await self.db.read(store.code_by_token, token)
        if found is None:
            raise paycode.unknown_code()
        found_code, merchant = found
        paycode.check_payer(payer_id, merchant.owner_id)
        value, _currency = self.wallet.check_amount(
            paycode.payment_amount(found_code, amount), found_code.currency
        )
        await self.wallet.authorize(payer_id, value, pin)
        now = self.clock.now_ms()
        return await self.wallet.once(
            payer_id,
            key,
            fingerprint("merchant.pay", token, amount),
            lambda: self._pay(payer_id, token, amount, now),
            PaymentView,
        )

    def _pay(
        self, payer_id: int, token: str, given: object, now: int
    ) -> Op[tuple[PaymentView, Sent]]:
        found = yield from store.code_by_token(token, lock=True)
        if found is None:
            raise paycode.unknown_code()
        code, merchant = found
        paycode.check_payer(payer_id, merchant.owner_id)
        value = paycode.payment_amount(code, given)
        paycode.check_payable(code, now)
        payer = yield from wallet_store.spend(payer_id, value, now, self.wallet.limits)
        split = paycode.split(value, merchant.fee_ppm)
        ref = f"merchant:{merchant.id}"
        requests = [
            Request(
                payer.account_id, merchant.account_id, value, code.currency, "merchant_pay", ref=ref
            )
        ]
        if split.fee:
            fees = self.wallet.system_account(ledger.FEES, code.currency)
            requests.append(
                Request(
                    merchant.account_id, fees, split.fee, code.currency, "merchant_fee", ref=ref
                )
            )
        transfers, loaded = yield from ledger.apply(requests, now)
        payment = yield from store.add_payment(
            merchant.id, payer_id, code.id, value, code.currency, split.fee, transfers[0].id, now
        )
        if code.dynamic:
            yield from store.mark_paid(code.id, payment.id)
        view = _payment_view(payment, merchant)
        sent = yield from self._notify(
            loaded, transfers, [payer_id, merchant.owner_id], "merchant.paid", view, now
        )
        return view, sent

    def _notify(
        self,
        loaded: ledger.Loaded,
        transfers: list[Transfer],
        user_ids: list[int],
        kind: str,
        view: msgspec.Struct,
        now: int,
    ) -> Op[Sent]:
        notices = wallet_store.movement_notices(loaded, transfers)
        notices.append(Notice(user_ids, kind, msgspec.to_builtins(view)))
        sent = yield from events.notify(notices, now)
        return sent

    # ------------------------------------------------------------ refunds

    async def refund(
        self, owner_id: int, key: object, merchant_id: int, payment_id: int, amount: object
    ) -> RefundView:
        """Give back all or part of a payment (never more than was paid, over all refunds),
        with the matching share of the platform's fee returned to the merchant."""
        merchant = await self.db.read(store.owned, merchant_id, owner_id)
        found = await self.db.read(store.payment, payment_id, merchant.id)
        if found is None:
            raise payment_not_found()
        check_key(key)
        self.wallet.check_amount(amount, found.currency)
        now = self.clock.now_ms()
        return await self.wallet.once(
            owner_id,
            key,
            fingerprint("merchant.refund", merchant_id, payment_id, amount),
            lambda: self._refund(owner_id, merchant_id, payment_id, amount, now),
            RefundView,
        )

    def _refund(
        self, owner_id: int, merchant_id: int, payment_id: int, amount: object, now: int
    ) -> Op[tuple[RefundView, Sent]]:
        merchant = yield from store.owned(merchant_id, owner_id)
        payment = yield from store.payment(payment_id, merchant.id, lock=True)
        if payment is None:
            raise payment_not_found()
        value = paycode.check_refund(amount, payment.amount, payment.refunded)
        back = paycode.fee_back(payment.fee, payment.amount, payment.refunded, value)
        payer = yield from wallet_store.wallet(payment.payer_id)
        if payer is None:  # a payer always has a wallet: the payment came out of it
            raise Invalid("payer_has_no_wallet", "The payer has no wallet to refund to.")
        ref = f"merchant_payment:{payment.id}"
        requests = []
        if back:
            fees = self.wallet.system_account(ledger.FEES, payment.currency)
            requests.append(
                Request(
                    fees,
                    merchant.account_id,
                    back,
                    payment.currency,
                    "merchant_fee_refund",
                    ref=ref,
                )
            )
        requests.append(
            Request(
                merchant.account_id,
                payer.account_id,
                value,
                payment.currency,
                "merchant_refund",
                ref=ref,
            )
        )
        transfers, loaded = yield from ledger.apply(requests, now)
        refund = yield from store.add_refund(payment.id, value, back, transfers[-1].id, now)
        refunded = payment.refunded + value
        view = RefundView(
            refund.id,
            payment.id,
            merchant.id,
            payment.payer_id,
            value,
            payment.currency,
            back,
            refunded,
            paycode.refundable(payment.amount, refunded),
            refund.transfer_id,
            now,
        )
        sent = yield from self._notify(
            loaded, transfers, [payment.payer_id, owner_id], "merchant.refunded", view, now
        )
        return view, sent

    # ------------------------------------------------------------ the owner's statement

    async def statement(
        self, owner_id: int, merchant_id: int, before: int | None, limit: int
    ) -> MerchantStatement:
        check_limit(limit)
        merchant = await self.db.read(store.owned, merchant_id, owner_id)
        rows = await self.db.read(store.statement, merchant.id, before, limit)
        entries = [_entry(e) for e in rows]
        view = (await self._views([merchant]))[0]
        return MerchantStatement(
            view, entries, entries[-1].transfer_id if len(entries) == limit else None
        )
