"""Red packets: send one into a chat, claim a share, see who got what, and the expiry that
returns what nobody claimed.

Both hot paths are set-wise. Sends queued together run through ``store.redpackets.send_many``
in one transaction. A claim storm costs little: claims go straight to the group-commit writer,
whose batches run through ``store.redpackets.claim_many`` (one packet read and one ledger apply
per batch), and once a packet is known to be finished or expired — states it never leaves —
later claims are answered from a read, without a write.
"""

from __future__ import annotations

import random

import msgspec

from wanglai.domain import redpacket as rules
from wanglai.domain.clock import Clock
from wanglai.domain.errors import NotFound, WanglaiError
from wanglai.domain.idempotency import check_key, fingerprint
from wanglai.domain.limits import SpendLimits
from wanglai.domain.redpacket import Claim, PacketLimits
from wanglai.services.messaging import MessagingService
from wanglai.services.wallet import WalletService
from wanglai.store import ledger
from wanglai.store import redpackets as store
from wanglai.store.database import Database


class ClaimView(msgspec.Struct):
    user: int
    amount: int
    at: int


class PacketView(msgspec.Struct):
    id: int
    conv: int
    sender: int
    kind: str
    """``single`` (one-to-one chat), ``lucky`` or ``equal``."""
    amount: int
    currency: str
    shares: int
    greeting: str
    state: str
    """``open``, ``finished`` (every share claimed) or ``expired`` (the rest went back)."""
    claimed_count: int
    claimed_amount: int
    claims: list[ClaimView]
    """In the order they were claimed."""
    luckiest: int | None
    """Who got most, once a lucky packet is finished or expired."""
    mine: ClaimView | None
    """Your own claim, if you made one."""
    created_at: int
    expires_at: int
    msg_seq: int
    """The packet's card in the conversation."""


class ClaimResult(msgspec.Struct):
    packet: int
    claim: ClaimView
    new: bool
    """False when you had claimed this packet before: that claim, not a second share."""
    state: str
    claimed_count: int
    shares: int


def claim_view(c: Claim) -> ClaimView:
    return ClaimView(c.user_id, c.amount, c.at)


def packet_view(row: store.PacketRow, claims: list[Claim], viewer: int) -> PacketView:
    pairs = [(c.user_id, c.amount) for c in claims]
    mine = next((c for c in claims if c.user_id == viewer), None)
    return PacketView(
        id=row.id,
        conv=row.conv_id,
        sender=row.sender_id,
        kind=row.kind,
        amount=row.amount,
        currency=row.currency,
        shares=row.shares,
        greeting=row.greeting,
        state=row.state,
        claimed_count=row.claimed_count,
        claimed_amount=row.claimed_amount,
        claims=[claim_view(c) for c in claims],
        luckiest=rules.best_luck(row.kind, row.state, pairs),
        mine=None if mine is None else claim_view(mine),
        created_at=row.created_ms,
        expires_at=row.expires_ms,
        msg_seq=row.msg_seq,
    )


