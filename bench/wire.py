"""Bytes on the wire for one chat message (the ``wire`` scenario of the load process).

Alice sends Bob a 20-character text over her WebSocket; counted are the TCP payload bytes of
the three frames it takes, after both sockets have said hello: Alice's send (up), the frame
that acknowledges it to her (down) and Bob's event (down). The sockets go through a relay on
loopback that counts what crosses it, once for each dialect: JSON objects, MessagePack objects
(``wanglai.msgpack``), and the compact arrays in JSON (``wanglai.compact``) and MessagePack
(``wanglai.compact.msgpack``). Everything WebSocket framing adds (client masking, headers)
is included; TCP/IP headers are not.

The server's usage records (what ``wanglai admin usage export`` writes for the operator) must
count the same bytes: the result's ``usage`` compares the relay's totals with the growth of
Alice's and Bob's exported records over the two runs (the server flushes every 0.2 s here).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from load import setup
from relay import Relay
from users import User, provision

TEXT = "twenty characters ok"
assert len(TEXT) == 20
DIALECTS = {
    "json": (),
    "msgpack": ("wanglai.msgpack",),
    "compact_json": ("wanglai.compact",),
    "compact_msgpack": ("wanglai.compact.msgpack",),
}
IDS = {protocols: f"w{i}" for i, protocols in enumerate(DIALECTS.values())}


async def one_message(
    relay: Relay, alice: User, bob: User, conv: int, protocols: tuple[str, ...]
) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{relay.port}/v1/ws"
    async with aiohttp.ClientSession() as http:
        wa = await http.ws_connect(url, headers=alice.auth, protocols=protocols, compress=0)
        wb = await http.ws_connect(url, headers=bob.auth, protocols=protocols, compress=0)
        assert wa.protocol == (protocols[0] if protocols else None), wa.protocol
        binary = "msgpack" in (wa.protocol or "")
        for ws in (wa, wb):
            await ws.receive()  # hello
        await asyncio.sleep(0.2)
        up0, down0 = relay.up, relay.down
        frame_id = IDS[protocols]  # one message per run, not a retry of the first
        frame: Any = {
            "t": "send",
            "id": frame_id,
            "conv": conv,
            "kind": "text",
            "body": {"text": TEXT},
        }
        if "compact" in (wa.protocol or ""):
            frame = ["s", frame_id, conv, TEXT]
        if binary:
            await wa.send_bytes(msgspec.msgpack.encode(frame))
        else:
            await wa.send_str(msgspec.json.encode(frame).decode())
        ack = await wa.receive(timeout=10)
        event = await wb.receive(timeout=10)
        await asyncio.sleep(0.2)
        up, down = relay.up - up0, relay.down - down0
        sizes = [len(m.data) for m in (ack, event)]
        await wa.close()
        await wb.close()
    return {"bytes": up + down, "up": up, "down": down, "frame_payloads_down": sizes}


async def exported_bytes(data_dir: str, phones: list[str]) -> tuple[int, int]:
    """Uplink and downlink bytes in the exported usage records of these numbers (today and
    yesterday, China time, in case the run crosses midnight)."""
    from wanglai.domain.clock import SystemClock
    from wanglai.domain.limits import day_of
    from wanglai.domain.usage import Sponsor, day_start_ms
    from wanglai.services.usage import UsageService
    from wanglai.store.database import connect

    db = connect(f"sqlite:///{Path(data_dir) / 'wanglai.db'}")
    await db.start()
    try:
        usage = UsageService(db, SystemClock(), Sponsor("", "", 0, 0))
        today = day_of(int(time.time() * 1000))
        up = down = 0
        msisdns = {phone.lstrip("+") for phone in phones}
        for day in (today - 1, today):
            date = time.strftime("%Y-%m-%d", time.gmtime((day_start_ms(day) + 8 * 3600_000) / 1000))
            for rec in json.loads(await usage.export(date, "json"))["records"]:
                if rec["servedMSISDN"] in msisdns:
                    up += rec["datavolumeFBCUplink"]
                    down += rec["datavolumeFBCDownlink"]
        return up, down
    finally:
        await db.close()


async def settled_usage(
    data_dir: str, phones: list[str], before: tuple[int, int], relay: Relay
) -> dict[str, Any]:
    """The records' growth since ``before``, once the server has flushed what the relay saw
    (waits up to 5 s; a mismatch is reported, not hidden)."""
    await relay.drained()
    deadline = time.monotonic() + 5
    while True:
        up, down = await exported_bytes(data_dir, phones)
        grown = (up - before[0], down - before[1])
        if grown == (relay.up, relay.down) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    return {
        "relay_up": relay.up,
        "relay_down": relay.down,
        "exported_up": grown[0],
        "exported_down": grown[1],
        "agree": grown == (relay.up, relay.down),
    }


async def wire(p: dict[str, Any]) -> dict[str, Any]:
    api, sms, _meter = setup(p)
    alice, bob = await provision(api, sms, 2, dm_anyone=True)
    conv = await api.call("POST", "/v1/conversations/direct", {"user_id": bob.id}, alice)
    assert isinstance(conv, dict)
    relay = Relay(int(p["base"].rsplit(":", 1)[1]))
    await relay.start()
    phones = [alice.phone, bob.phone]
    await asyncio.sleep(0.5)  # the server flushes the provisioning's usage
    before = await exported_bytes(p["data_dir"], phones)
    runs = {
        name: await one_message(relay, alice, bob, int(conv["id"]), protocols)
        for name, protocols in DIALECTS.items()
    }
    return {
        "payload_bytes": len(TEXT.encode()),
        **runs,
        "budget_bytes": 2 * len(TEXT.encode()) + 120,
        "usage": await settled_usage(p["data_dir"], phones, before, relay),
    }


SCENARIOS = {"wire": wire}
