"""Services wired to a real database (SQLite and PostgreSQL) on a manual clock."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wanglai.app import Container
from wanglai.bus.local import Envelope, LocalBus
from wanglai.carrier.sms import Events, Inbound, Outgoing, Receipt
from wanglai.domain.clock import ManualClock
from wanglai.domain.ledger import Request
from wanglai.services.accounts import Session
from wanglai.settings import Settings
from wanglai.store import contacts as contact_store
from wanglai.store import ledger
from wanglai.store import wallet as wallet_store
from wanglai.store.sql import Op


class RecordingSms:
    """The SMS channel tests read codes from (the console channel is tested on its own).

    Accepts every SMS at once; ``receipt`` and ``inbound`` play the SMSC's side."""

    name = "recording"
    window = 4

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.submitted: list[Outgoing] = []
        self.events: Events | None = None

    async def start(self, events: Events) -> None:
        self.events = events

    async def close(self) -> None:
        return None

    async def submit(self, sms: Outgoing) -> Sequence[str]:
        self.sent.append((sms.msisdn, sms.text))
        self.submitted.append(sms)
        return (f"rec-{sms.id}-{len(self.submitted)}",)

    def receipt(self, smsc_id: str, delivered: bool = True, error: str = "") -> None:
        assert self.events is not None, "the SMS service has not started"
        self.events.receipt(Receipt(smsc_id, delivered, error))

    def inbound(self, message: Inbound) -> None:
        assert self.events is not None, "the SMS service has not started"
        self.events.inbound(message)

    def last_code(self, to: str) -> str:
        for number, text in reversed(self.sent):
            if number == to:
                match = re.search(r"\b(\d{6})\b", text)
                assert match is not None
                return match.group(1)
        raise AssertionError(f"no SMS to {to}")


class Delivered:
    """Collects what the bus delivered, per user, like a connection hub would."""

    def __init__(self) -> None:
        self.frames: list[Envelope] = []

    def __call__(self, envelopes: object) -> None:
        self.frames.extend(envelopes)  # type: ignore[arg-type]

    def for_user(self, user_id: int) -> list[bytes]:
        return [e.frame for e in self.frames if e.user_id == user_id and not e.close_device]


@dataclass
class World:
    container: Container
    clock: ManualClock
    sms: RecordingSms
    delivered: Delivered
    _next_phone: int = 13800138000

    async def user(self, name: str = "") -> Session:
        """A freshly registered, logged-in user with a new number."""
        self._next_phone += 1
        phone = f"+86{self._next_phone}"
        return await self.login(phone, name)

    async def befriend(self, user: int, *others: int) -> None:
        """Friendships written straight to the store, without friend events in anyone's log:
        the contacts service (and its events) has tests of its own."""

        def op(now: int) -> Op[None]:
            for other in others:
                yield from contact_store.befriend(user, other, now)

        await self.container.db.write(op, self.clock.now_ms())

    async def fund(self, user_id: int, amount: int, currency: str = "CNY") -> int:
        """Put money in a user's wallet as a bank top-up would (straight into the ledger, no
        funding order: the funding service has tests of its own); returns the account id."""
        wallet_service = self.container.wallet
        bank = wallet_service.system_account(ledger.BANK_CLEARING, currency)

        def op(now: int) -> Op[int]:
            found = yield from wallet_store.open_wallet(user_id, currency, now)
            request = Request(bank, found.account_id, amount, currency, "topup")
            yield from ledger.apply([request], now)
            return found.account_id

        return await self.container.db.write(op, self.clock.now_ms())

    async def login(self, phone: str, name: str = "", device: str = "test") -> Session:
        accounts = self.container.accounts
        await accounts.request_code(phone, f"10.0.{self._next_phone % 250}.1")
        result = await accounts.login(phone, self.sms.last_code(phone), device)
        session = Session(result.user.id, result.device_id)
        if name:
            await accounts.update_profile(session, name=name)
        return session


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with world_with(db_url, tmp_path) as made:
        yield made


@contextlib.asynccontextmanager
async def world_with(db_url: str, tmp_path: Path, **settings: Any) -> AsyncIterator[World]:
    """A started World on this database, with these settings changed (for a test module's own
    ``world``-like fixture)."""
    clock = ManualClock()
    sms = RecordingSms()
    config = Settings(
        data_dir=tmp_path, database_url=db_url, code_pepper=b"test-pepper", **settings
    )
    container = Container(config, clock=clock, bus=LocalBus(), sms=sms)
    await container.start()
    delivered = Delivered()
    container.bus.subscribe(delivered)
    try:
        yield World(container, clock, sms, delivered)
    finally:
        await container.close()
