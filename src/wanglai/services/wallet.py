"""The wallet: balances and statements, the payment PIN and limits, and what every money-moving
use case shares — authorising the payer, idempotency keys, and pushing the events of a movement.

Other money use cases (chat transfers, red packets, merchants, funding) take this service and
compose their own store operation with ``store.ledger.apply`` and ``store.wallet``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from wanglai.bus.local import Bus
from wanglai.domain import limits as spend_rules
from wanglai.domain import money
from wanglai.domain import pin as pin_rules
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Forbidden, Invalid
from wanglai.domain.idempotency import check_key
from wanglai.domain.ledger import Transfer, state_of
from wanglai.domain.statement import check_filter
from wanglai.services import frames
from wanglai.store import ledger
from wanglai.store import wallet as store
from wanglai.store.database import Database
from wanglai.store.events import Sent
from wanglai.store.sql import Op

V = TypeVar("V", bound=msgspec.Struct)


class TransferView(msgspec.Struct):
    """One ledger transfer as its owner sees it."""

    id: int
    kind: str
    amount: int
    currency: str
    direction: str
    """``in`` or ``out`` of the wallet whose statement this is."""
    state: str
    """``pending``, ``posted`` or ``voided`` (a post or void names its ``pending_id``)."""
    at: int
    pending_id: int | None = None
    ref: str | None = None
    expires_at: int | None = None


class BalanceView(msgspec.Struct):
    currency: str
    balance: int
    """Posted money in the wallet, in fen."""
    available: int
    """The balance less what pending payments (transfers awaiting acceptance, withdrawals)
    hold back: what may be spent now."""
    verified: bool
    pin_set: bool
    strangers: bool
    pin_free_limit: int
    limits: dict[str, int]


class StatementView(msgspec.Struct):
    transfers: list[TransferView]
    next_before: int | None
    """Pass as ``before`` for the next (older) page; null on the last page."""


def transfer_view(t: Transfer, account_id: int) -> TransferView:
    return TransferView(
        id=t.id,
        kind=t.kind,
        amount=t.amount,
        currency=t.currency,
        direction="out" if t.debit_id == account_id else "in",
        state=state_of(t),
        at=t.created_ms,
        pending_id=t.pending_id,
        ref=t.ref,
        expires_at=t.expires_ms,
    )


class WalletService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        bus: Bus,
        currency: str = money.DEFAULT_CURRENCY,
        limits: spend_rules.SpendLimits | None = None,
        pin_policy: pin_rules.PinPolicy | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus
        self.currency = currency
        self.limits = limits or spend_rules.SpendLimits()
        self.pin_policy = pin_policy or pin_rules.PinPolicy()
        # OWASP's argon2id minimum (19 MiB, 2 passes): about 20 ms a check on this machine.
        self.hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self.system: dict[tuple[str, str], int] = {}

    async def start(self) -> None:
        await self.db.write(ledger.ensure_system, list(money.CURRENCIES), self.clock.now_ms())
        self.system = await self.db.read(ledger.system_accounts)

    def system_account(self, name: str, currency: str | None = None) -> int:
        return self.system[(name, currency or self.currency)]

    # ------------------------------------------------------------ shared by money use cases

    def publish(self, sent: Sent) -> None:
        envelopes = frames.notice_envelopes(sent, self.clock.now_ms())
        if envelopes:
            self.bus.publish(envelopes)

    async def authorize(self, user_id: int, amount: int, pin: str | None) -> None:
        """Check the payer's PIN before a payment (unless the amount is within what they allow
        without one). A wrong PIN is counted; the fifth locks payments for three hours.

        The hash is checked off the event loop, outside any transaction; the payment's own
        transaction then checks the lock and the limits again (``store.wallet.spend``)."""
        found = await self.db.read_point(store.wallet, user_id)
        await self.authorize_wallet(found, user_id, amount, pin)

    async def authorize_wallet(
        self, found: store.Wallet | None, user_id: int, amount: int, pin: str | None
    ) -> None:
        """``authorize`` with the payer's wallet already read (by a use case that reads it
        together with its own facts, in one read)."""
        if found is None:
            raise store.ledger_empty()
        now = self.clock.now_ms()
        pin_rules.check_unlocked(found.locked_until_ms, now)
        if not spend_rules.needs_pin(amount, found.pin_free_limit):
            return
        if found.pin_hash is None:
            raise Forbidden("pin_not_set", "Set a payment PIN first (PUT /v1/wallet/pin).")
        if pin is None or pin == "":
            raise Invalid("pin_required", "This payment needs your 6-digit payment PIN.")
        if not await self._pin_matches(found.pin_hash, pin):
            await self._count_wrong_pin(user_id, now)
        if found.pin_failures:
            await self.db.write(store.pin_passed, user_id)

    async def _count_wrong_pin(self, user_id: int, now: int) -> NoReturn:
        """Count a wrong PIN and refuse: ``wrong_pin`` with the tries left, or
        ``payments_locked`` when this try was the last one."""
        failures = await self.db.write(store.pin_failed, user_id, now, self.pin_policy)
        if failures == 0:
            pin_rules.check_unlocked(now + self.pin_policy.lock_ms, now)
        raise pin_rules.wrong_pin(failures, self.pin_policy)

    async def _pin_matches(self, pin_hash: str, pin: str) -> bool:
        def check() -> bool:
            try:
                return bool(self.hasher.verify(pin_hash, pin))
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    async def once(
        self,
        user_id: int,
        key: object,
        fingerprint: str,
        run: Callable[[], Op[tuple[V, Sent]]],
        view: type[V],
    ) -> V:
        """Run a money-moving store operation at most once per idempotency key, then push its
        events; a retry gets the first result back and pushes nothing."""
        idem_key = check_key(key)
        encode = msgspec.json.Encoder().encode
        decoder = msgspec.json.Decoder(view)

        def encode_result(result: tuple[V, Sent]) -> str:
            return encode(result[0]).decode()

        def decode_result(text: str) -> tuple[V, Sent]:
            return decoder.decode(text), []

        (result, sent), _replayed = await self.db.write(
            store.idempotent,
            user_id,
            idem_key,
            fingerprint,
            run,
            encode_result,
            decode_result,
            self.clock.now_ms(),
        )
        self.publish(sent)
        assert isinstance(result, view)
        return result

    def check_amount(self, amount: object, currency: object | None) -> tuple[int, str]:
        value = money.amount(amount)
        code = self.currency if currency is None else money.currency(currency)
        return value, code

    # ------------------------------------------------------------ the owner's view

    async def balance(self, user_id: int) -> BalanceView:
        found = await self.db.read(store.wallet, user_id)
        verified = bool(found and found.verified)
        limits = self.limits
        per_payment, daily = spend_rules.caps(verified, limits)
        caps = {"per_payment": per_payment, "daily": daily, "pin_free_max": limits.pin_free_max}
        if found is None:
            return BalanceView(self.currency, 0, 0, False, False, False, 0, caps)
        accounts = await self.db.read(ledger.accounts, [found.account_id])
        account = accounts[found.account_id]
        return BalanceView(
            account.currency,
            account.balance,
            account.available,
            found.verified,
            found.pin_hash is not None,
            found.strangers,
            found.pin_free_limit,
            caps,
        )

    async def statement(
        self,
        user_id: int,
        before: int | None = None,
        limit: int = 50,
        kinds: Sequence[str] = (),
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> StatementView:
        """A page of the wallet's movements; ``kinds`` as given (repeated or comma-separated)."""
        f = check_filter(before, limit, kinds, since_ms, until_ms)
        found = await self.db.read(store.wallet, user_id)
        if found is None:
            return StatementView([], None)
        rows = await self.db.read(
            ledger.statement, found.account_id, f.before, f.limit, f.kinds, f.since_ms, f.until_ms
        )
        views = [transfer_view(t, found.account_id) for t in rows]
        return StatementView(views, views[-1].id if len(views) == f.limit else None)

    async def set_pin(self, user_id: int, pin: object, current: object = None) -> None:
        """Set the payment PIN; changing it needs the current one."""
        new_pin = pin_rules.check_format(pin)
        found = await self.db.read(store.wallet, user_id)
        now = self.clock.now_ms()
        if found is not None and found.pin_hash is not None:
            pin_rules.check_unlocked(found.locked_until_ms, now)
            if not isinstance(current, str) or not current:
                raise Invalid("pin_required", "Give your current PIN to change it.")
            if not await self._pin_matches(found.pin_hash, current):
                await self._count_wrong_pin(user_id, now)
        pin_hash = await asyncio.to_thread(self.hasher.hash, new_pin)
        await self.db.write(store.set_pin, user_id, pin_hash, self.currency, now)

    async def update_settings(
        self, user_id: int, strangers: bool | None, pin_free_limit: object | None
    ) -> BalanceView:
        limit = (
            None
            if pin_free_limit is None
            else spend_rules.check_pin_free_limit(pin_free_limit, self.limits)
        )
        await self.db.write(
            store.update_settings, user_id, strangers, limit, self.currency, self.clock.now_ms()
        )
        return await self.balance(user_id)

    async def set_verified(self, user_id: int, verified: bool) -> BalanceView:
        """Admin: record the outcome of a real-name check."""
        await self.db.write(
            store.set_verified, user_id, verified, self.currency, self.clock.now_ms()
        )
        return await self.balance(user_id)
