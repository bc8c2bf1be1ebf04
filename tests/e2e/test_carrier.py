"""The carrier end to end: a real server process on the ``smpp`` channel, bound to the test
SMSC (the npm ``smpp`` package, not ours), used through the Python SDK. Login codes, a text
to a number that is not on Wanglai, its receipt, the phone's reply, STOP, and the number
joining later all cross real sockets and the SMPP session."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wanglai.client import ApiError, Client

from ..smsc.harness import TestSmsc
from ..waiting import until
from .conftest import Server

SOURCE = "10690"
FRIEND = "+8613912340000"


@pytest.fixture
def server(tmp_path: Path, smsc: TestSmsc) -> Iterator[Server]:
    srv = Server(tmp_path / "data")
    srv.env.update(
        WANGLAI_SMS_CHANNEL="smpp",
        WANGLAI_SMPP_PORT=str(smsc.port),
        WANGLAI_SMPP_SYSTEM_ID=smsc.system_id,
        WANGLAI_SMPP_PASSWORD=smsc.password,
        WANGLAI_SMPP_SOURCE=SOURCE,
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def texts_to(smsc: TestSmsc, phone: str) -> list[str]:
    return [s["text"] for s in smsc.submits() if s["dest"] == phone.removeprefix("+")]


async def login(server: Server, smsc: TestSmsc, phone: str) -> Client:
    client = Client(server.base_url)
    before = len(texts_to(smsc, phone))
    await client.request_code(phone)
    sent = texts_to(smsc, phone)
    assert len(sent) == before + 1, "the code went out through the SMSC before the answer"
    code = re.search(r"code is (\d+)", sent[-1])
    assert code is not None, sent[-1]
    await client.login(phone, code.group(1), "e2e")
    return client


async def test_a_text_to_a_number_off_wanglai_and_the_reply(server: Server, smsc: TestSmsc) -> None:
    alice = await login(server, smsc, "+8613800000001")
    await alice.update_me(name="Alice")
    conv = await alice.open_number(FRIEND)
    sent = await alice.send(conv, "dinner at 7?")
    await until(lambda: texts_to(smsc, FRIEND))
    [text] = texts_to(smsc, FRIEND)
    assert text.startswith("Alice on Wanglai: dinner at 7?") and "STOP" in text
    [submit] = [s for s in smsc.submits() if s["dest"] == FRIEND.removeprefix("+")]
    assert submit["source"] == SOURCE
    # the operator's receipt, matched to the SMSC's message id: "delivered as SMS"
    assert smsc.receipt(submit["message_id"]) == 1

    async def state() -> str | None:
        [message] = [m for m in await alice.history(conv) if m.seq == sent.seq]
        return message.sms

    deadline = time.monotonic() + 15
    while await state() != "delivered":
        assert time.monotonic() < deadline, await state()
        await asyncio.sleep(0.1)
    # the phone replies to the platform's number: it lands in the same conversation
    assert smsc.deliver(FRIEND.removeprefix("+"), b"yes, see you", dest=SOURCE) == 1
    replies: list[str] = []

    async def reply_arrived() -> bool:
        replies[:] = [str(m.body.get("text")) for m in await alice.history(conv)]
        return "yes, see you" in replies

    deadline = time.monotonic() + 15
    while not await reply_arrived():
        assert time.monotonic() < deadline, replies
        await asyncio.sleep(0.1)
    # STOP: one confirmation, then nothing more is texted
    smsc.deliver(FRIEND.removeprefix("+"), b"STOP", dest=SOURCE)
    await until(lambda: len(texts_to(smsc, FRIEND)) == 2)
    with pytest.raises(ApiError) as stopped:
        deadline = time.monotonic() + 15
        while True:  # the STOP is handled moments after the SMSC delivered it
            await alice.send(conv, "still there?")
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    assert stopped.value.code == "sms_opted_out"
    # the number joins (its code comes by SMS too): the conversation and history are there
    friend = await login(server, smsc, FRIEND)
    assert friend.user_id is not None
    history = [str(m.body.get("text")) for m in await friend.history(conv)]
    assert "dinner at 7?" in history and "yes, see you" in history
    await alice.close()
    await friend.close()
