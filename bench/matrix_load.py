"""The Matrix load process of ``compare.py``: the compare workload against Synapse.

    python bench/matrix_load.py direct|group '{"base": ..., "secret": ..., "server_pid": ..., ...}'

uvloop + aiohttp, like ``load.py``. Users come from Synapse's shared-secret registration; each
pair shares a private room (``direct``), or everyone joins one public room (``group``). Every
user long-polls ``/sync`` (a filter, uploaded once per user, keeps only ``m.room.message``
timeline events, decoded by msgspec); a sender keeps ``window``
``PUT /rooms/{id}/send/m.room.message/{txn}`` requests in flight (the answer, with the event
id, is the server's acknowledgement). The body carries the send time. Prints one
``RESULT {json}`` line like ``load.py``.

``max_in_flight`` (0: none) caps the PUTs in flight over all senders: a send loop waits for a
free slot before it stamps and sends its message, so the latency is the server's (PUT to the
peer's ``/sync``), not the time a message waited for a slot in the driver. The result also
carries a per-second ``progress`` of acknowledged and received messages from the moment sending
starts, and how long the first acknowledgement took (``first_ack_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import msgspec

from load import Meter, measure, note, now_ms, own_cpu_s, process_main

SYNC_FILTER = json.dumps(
    {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": 1000, "types": ["m.room.message"]},
            "state": {"types": []},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    },
    separators=(",", ":"),
)


class Content(msgspec.Struct):
    body: str = ""


class Event(msgspec.Struct):
    sender: str = ""
    content: Content | None = None


class Timeline(msgspec.Struct):
    events: list[Event] = []


class Joined(msgspec.Struct):
    timeline: Timeline | None = None


class Rooms(msgspec.Struct):
    join: dict[str, Joined] = {}


class Sync(msgspec.Struct):
    next_batch: str
    rooms: Rooms | None = None


decode_sync = msgspec.json.Decoder(Sync).decode


class User:
    __slots__ = ("auth", "filter", "id", "n", "room", "since")

    def __init__(self, user_id: str, token: str) -> None:
        self.id = user_id
        self.auth = {"Authorization": f"Bearer {token}"}
        self.room = ""
        self.since = ""
        self.filter = SYNC_FILTER
        self.n = 0


class Driver:
    def __init__(self, p: dict[str, Any]) -> None:
        self.base = p["base"]
        self.client = self.base + "/_matrix/client/v3"
        self.secret = str(p["secret"]).encode()
        self.meter = Meter(int(p["server_pid"]), tuple(int(x) for x in p.get("also_pids", ())))
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.running = True
        self.sending = False
        self.count_own = False
        cap = int(p.get("max_in_flight", 0))
        self.cap = asyncio.Semaphore(cap) if cap > 0 else None
        self.first_ack = 0.0

    async def call(
        self, method: str, path: str, body: object = None, user: User | None = None
    ) -> dict[str, Any]:
        headers = user.auth if user else None
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            data: dict[str, Any] = await r.json()
            if r.status != 200:
                raise RuntimeError(f"{method} {path} -> {r.status}: {data}")
            return data

    async def register(self, name: str) -> User:
        """Shared-secret registration (the admin API's HMAC flow)."""
        path = "/_synapse/admin/v1/register"
        nonce = (await self.call("GET", path))["nonce"]
        password = "bench-password"
        mac = hmac.new(self.secret, digestmod=hashlib.sha1)
        mac.update(b"\0".join([nonce.encode(), name.encode(), password.encode(), b"notadmin"]))
        body = {"nonce": nonce, "username": name, "password": password, "mac": mac.hexdigest()}
        data = await self.call("POST", path, body)
        return User(data["user_id"], data["access_token"])

    async def users(self, count: int, prefix: str) -> list[User]:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> User:
            async with gate:
                return await self.register(f"{prefix}{i}")

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    async def sync(self, user: User, timeout_ms: int) -> Sync:
        params = {"filter": user.filter, "timeout": str(timeout_ms)}
        if user.since:
            params["since"] = user.since
        async with self.http.get(self.client + "/sync", params=params, headers=user.auth) as r:
            body = await r.read()
            if r.status != 200:
                raise RuntimeError(f"sync -> {r.status}: {body[:200]!r}")
        page = decode_sync(body)
        user.since = page.next_batch
        return page

    async def listen(self, user: User) -> None:
        meter = self.meter
        while self.running:
            try:
                page = await self.sync(user, 30_000)
            except (aiohttp.ClientError, RuntimeError) as exc:
                meter.error(type(exc).__name__)
                await asyncio.sleep(0.1)
                continue
            if page.rooms is None:
                continue
            for joined in page.rooms.join.values():
                if joined.timeline is None:
                    continue
                for event in joined.timeline.events:
                    if event.sender == user.id and not self.count_own:
                        continue
                    meter.received += 1
                    if meter.recording and event.content is not None:
                        with contextlib.suppress(ValueError):
                            meter.latencies.append(now_ms() - float(event.content.body))

    async def send_loop(self, user: User, slot: int) -> None:
        """One of the ``window`` requests a sender keeps in flight."""
        while self.sending:
            if self.cap is None:
                await self.send(user, slot)
                continue
            async with self.cap:
                if self.sending:
                    await self.send(user, slot)

    async def send(self, user: User, slot: int) -> None:
        meter = self.meter
        user.n += 1
        url = f"{self.client}/rooms/{user.room}/send/m.room.message/{slot}-{user.n}"
        body = {"msgtype": "m.text", "body": f"{now_ms():.3f}"}
        meter.sent += 1
        try:
            async with self.http.put(url, json=body, headers=user.auth) as r:
                await r.read()
                if r.status == 200:
                    meter.acked += 1
                    if not self.first_ack:
                        self.first_ack = time.perf_counter()
                else:
                    meter.error(str(r.status))
        except aiohttp.ClientError as exc:
            meter.error(type(exc).__name__)

    async def progress(self, out: list[list[int]]) -> None:
        """Every second: [seconds since sending started, acked, received, sent]."""
        t0 = time.perf_counter()
        m = self.meter
        while True:
            await asyncio.sleep(1.0)
            out.append([round(time.perf_counter() - t0), m.acked, m.received, m.sent])


async def run(scenario: str, p: dict[str, Any]) -> dict[str, Any]:
    d = Driver(p)
    group = scenario == "group"
    count = int(p["members"] if group else p["users"])
    window = int(p["window"])
    t0 = time.perf_counter()
    users = await d.users(count, p["prefix"])
    gate = asyncio.Semaphore(8)
    if group:
        room = (
            await d.call(
                "POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat"}, users[0]
            )
        )["room_id"]

        async def join(u: User) -> None:
            async with gate:
                await d.call("POST", f"/_matrix/client/v3/join/{room}", {}, u)

        await asyncio.gather(*(join(u) for u in users[1:]))
        for u in users:
            u.room = room
        senders = users[:1]
        d.count_own = True
    else:

        async def pair(a: User, b: User) -> None:
            async with gate:
                spec = {"preset": "trusted_private_chat", "invite": [b.id], "is_direct": True}
                created = await d.call("POST", "/_matrix/client/v3/createRoom", spec, a)
                await d.call("POST", f"/_matrix/client/v3/join/{created['room_id']}", {}, b)
                a.room = b.room = created["room_id"]

        await asyncio.gather(*(pair(users[i], users[i + 1]) for i in range(0, count - 1, 2)))
        senders = users
    # A first sync gives each user its position; the long-polls start from there.
    sgate = asyncio.Semaphore(32)

    async def first(u: User) -> None:
        async with sgate:
            # Uploaded once, then named by its id, as clients do (an inline filter is parsed
            # and validated against its JSON schema on every /sync).
            path = f"/_matrix/client/v3/user/{u.id}/filter"
            u.filter = (await d.call("POST", path, json.loads(SYNC_FILTER), u))["filter_id"]
            await d.sync(u, 0)

    await asyncio.gather(*(first(u) for u in users))
    setup_s = time.perf_counter() - t0
    note(f"  {count} Matrix users ready in {setup_s:.1f} s")
    listeners = [asyncio.create_task(d.listen(u)) for u in users]
    progress: list[list[int]] = []
    ticker = asyncio.create_task(d.progress(progress))
    d.sending = True
    t_send = time.perf_counter()
    loops = [asyncio.create_task(d.send_loop(u, s)) for u in senders for s in range(window)]
    await measure(None, d.meter, p)
    d.sending = False
    in_flight_at_end = d.meter.sent - d.meter.acked - sum(d.meter.errors.values())
    _, pending = await asyncio.wait(loops, timeout=30)
    ticker.cancel()
    result = d.meter.window()
    result.update(
        users=count,
        senders=len(senders),
        window=window,
        max_in_flight=int(p.get("max_in_flight", 0)),
        setup_s=round(setup_s, 1),
        first_ack_s=round(d.first_ack - t_send, 1) if d.first_ack else None,
        in_flight_at_end=in_flight_at_end,
        unacked_at_end=len(pending),
        load_cpu_total_s=round(own_cpu_s(), 1),
        progress=progress,
    )
    d.running = False
    for task in listeners:
        task.cancel()
    return result


if __name__ == "__main__":
    process_main(run)
