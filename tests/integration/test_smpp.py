"""The SMPP channel against a third-party SMSC (tests/smsc: the npm ``smpp`` package), with
the outbox on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wanglai.app import Container
from wanglai.bus.local import LocalBus
from wanglai.carrier.smpp import SmppChannel
from wanglai.domain import sms_text
from wanglai.services.sms import Inbound, Outcome
from wanglai.settings import Settings
from wanglai.store import sms as store

from ..smsc.harness import QUEUE_FULL, THROTTLED, TestSmsc
from ..waiting import until

PHONE = "+8613900000001"
SOURCE = "10690"


@dataclass
class Carrier:
    container: Container
    smsc: TestSmsc
    inbound: list[Inbound] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def channel(self) -> SmppChannel:
        channel = self.container.sms_channel
        assert isinstance(channel, SmppChannel)
        return channel

    async def send(self, text: str, purpose: str = "chat", to: str = PHONE) -> int:
        return await self.container.sms.send(to, text, purpose)

    async def row(self, sms_id: int) -> store.Sms:
        found = await self.container.db.read(store.get, sms_id)
        assert found is not None
        return found


@pytest.fixture
async def carrier(db_url: str, tmp_path: Path, smsc: TestSmsc) -> AsyncIterator[Carrier]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        code_pepper=b"t",
        sms_channel="smpp",
        smpp_port=smsc.port,
        smpp_system_id="wanglai",
        smpp_password="secret",
        smpp_source=SOURCE,
    )
    container = Container(settings, bus=LocalBus())
    await container.start()
    found = Carrier(container, smsc)

    async def inbound(message: Inbound) -> None:
        found.inbound.append(message)

    async def outcome(message: Outcome) -> None:
        found.outcomes.append(message)

    container.sms.on_inbound(inbound)
    container.sms.on_outcome(outcome)
    await until(lambda: found.channel.bound)
    try:
        yield found
    finally:
        await container.close()


async def settled(carrier: Carrier, *ids: int, state: str = store.SUBMITTED) -> list[store.Sms]:
    async def check() -> list[store.Sms]:
        return await carrier.container.db.read(store.by_ids, list(ids))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        rows = await check()
        if all(r.state == state for r in rows) and len(rows) == len(ids):
            return rows
        assert loop.time() < deadline, f"not all {state}: {[(r.id, r.state) for r in rows]}"
        await asyncio.sleep(0.02)


async def test_binds_and_submits_one_sms(carrier: Carrier) -> None:
    sms_id = await carrier.send("Hello from Wanglai")
    [row] = await settled(carrier, sms_id)
    [seen] = carrier.smsc.submits()
    assert seen["dest"] == PHONE.removeprefix("+") and seen["source"] == SOURCE
    assert (seen["data_coding"], seen["esm_class"], seen["udh"]) == (0, 0, "")
    assert seen["registered_delivery"] == 1
    assert seen["text"] == "Hello from Wanglai"
    assert row.smsc_id == seen["message_id"] and row.parts == 1
    assert carrier.smsc.state()["binds"] == 1


async def test_long_gsm_text_goes_as_concatenated_parts(carrier: Carrier) -> None:
    text = "Wanglai {ok} " + "x" * 140 + "€ end"  # extension chars take two septets each
    sms_id = await carrier.send(text)
    [row] = await settled(carrier, sms_id)
    seen = carrier.smsc.submits()
    assert len(seen) == row.parts == 2 == sms_text.count_parts(text)
    ref = f"{sms_id & 0xFF:02x}"
    # the SMSC lists the header's elements: IEI 0x00 (concatenation, 8-bit ref), length 3
    assert [s["udh"] for s in seen] == [f"0003{ref}0201", f"0003{ref}0202"]
    assert all(s["data_coding"] == 0 and s["esm_class"] & 0x40 for s in seen)
    assert "".join(s["text"] for s in seen) == text
    parts = await carrier.container.db.read(store.parts_of, sms_id)
    assert [p[1] for p in parts] == [s["message_id"] for s in seen]


async def test_unicode_text_goes_as_ucs2(carrier: Carrier) -> None:
    short = "往来: 你好 👋"
    long = "往来" * 40  # 80 UCS-2 units: two parts of at most 67
    first = await carrier.send(short)
    await settled(carrier, first)
    second = await carrier.send(long)
    await settled(carrier, second)
    seen = carrier.smsc.submits()
    assert [s["data_coding"] for s in seen] == [8, 8, 8]
    assert seen[0]["text"] == short and seen[0]["udh"] == ""
    assert "".join(s["text"] for s in seen[1:]) == long
    assert [len(s["text"]) for s in seen[1:]] == [67, 13]


async def test_receipts_mark_delivered_and_failed(carrier: Carrier) -> None:
    ok = await carrier.send("will arrive", purpose="fallback")
    bad = await carrier.send("will not")
    ok_row, bad_row = await settled(carrier, ok, bad)
    assert ok_row.smsc_id and bad_row.smsc_id
    assert carrier.smsc.receipt(ok_row.smsc_id, "DELIVRD") == 1
    assert carrier.smsc.receipt(bad_row.smsc_id, "UNDELIV", err="001", tlvs=True) == 1
    await settled(carrier, ok, state=store.DELIVERED)
    [failed] = await settled(carrier, bad, state=store.FAILED)
    assert failed.error == "UNDELIV err:001"
    await until(lambda: len(carrier.outcomes) == 2)
    assert {(o.outbox_id, o.purpose, o.state) for o in carrier.outcomes} == {
        (ok, "fallback", "delivered"),
        (bad, "chat", "failed"),
    }


async def test_a_long_sms_is_delivered_when_every_part_is(carrier: Carrier) -> None:
    sms_id = await carrier.send("y" * 200)
    await settled(carrier, sms_id)
    first, second = carrier.smsc.submits()
    carrier.smsc.receipt(first["message_id"], "DELIVRD", tlvs=True)
    await asyncio.sleep(0.3)
    assert (await carrier.row(sms_id)).state == store.SUBMITTED
    carrier.smsc.receipt(second["message_id"], "DELIVRD")
    await settled(carrier, sms_id, state=store.DELIVERED)


async def test_malformed_receipts_are_acknowledged_and_change_nothing(carrier: Carrier) -> None:
    sms_id = await carrier.send("receipts go wrong")
    [row] = await settled(carrier, sms_id)
    assert row.smsc_id
    carrier.smsc.receipt("", text="sub:001 dlvrd:001 stat:DELIVRD")  # no id
    carrier.smsc.receipt(row.smsc_id, text=f"id:{row.smsc_id} stat:GONEFISHING")  # no state
    carrier.smsc.receipt("not-ours-1", "DELIVRD")  # an id nobody sent
    carrier.smsc.receipt(row.smsc_id, text="\x00\xff garbage")
    carrier.smsc.receipt(row.smsc_id, "ACCEPTD")  # not final
    await asyncio.sleep(0.5)
    assert (await carrier.row(sms_id)).state == store.SUBMITTED
    assert carrier.outcomes == []
    state = carrier.smsc.state()
    assert (state["sessions"], state["binds"]) == (1, 1)  # the session survived them all
    carrier.smsc.receipt(row.smsc_id, "DELIVRD")
    await settled(carrier, sms_id, state=store.DELIVERED)


async def test_texts_from_phones_reach_the_inbound_handler(carrier: Carrier) -> None:
    smsc = carrier.smsc
    smsc.deliver("8613900000002", bytes(sms_text.encode("Reply {yes}", 0)[0].short_message))
    smsc.deliver("8613900000003", "你好 👋".encode("utf-16-be"), data_coding=8)
    halves = sms_text.encode("z" * 200 + " the end", ref=77)
    assert len(halves) == 2
    for part in reversed(halves):  # parts may arrive in any order
        smsc.deliver("8613900000004", part.short_message, esm_class=0x40, dest=SOURCE)
    await until(lambda: len(carrier.inbound) == 3)
    got = {(m.source, m.text) for m in carrier.inbound}
    assert got == {
        ("+8613900000002", "Reply {yes}"),
        ("+8613900000003", "你好 👋"),
        ("+8613900000004", "z" * 200 + " the end"),
    }
    assert [m.dest for m in carrier.inbound if m.source.endswith("4")] == [SOURCE]


@pytest.mark.parametrize("status", [THROTTLED, QUEUE_FULL])
async def test_throttling_slows_the_sender_and_loses_nothing(carrier: Carrier, status: int) -> None:
    carrier.smsc.throttle(6, status)
    ids = [await carrier.send(f"burst {i}") for i in range(12)]
    rows = await settled(carrier, *ids)
    texts = Counter(s["text"] for s in carrier.smsc.submits())
    assert texts == Counter(f"burst {i}" for i in range(12))  # each exactly once
    assert carrier.smsc.state()["throttled"] == 6
    assert carrier.channel.throttled == 6
    assert {r.smsc_id for r in rows} == {s["message_id"] for s in carrier.smsc.submits()}


async def test_smsc_restart_mid_stream_loses_nothing_and_doubles_only_what_was_in_doubt(
    carrier: Carrier,
) -> None:
    """The SMSC is killed (SIGKILL) and restarted while a batch is in flight. Submits it had
    not accepted are submitted again on the new session: none is lost. One it had stored in
    the instant before the kill, without its answer getting out, is in doubt and is sent again
    (at most a window's worth, and the outbox shows it with attempts > 1); nothing else is
    doubled."""
    carrier.smsc.delay(20)
    ids = [await carrier.send(f"batch {i}") for i in range(60)]
    await until(lambda: len(carrier.smsc.submits()) >= 10)
    carrier.smsc.restart()
    carrier.smsc.delay(0)
    rows = await settled(carrier, *ids)
    texts = Counter(s["text"] for s in carrier.smsc.submits())
    assert set(texts) == {f"batch {i}" for i in range(60)}  # none lost
    doubled = {text for text, n in texts.items() if n > 1}
    assert len(doubled) <= carrier.channel.window and max(texts.values()) <= 2
    attempts = {r.text: r.attempts for r in rows}
    assert all(attempts[text] > 1 for text in doubled)
    assert carrier.channel.binds >= 2
    last_id = {s["text"]: s["message_id"] for s in carrier.smsc.submits()}
    assert {r.smsc_id for r in rows} == set(last_id.values())


async def test_an_accepted_submit_whose_answer_was_lost_is_the_one_sent_twice(
    carrier: Carrier,
) -> None:
    """What cannot be guaranteed: the SMSC stored a submit but its answer never came (the
    connection dropped first). That SMS is in doubt and is submitted again (at least once);
    only such SMS are ever doubled, and the outbox shows them with attempts > 1."""
    carrier.smsc.mute(2)
    doubtful = [await carrier.send(f"in doubt {i}") for i in range(2)]
    await until(lambda: len(carrier.smsc.submits()) == 2)
    carrier.smsc.drop()
    clean = await carrier.send("after the cut")
    rows = await settled(carrier, *doubtful, clean)
    texts = Counter(s["text"] for s in carrier.smsc.submits())
    assert texts == Counter({"in doubt 0": 2, "in doubt 1": 2, "after the cut": 1})
    assert [r.attempts for r in rows] == [2, 2, 1]


async def test_a_login_code_goes_out_through_the_smsc(carrier: Carrier) -> None:
    accounts = carrier.container.accounts
    await accounts.request_code(PHONE, "10.0.0.1")
    [seen] = carrier.smsc.submits()  # out before request_code returned
    code = seen["text"].split("code is ")[1][:6]
    result = await accounts.login(PHONE, code, "phone")
    assert result.new_user


async def test_nothing_is_lost_while_the_bind_is_refused(
    db_url: str, tmp_path: Path, smsc: TestSmsc
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        sms_channel="smpp",
        smpp_port=smsc.port,
        smpp_system_id="wanglai",
        smpp_password="wrong",
        code_pepper=b"t",
    )
    container = Container(settings, bus=LocalBus())
    await container.start()
    try:
        sms_id = await container.sms.send(PHONE, "kept", "chat")
        await asyncio.sleep(0.5)
        row = await container.db.read(store.get, sms_id)
        assert row is not None and row.state in (store.QUEUED, store.SENDING)
        assert smsc.submits() == []
    finally:
        await container.close()
    # the operator fixes the password and restarts: the SMS kept in the outbox goes out once
    settings.smpp_password = "secret"
    container = Container(settings, bus=LocalBus())
    await container.start()
    try:
        container.sms.wake()
        await until(lambda: len(smsc.submits()) == 1)
        await asyncio.sleep(0.3)
        assert [s["text"] for s in smsc.submits()] == ["kept"]
    finally:
        await container.close()