class RedPacketService:
    CLOSED_MEMORY = 100_000
    """How many finished or expired packets are remembered to refuse claims without a write."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        wallet: WalletService,
        messaging: MessagingService,
        limits: PacketLimits | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.wallet = wallet
        self.messaging = messaging
        self.limits = limits or PacketLimits()
        self.rng = rng or random.SystemRandom()
        self._closed: dict[int, str] = {}
        """Packet id -> finished or expired: states a packet never leaves, so a stale entry
        cannot exist, even with other processes claiming too."""

    @property
    def spend_limits(self) -> SpendLimits:
        return self.wallet.limits

    async def send(
        self,
        user_id: int,
        key: object,
        conv_id: int,
        kind: str,
        amount: object,
        shares: int | None = None,
        greeting: object = None,
        pin: str | None = None,
    ) -> PacketView:
        """Send a red packet into a chat the sender is in. The limits are checked and the PIN
        asked before anything is written; the shares are drawn now."""
        idem_key = check_key(key)
        value, currency = self.wallet.check_amount(amount, None)
        text = rules.check_greeting(greeting)
        count = shares if shares is not None else 1 if kind == rules.SINGLE else 0
        known = 0 < conv_id < 2**62  # ids are 64-bit: a bigger number names nothing
        if not known:
            raise NotFound("conversation_not_found", "No such conversation.")
        payer, facts = await self.db.read_point(store.sender_facts, conv_id, user_id)
        if facts is None:
            raise NotFound("conversation_not_found", "No such conversation.")
        rules.check_packet(kind, value, count, facts[0], facts[1], self.limits)
        await self.wallet.authorize_wallet(payer, user_id, value, pin)
        item = store.NewPacket(
            user_id,
            conv_id,
            kind,
            value,
            currency,
            tuple(rules.split(kind, value, count, self.rng)),
            text,
            self.wallet.system_account(ledger.REDPACKET_ESCROW, currency),
            self.limits,
            self.spend_limits,
            self.clock.now_ms(),
            idem_key,
            fingerprint("redpacket.send", conv_id, kind, value, count, text),
        )
        # sends that arrive together are made in one set-wise batch (store.send_many)
        done = await self.db.write(store.send, item)
        if isinstance(done, store.Replayed):
            # a retry is answered from the idempotency record and pushes nothing
            return packet_view(done.packet, [], user_id)
        self.wallet.publish(done.sent)
        # the card's event comes after the movement event in the sender's log
        self.messaging.publish("message", done.card)
        return packet_view(done.packet, [], user_id)

    async def claim(self, user_id: int, packet_id: int) -> ClaimResult:
        """Take the next share of a packet; a second claim answers with the first."""
        if packet_id in self._closed:
            return await self._claim_closed(user_id, packet_id)
        escrow = self.wallet.system_account(ledger.REDPACKET_ESCROW)
        request = store.ClaimRequest(packet_id, user_id, escrow, self.clock.now_ms())
        try:
            done = await self.db.write(store.claim, request)
        except WanglaiError as refused:
            if refused.code == "packet_empty":
                self._remember(packet_id, rules.FINISHED)
            elif refused.code == "packet_expired":
                self._remember(packet_id, rules.EXPIRED)
            raise
        if done.state != rules.OPEN:
            self._remember(packet_id, done.state)
        self.wallet.publish(done.sent)
        return ClaimResult(
            packet_id, claim_view(done.claim), done.new, done.state, done.claimed_count, done.shares
        )

    async def _claim_closed(self, user_id: int, packet_id: int) -> ClaimResult:
        found = await self.db.read_point(store.claim_of, packet_id, user_id)
        if found is None:
            raise rules.not_found()
        row, mine = found
        if mine is None:
            raise rules.empty() if row.state == rules.FINISHED else rules.expired()
        return ClaimResult(
            packet_id, claim_view(mine), False, row.state, row.claimed_count, row.shares
        )

    def _remember(self, packet_id: int, state: str) -> None:
        if len(self._closed) >= self.CLOSED_MEMORY:
            del self._closed[next(iter(self._closed))]
        self._closed[packet_id] = state

    async def get(self, user_id: int, packet_id: int) -> PacketView:
        found = await self.db.read(store.packet_for, packet_id, user_id)
        if found is None:
            raise rules.not_found()
        row, claims = found
        return packet_view(row, claims, user_id)

    async def expire(self, batch: int = 500) -> int:
        """Close every packet whose time is up and return what nobody claimed to its sender;
        returns how many packets were closed."""
        escrow = self.wallet.system_account(ledger.REDPACKET_ESCROW)
        closed = 0
        while True:
            done = await self.db.write(store.expire_due, escrow, self.clock.now_ms(), batch)
            for expired in done:
                self._remember(expired.packet_id, rules.EXPIRED)
                self.wallet.publish(expired.sent)
            closed += len(done)
            if len(done) < batch:
                return closed
