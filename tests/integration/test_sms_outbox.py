"""The SMS outbox and its sender, on both databases, through a recording channel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

from wanglai.carrier.sms import ConsoleChannel, Events, Outgoing, Refused, Unavailable
from wanglai.services.sms import Outcome, SmsService
from wanglai.store import sms as store
from wanglai.store.sql import Op, execute

from ..waiting import until
from .conftest import World

PHONE = "+8613900000001"


async def state_of(world: World, sms_id: int) -> store.Sms:
    row = await world.container.db.read(store.get, sms_id)
    assert row is not None
    return row


async def test_an_sms_enqueued_in_the_callers_transaction_is_submitted_after_wake(
    world: World,
) -> None:
    def op(now: int) -> Op[int]:
        yield from execute("UPDATE users SET name = name WHERE id = 0")  # the caller's own work
        return (yield from store.enqueue(PHONE, "hello", "chat", now, ref=7, sender_id=3))

    sms_id = await world.container.db.write(op, world.clock.now_ms())
    world.container.sms.wake()
    await until(lambda: (PHONE, "hello") in world.sms.sent)
    row = await _settled(world, sms_id, store.SUBMITTED)
    assert (row.purpose, row.ref, row.sender_id, row.attempts) == ("chat", 7, 3, 1)
    assert row.smsc_id is not None and row.smsc_id.startswith(f"rec-{sms_id}-")
    assert world.sms.sent.count((PHONE, "hello")) == 1


async def _settled(world: World, sms_id: int, state: str) -> store.Sms:
    for _ in range(500):
        row = await state_of(world, sms_id)
        if row.state == state:
            return row
        await asyncio.sleep(0.01)
    raise AssertionError(f"sms {sms_id} is {row.state}, not {state}")


async def test_an_sms_rolled_back_with_its_caller_is_never_sent(world: World) -> None:
    def op(now: int) -> Op[int]:
        yield from store.enqueue(PHONE, "never", "chat", now)
        raise ValueError("the caller's write fails")

    with contextlib.suppress(ValueError):
        await world.container.db.write(op, world.clock.now_ms())
    world.container.sms.wake()
    sent = await world.container.sms.send(PHONE, "after", "chat")
    await _settled(world, sent, store.SUBMITTED)
    assert (PHONE, "never") not in world.sms.sent
    counts = await world.container.db.read(store.count_by_state)
    assert counts == {"submitted": 1}


async def test_receipts_finish_the_sms_once_and_fire_on_outcome(world: World) -> None:
    outcomes: list[Outcome] = []

    async def seen(outcome: Outcome) -> None:
        outcomes.append(outcome)

    world.container.sms.on_outcome(seen)
    good = await world.container.sms.send(PHONE, "one", "chat", ref=11)
    bad = await world.container.sms.send(PHONE, "two", "fallback", ref=12)
    good_row = await _settled(world, good, store.SUBMITTED)
    bad_row = await _settled(world, bad, store.SUBMITTED)
    assert good_row.smsc_id and bad_row.smsc_id
    world.sms.receipt(good_row.smsc_id, delivered=True)
    world.sms.receipt(bad_row.smsc_id, delivered=False, error="UNDELIV err:001")
    world.sms.receipt(good_row.smsc_id, delivered=False)  # repeated: changes nothing
    world.sms.receipt("no-such-id", delivered=True)  # unknown: changes nothing
    await until(lambda: len(outcomes) == 2)
    assert sorted((o.outbox_id, o.purpose, o.ref, o.msisdn, o.state) for o in outcomes) == [
        (good, "chat", 11, PHONE, "delivered"),
        (bad, "fallback", 12, PHONE, "failed"),
    ]
    assert (await state_of(world, good)).state == store.DELIVERED
    failed = await state_of(world, bad)
    assert (failed.state, failed.error) == (store.FAILED, "UNDELIV err:001")
    await asyncio.sleep(0.1)
    assert len(outcomes) == 2


async def test_a_refused_sms_is_rejected_and_a_unavailable_one_is_tried_again(
    world: World,
) -> None:
    channel = world.sms
    outcomes: list[Outcome] = []

    async def seen(outcome: Outcome) -> None:
        outcomes.append(outcome)

    world.container.sms.on_outcome(seen)
    failures: list[Exception] = [Refused("smsc_0x0b"), Unavailable("not_bound")]
    original = channel.submit

    async def flaky(sms: Outgoing) -> Sequence[str]:
        if failures:
            raise failures.pop(0)
        return await original(sms)

    channel.submit = flaky  # type: ignore[method-assign]
    rejected = await world.container.sms.send(PHONE, "bad number", "chat")
    retried = await world.container.sms.send(PHONE, "later", "chat")
    row = await _settled(world, rejected, store.REJECTED)
    assert row.error == "smsc_0x0b"
    again = await _settled(world, retried, store.SUBMITTED)
    assert again.attempts == 2
    assert channel.sent == [(PHONE, "later")]
    await until(lambda: len(outcomes) == 1)
    assert outcomes[0].state == "rejected" and outcomes[0].outbox_id == rejected


async def test_a_claim_whose_process_died_is_submitted_again_after_its_lease(
    world: World,
) -> None:
    """A server that claimed SMS and died (lease lapsed) leaves them to the next one; an SMS
    whose lease still runs is left alone."""
    db = world.container.db
    lease = 60_000

    def crashed(now: int) -> Op[tuple[int, int]]:
        # a dead server's claim, its lease lapsed; a live server's claim, its lease running
        lost = yield from store.enqueue(PHONE, "lost in a crash", "chat", now)
        held = yield from store.enqueue(PHONE, "held by a live server", "chat", now)
        claim = "UPDATE sms_outbox SET state = 'sending', attempts = 1, next_ms = ? WHERE id = ?"
        yield from execute(claim, now - 1, lost)
        yield from execute(claim, now + lease, held)
        return lost, held

    lost, held = await db.write(crashed, world.clock.now_ms())
    world.container.sms.wake()
    row = await _settled(world, lost, store.SUBMITTED)
    assert row.attempts == 2
    assert (await state_of(world, held)).state == store.SENDING
    assert world.sms.sent == [(PHONE, "lost in a crash")]
    world.clock.advance(61)
    world.container.sms.wake()
    await _settled(world, held, store.SUBMITTED)
    assert world.sms.sent.count((PHONE, "held by a live server")) == 1


async def test_a_login_code_is_out_when_request_code_returns(world: World) -> None:
    await world.container.accounts.request_code(PHONE, "10.0.0.1")
    assert world.sms.last_code(PHONE)  # no waiting: the first attempt happened before
    counts = await world.container.db.read(store.count_by_state)
    assert counts == {"submitted": 1}


async def test_console_channel_writes_sms_log(world: World, tmp_path: Path) -> None:
    log = tmp_path / "console" / "sms.log"
    service = SmsService(world.container.db, world.clock, ConsoleChannel(log))
    await service.start()
    try:
        sms_id = await service.send(PHONE, "Your Wanglai code is 123456.", "code")
    finally:
        await service.close()
    assert f"to={PHONE} Your Wanglai code is 123456." in log.read_text()
    row = await state_of(world, sms_id)
    assert (row.state, row.smsc_id) == (store.SUBMITTED, f"console-{sms_id}")


async def test_inbound_texts_reach_every_handler(world: World) -> None:
    from wanglai.services.sms import Inbound

    got: list[tuple[str, Inbound]] = []

    async def first(message: Inbound) -> None:
        got.append(("first", message))

    async def broken(message: Inbound) -> None:
        raise RuntimeError("a handler that fails does not stop the others")

    async def second(message: Inbound) -> None:
        got.append(("second", message))

    for handler in (first, broken, second):
        world.container.sms.on_inbound(handler)
    message = Inbound(PHONE, "10690", "STOP", world.clock.now_ms())
    world.sms.inbound(message)
    await until(lambda: len(got) == 2)
    assert got == [("first", message), ("second", message)]


def _events_type_is_the_service(service: SmsService) -> Events:
    return service  # the service is what channels report to (checked by mypy)


async def test_admin_sms_send_queues_test_sms_and_status_counts_them(
    world: World, tmp_path: Path
) -> None:
    from .test_ledger_cli import invoke

    done = await invoke(world, tmp_path, "admin", "sms", "send", "--to", PHONE, "--text",
                        "link test {n}", "--count", "3")  # fmt: skip
    assert done.exit_code == 0, done.output
    world.clock.advance(time.time() - world.clock.now_ms() / 1000 + 1)  # the CLI's clock is real
    world.container.sms.wake()
    await until(lambda: len(world.sms.sent) == 3)
    assert world.sms.sent == [(PHONE, f"link test {n}") for n in (1, 2, 3)]
    for bad in (["--to", "12", "--text", "x"], ["--to", PHONE, "--text", "x", "--count", "0"]):
        refused = await invoke(world, tmp_path, "admin", "sms", "send", *bad)
        assert refused.exit_code == 1
    status = await invoke(world, tmp_path, "admin", "sms", "status", "--json")
    counts = json.loads(status.output)
    assert sum(counts.values()) == 3 and set(counts) <= {"sending", "submitted"}
