"""A separate load process for the crash test: sends as fast as acks come back, logging acks.

Usage: python load_sender.py BASE_URL PLAN_JSON ACK_LOG
Each line of ACK_LOG is ``sender conv client_id seq``, written (and flushed) only after the
server's ack arrived, so every line is a message the server promised to keep.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

WINDOW = 8


async def sender(
    http: aiohttp.ClientSession, base: str, me: dict[str, object], log: object
) -> None:
    token, conv, uid = me["token"], me["conv"], me["id"]
    async with http.ws_connect(f"{base}/v1/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.receive_json()
        n = 0
        in_flight = 0
        while True:
            while in_flight < WINDOW:
                n += 1
                await ws.send_json(
                    {
                        "t": "send",
                        "id": f"u{uid}-{n}",
                        "conv": conv,
                        "kind": "text",
                        "body": {"text": f"crash {n}"},
                    }
                )
                in_flight += 1
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            frame = json.loads(msg.data)
            if frame["t"] == "ack" or "ack" in frame:  # own event copies carry the ack
                frame["id"] = frame.get("ack", frame.get("id"))
                frame["seq"] = frame["message"]["seq"] if "message" in frame else frame["seq"]
                in_flight -= 1
                log.write(f"{uid} {frame['conv']} {frame['id']} {frame['seq']}\n")  # type: ignore[attr-defined]
                log.flush()  # type: ignore[attr-defined]


async def main(base: str, plan: list[dict[str, object]], log: object) -> None:
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(
            *(sender(http, base, me, log) for me in plan), return_exceptions=True
        )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
            result, (aiohttp.ClientError, ConnectionError, asyncio.CancelledError)
        ):
            print("sender failed:", repr(result), file=sys.stderr)


if __name__ == "__main__":
    base_url, plan_path, ack_path = sys.argv[1:4]
    with open(plan_path, encoding="utf-8") as fh:
        people = json.load(fh)
    with open(ack_path, "a", encoding="utf-8") as ack_log:
        asyncio.run(main(base_url, people, ack_log))
