"""The ledger store under a seeded random sequence of flows, on SQLite and PostgreSQL.

Moves, independent batches (``create_transfers``), linked chains that may fail midway, pending
transfers posted, voided, double-posted or timed out, red packets through escrow (send, claim,
expire) and merchant payments with refunds are interleaved at random. After every step the
stored sums of every account must equal an independent in-memory model (which also predicts
each refusal), and the ledger checker must find no breach. The sequence is seeded, so a failure
names a seed that replays it exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from wanglai.domain import redpacket
from wanglai.domain.errors import WanglaiError
from wanglai.domain.ledger import PENDING, POST, VOID, Request, Transfer
from wanglai.services.ledger_check import check_ledger
from wanglai.store import ledger
from wanglai.store import wallet as wallet_store
from wanglai.store.database import Database
from wanglai.store.sql import Op, scalar

from ..ledger_model import Model
from .conftest import World
from .ledger_flows import claim_packet, expire_packet, offer, send_packet, settle_offer

STEPS = 250


@dataclass
class Run:
    world: World
    rng: random.Random
    model: Model
    users: list[int]
    wallets: dict[int, int]
    """user id -> wallet account id."""
    bank: int
    escrow: int
    merchant: int
    pendings: list[int] = field(default_factory=list)
    packets: list[tuple[int, int]] = field(default_factory=list)
    """open packets: (packet id, sender user id)."""
    chats: list[tuple[int, int]] = field(default_factory=list)
    """open chat transfers: (chat id, pending id)."""
    settled: list[tuple[int, int]] = field(default_factory=list)
    paid: list[tuple[int, int]] = field(default_factory=list)
    """merchant payments: (payer account, amount not yet refunded)."""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.world.container.db

    def now(self) -> int:
        return self.world.clock.now_ms()

    async def next_id(self) -> int:
        return int(await self.db.read(_counter)) + 1

    def tally(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def wallet(self) -> int:
        return self.wallets[self.rng.choice(self.users)]

    def amount(self, account_id: int) -> int:
        """Mostly affordable, sometimes more than the account has."""
        room = max(self.model.available(account_id), 1)
        return self.rng.randint(1, room + room // 3 + 1)

    def some_pending(self) -> int:
        return self.rng.choice(self.pendings) if self.pendings else 10**9

    def random_request(self) -> Request:
        roll = self.rng.random()
        if roll < 0.3 and self.pendings:
            return Request(flags=self.rng.choice((POST, VOID)), pending_id=self.some_pending())
        debit = self.wallet() if roll < 0.85 else self.bank
        credit = self.rng.choice([*self.wallets.values(), self.merchant])
        if self.rng.random() < 0.4:
            timeout = self.rng.choice((None, 800, 2_500))
            return Request(
                debit, credit, self.amount(debit), "CNY", "hold", PENDING, timeout_ms=timeout
            )
        return Request(debit, credit, self.amount(debit), "CNY", "move")


def _counter() -> Op[int]:
    value = yield from scalar("SELECT value FROM ledger_counters WHERE name = 'transfer'")
    return int(value)


def _apply(requests: list[Request], now: int) -> Op[list[Transfer]]:
    transfers, _ = yield from ledger.apply(requests, now)
    return transfers


async def expect(run: Run, requests: list[Request], attempt: object) -> object | None:
    """Run ``attempt`` (an awaitable doing ``requests`` linked); the model says whether the
    store must accept or refuse it. Returns what it returned, or None when refused."""
    first = await run.next_id()
    accepted = run.model.accepts_linked(requests, first, run.now())
    try:
        result = await attempt  # type: ignore[misc]
    except WanglaiError as refused:
        assert not accepted, f"store refused ({refused.code}) what the model accepts: {requests}"
        run.tally("refused")
        return None
    assert accepted, f"store accepted what the model refuses: {requests}"
    return result


# ---------------------------------------------------------------- steps


async def step_move(run: Run) -> None:
    request = run.random_request()
    made = await expect(run, [request], run.db.write(_apply, [request], run.now()))
    if made and request.flags & PENDING:
        run.pendings.append(made[0].id)  # type: ignore[index]


async def step_linked(run: Run) -> None:
    requests = [run.random_request() for _ in range(run.rng.randint(2, 4))]
    made = await expect(run, requests, run.db.write(_apply, requests, run.now()))
    if made:
        run.tally("linked applied")
        run.pendings.extend(t.id for t in made if t.flags & PENDING)  # type: ignore[attr-defined]


async def step_batch(run: Run) -> None:
    requests = [run.random_request() for _ in range(run.rng.randint(2, 6))]
    first = await run.next_id()
    outcomes = await run.db.write(ledger.create_transfers, requests, run.now())
    for i, (request, outcome) in enumerate(zip(requests, outcomes, strict=True)):
        accepted = run.model.accepts(request, first + i, run.now())
        assert accepted == isinstance(outcome, Transfer), (request, outcome)
        if isinstance(outcome, Transfer) and outcome.flags & PENDING:
            run.pendings.append(outcome.id)
    run.tally("batch")


async def step_top_up(run: Run) -> None:
    wallet = run.wallet()
    request = Request(run.bank, wallet, run.rng.randint(1, 3_000), "CNY", "topup")
    await expect(run, [request], run.db.write(_apply, [request], run.now()))


async def step_send_packet(run: Run) -> None:
    sender = run.rng.choice(run.users)
    account = run.wallets[sender]
    shares = run.rng.randint(1, 4)
    amount = max(run.amount(account), shares)
    splits = redpacket.split(redpacket.LUCKY, amount, shares, run.rng)
    request = Request(account, run.escrow, amount, "CNY", "redpacket")
    packet = await expect(
        run, [request], run.db.write(send_packet, sender, account, run.escrow, splits, run.now())
    )
    if packet is not None:
        run.packets.append((int(packet), sender))  # type: ignore[call-overload]
        run.tally("packet sent")


async def step_claim_packet(run: Run) -> None:
    if not run.packets:
        return
    packet, _ = run.rng.choice(run.packets)
    user = run.rng.choice(run.users)
    account = run.wallets[user]
    first = await run.next_id()
    share = await run.db.write(claim_packet, packet, user, account, run.escrow, run.now())
    if share is not None:
        claim = Request(run.escrow, account, share, "CNY", "redpacket_claim")
        assert run.model.accepts(claim, first, run.now())
        run.tally("packet claimed")


async def step_expire_packet(run: Run) -> None:
    if not run.packets:
        return
    packet, sender = run.packets.pop(run.rng.randrange(len(run.packets)))
    account = run.wallets[sender]
    first = await run.next_id()
    left = await run.db.write(expire_packet, packet, account, run.escrow, run.now())
    if left:
        refund = Request(run.escrow, account, left, "CNY", "redpacket_refund")
        assert run.model.accepts(refund, first, run.now())
    run.tally("packet expired")


async def step_offer(run: Run) -> None:
    sender, receiver = run.rng.sample(run.users, 2)
    source = run.wallets[sender]
    amount = run.amount(source)
    timeout = run.rng.choice((600, 1_500, 4_000))
    request = Request(
        source, run.wallets[receiver], amount, "CNY", "chat_transfer", PENDING, timeout_ms=timeout
    )
    made = await expect(
        run,
        [request],
        run.db.write(
            offer, sender, receiver, source, run.wallets[receiver], amount, timeout, run.now()
        ),
    )
    if made is not None:
        chat, pending = made  # type: ignore[misc]
        run.chats.append((chat, pending))


async def step_settle_offer(run: Run) -> None:
    """Accept, decline or return an open chat transfer — or settle a settled one again, which
    must be refused (its pending transfer is resolved exactly once)."""
    again = bool(run.settled) and run.rng.random() < 0.25
    chats = run.settled if again else run.chats
    if not chats:
        return
    i = run.rng.randrange(len(chats))
    chat, pending = chats[i]
    outcome = run.rng.choice(("accepted", "accepted", "declined", "returned"))
    flags = POST if outcome == "accepted" else VOID
    request = Request(flags=flags, pending_id=pending)
    done = await expect(run, [request], run.db.write(settle_offer, chat, outcome, run.now()))
    if again:
        assert done is None, f"chat transfer {chat} settled twice"
        run.tally("settled twice refused")
    elif done is not None:
        run.settled.append(run.chats.pop(i))
    else:
        run.tally("accept after timeout refused")


async def step_pay_merchant(run: Run) -> None:
    payer = run.wallet()
    amount = run.amount(payer)
    request = Request(payer, run.merchant, amount, "CNY", "merchant_payment")
    if await expect(run, [request], run.db.write(_apply, [request], run.now())) is not None:
        run.paid.append((payer, amount))


async def step_refund(run: Run) -> None:
    """A full or partial refund from the merchant; refused if the merchant has paid out more
    than it holds."""
    if not run.paid:
        return
    i = run.rng.randrange(len(run.paid))
    payer, left = run.paid[i]
    amount = run.rng.randint(1, left)
    request = Request(run.merchant, payer, amount, "CNY", "merchant_refund")
    if await expect(run, [request], run.db.write(_apply, [request], run.now())) is not None:
        run.paid[i] = (payer, left - amount)
        if left == amount:
            run.paid.pop(i)
        run.tally("refund")


async def step_advance(run: Run) -> None:
    run.world.clock.advance(run.rng.choice((0.3, 1, 2.5)))


STEP_WEIGHTS = (
    (step_move, 6),
    (step_linked, 3),
    (step_batch, 3),
    (step_top_up, 2),
    (step_send_packet, 2),
    (step_claim_packet, 4),
    (step_expire_packet, 1),
    (step_offer, 3),
    (step_settle_offer, 3),
    (step_pay_merchant, 2),
    (step_refund, 2),
    (step_advance, 2),
)


async def assert_matches_model(run: Run) -> None:
    ids = sorted(run.model.sums)
    stored = await run.db.read(ledger.accounts, ids)
    for account_id in ids:
        a = stored[account_id]
        have = (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
        assert have == run.model.of(account_id), f"account {account_id}"


@pytest.mark.parametrize("seed", [3, 17])
async def test_random_flows_keep_every_invariant(world: World, seed: int) -> None:
    rng = random.Random(seed)
    users = [(await world.user()).user_id for _ in range(5)]
    wallets = {}
    for user in users:
        if rng.random() < 0.8:
            wallets[user] = await world.fund(user, rng.randint(100, 5_000))
        else:

            def open_wallet(now: int, user: int = user) -> Op[int]:
                found = yield from wallet_store.open_wallet(user, "CNY", now)
                return found.account_id

            wallets[user] = await world.container.db.write(open_wallet, world.clock.now_ms())

    def open_merchant(now: int) -> Op[int]:
        account = yield from ledger.open_account("merchant", 1, "wallet", "CNY", now)
        return account

    merchant = await world.container.db.write(open_merchant, world.clock.now_ms())
    everything = await world.container.db.read(ledger.all_accounts)
    run = Run(
        world,
        rng,
        Model(a for a, *_ in everything),
        users,
        wallets,
        world.container.wallet.system_account(ledger.BANK_CLEARING),
        world.container.wallet.system_account(ledger.REDPACKET_ESCROW),
        merchant,
    )
    steps = [s for s, _ in STEP_WEIGHTS]
    weights = [w for _, w in STEP_WEIGHTS]
    for n in range(STEPS):
        step = rng.choices(steps, weights)[0]
        await step(run)
        await assert_matches_model(run)
        if n % 30 == 29:
            report = await check_ledger(world.container.db)
            assert report.ok, (seed, n, report.breaches)

    report = await check_ledger(world.container.db)
    assert report.ok, (seed, report.breaches)
    assert all(r.checked for r in report.results), report.results
    # the sequence really exercised refusals, chains, packets and timeouts
    for what in (
        "refused",
        "linked applied",
        "batch",
        "packet claimed",
        "packet expired",
        "refund",
        "settled twice refused",
    ):
        assert run.counts.get(what, 0) > 0, (what, run.counts)
