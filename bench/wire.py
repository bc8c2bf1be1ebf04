"""Bytes on the wire for one chat message (the ``wire`` scenario of the load process).

Alice sends Bob a 20-character text over her WebSocket; counted are the TCP payload bytes of
the three frames it takes, after both sockets have said hello: Alice's send (up), the frame
that acknowledges it to her (down) and Bob's event (down). The sockets go through a relay on
loopback that counts what crosses it, once for each dialect: JSON objects, MessagePack objects
(``wanglai.msgpack``), and the compact arrays in JSON (``wanglai.compact``) and MessagePack
(``wanglai.compact.msgpack``). Everything WebSocket framing adds (client masking, headers)
is included; TCP/IP headers are not.
"""

from __future__ import annotations

import asyncio
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


async def wire(p: dict[str, Any]) -> dict[str, Any]:
    api, sms, _meter = setup(p)
    alice, bob = await provision(api, sms, 2, dm_anyone=True)
    conv = await api.call("POST", "/v1/conversations/direct", {"user_id": bob.id}, alice)
    assert isinstance(conv, dict)
    relay = Relay(int(p["base"].rsplit(":", 1)[1]))
    await relay.start()
    runs = {
        name: await one_message(relay, alice, bob, int(conv["id"]), protocols)
        for name, protocols in DIALECTS.items()
    }
    return {
        "payload_bytes": len(TEXT.encode()),
        **runs,
        "budget_bytes": 2 * len(TEXT.encode()) + 120,
    }


SCENARIOS = {"wire": wire}
