"""The load process: drives a running server and prints one ``RESULT {json}`` line on stdout.

    python bench/load.py SCENARIO '{"base": ..., "data_dir": ..., "server_pid": ..., ...}'

Scenarios: direct, idle, catchup, group500. It runs on uvloop with aiohttp's WebSocket client
(frames decoded by msgspec into just the fields the bench needs) and measures its own CPU time
next to the server's, so a reader can tell which side ran out of CPU first.
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, TypeAlias

import aiohttp
import msgspec
from aiohttp import WSMsgType

from server import cpu_s, machine_busy_s, pss_kb, raise_nofile, rss_kb
from users import Api, SmsLog, User, provision

Socket: TypeAlias = "aiohttp.ClientWebSocketResponse[Literal[False]]"
"""A client WebSocket that hands text frames over as bytes (``decode_text=False``)."""
Scenario = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Body(msgspec.Struct):
    text: str = ""


class Msg(msgspec.Struct):
    sender: int = 0
    body: Body | None = None


class Frame(msgspec.Struct):
    t: str
    id: str = ""
    type: str = ""
    seq: int = 0
    head: int = 0
    code: str = ""
    message: Msg | str | None = None
    ack: str = ""
    """On the sender's own copy of its message: the client id this frame acknowledges."""


decode_frame = msgspec.json.Decoder(Frame).decode
TEXT = WSMsgType.TEXT


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def now_ms() -> float:
    return time.perf_counter() * 1000.0


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: array.array[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Meter:
    """Counters plus server and load-process CPU/RSS across a measurement window."""

    def __init__(self, server_pid: int, also: tuple[int, ...] = ()) -> None:
        self.server_pid = server_pid
        self.also = also
        """More server processes, each with its children (e.g. a PostgreSQL cluster's
        postmaster): their CPU and RSS count as the server's."""
        self.received = 0
        self.acked = 0
        self.sent = 0
        self.errors: dict[str, int] = {}
        self.latencies: array.array[float] = array.array("d")
        self.recording = False
        self.marks: dict[str, float] = {}
        self.pss_peak_kb = 0

    def sample_pss(self) -> None:
        """Keep the highest proportional set size of the server processes seen so far."""
        pss = sum(pss_kb(pid) for pid in (self.server_pid, *self.also))
        self.pss_peak_kb = max(self.pss_peak_kb, pss)

    async def mark(self, api: Api | None, name: str) -> None:
        """Record counters and readings under ``name``; the server's commit counters too when
        ``api`` is Wanglai's (``None`` for another server)."""
        if api is not None:
            for key, value in (await server_metrics(api)).items():
                self.marks[f"{name}.{key}"] = value
        self.marks[name + ".t"] = time.perf_counter()
        self.marks[name + ".received"] = self.received
        self.marks[name + ".acked"] = self.acked
        self.marks[name + ".sent"] = self.sent
        pids = (self.server_pid, *self.also)
        self.marks[name + ".server_cpu"] = sum(cpu_s(pid) for pid in pids)
        self.marks[name + ".load_cpu"] = own_cpu_s()
        self.marks[name + ".server_rss"] = sum(rss_kb(pid) for pid in pids)
        self.marks[name + ".busy"] = machine_busy_s()

    def window(self, start: str = "start", end: str = "end") -> dict[str, Any]:
        m = self.marks
        seconds = m[end + ".t"] - m[start + ".t"]
        lat = self.latencies
        return {
            "seconds": round(seconds, 2),
            "received": int(m[end + ".received"] - m[start + ".received"]),
            "received_per_s": round((m[end + ".received"] - m[start + ".received"]) / seconds),
            "acked_per_s": round((m[end + ".acked"] - m[start + ".acked"]) / seconds),
            "sent_per_s": round((m[end + ".sent"] - m[start + ".sent"]) / seconds),
            "p50_ms": round(percentile(lat, 0.50), 2),
            "p99_ms": round(percentile(lat, 0.99), 2),
            "max_ms": round(max(lat), 2) if lat else 0.0,
            "latency_samples": len(lat),
            "server_cpu_pct": round(
                100 * (m[end + ".server_cpu"] - m[start + ".server_cpu"]) / seconds
            ),
            "load_cpu_pct": round(100 * (m[end + ".load_cpu"] - m[start + ".load_cpu"]) / seconds),
            # CPU that neither the server nor this process used: other work on the machine.
            "other_cpu_pct": round(
                100
                * (
                    (m[end + ".busy"] - m[start + ".busy"])
                    - (m[end + ".server_cpu"] - m[start + ".server_cpu"])
                    - (m[end + ".load_cpu"] - m[start + ".load_cpu"])
                )
                / seconds
            ),
            "server_rss_mb": round(m[end + ".server_rss"] / 1024, 1),
            "server_pss_peak_mb": round(self.pss_peak_kb / 1024, 1),
            **commit_stats(m, start, end, seconds),
            "errors": dict(self.errors),
        }

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


COMMIT_METRICS = (
    "wanglai_commit_batch_size_sum",
    "wanglai_commit_batch_size_count",
    "wanglai_commit_seconds_sum",
)


async def server_metrics(api: Api) -> dict[str, float]:
    """The server's group-commit counters from /metrics (empty if it has none)."""
    async with api.session(0).get(api.base + "/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in COMMIT_METRICS:
            found[name] = float(value)
    return found


def commit_stats(m: dict[str, float], start: str, end: str, seconds: float) -> dict[str, float]:
    def delta(name: str) -> float:
        return m.get(f"{end}.{name}", 0.0) - m.get(f"{start}.{name}", 0.0)

    batches = delta("wanglai_commit_batch_size_count")
    if not batches:
        return {}
    return {
        "commits_per_s": round(batches / seconds),
        "writes_per_commit": round(delta("wanglai_commit_batch_size_sum") / batches, 1),
        "commit_ms_avg": round(1000 * delta("wanglai_commit_seconds_sum") / batches, 2),
        "writer_busy_pct": round(100 * delta("wanglai_commit_seconds_sum") / seconds),
    }


class Peer:
    """One user on one WebSocket, talking in one conversation."""

    __slots__ = ("conv", "in_flight", "meter", "n", "sending", "user", "window", "ws")

    def __init__(self, user: User, ws: Socket, meter: Meter) -> None:
        self.user = user
        self.ws = ws
        self.meter = meter
        self.conv = 0
        self.n = 0
        self.in_flight = 0
        self.window = 0
        self.sending = False

    async def send(self, stamp_ms: float | None = None) -> None:
        self.n += 1
        self.in_flight += 1
        self.meter.sent += 1
        stamp = now_ms() if stamp_ms is None else stamp_ms
        frame = b'{"t":"send","id":"%d-%d","conv":%d,"kind":"text","body":{"text":"%.3f"}}' % (
            self.user.id,
            self.n,
            self.conv,
            stamp,
        )
        await self.ws.send_frame(frame, TEXT)

    async def read(self, count_own: bool = False) -> None:
        """Count messages from others (and, if asked, our own echoes); refill the send window."""
        meter = self.meter
        me = self.user.id
        async for msg in self.ws:
            if msg.type != TEXT:
                break
            frame = decode_frame(msg.data)
            t = frame.t
            if t == "event":
                message = frame.message
                if frame.type == "message" and isinstance(message, Msg):
                    if message.sender != me:
                        meter.received += 1
                        if meter.recording and message.body is not None:
                            meter.latencies.append(now_ms() - float(message.body.text))
                    elif count_own:
                        meter.received += 1
                if frame.ack:
                    meter.acked += 1
                    self.in_flight -= 1
                    if self.sending and self.in_flight < self.window:
                        await self.send()
            elif t == "ack":
                meter.acked += 1
                self.in_flight -= 1
                if self.sending and self.in_flight < self.window:
                    await self.send()
            elif t == "error":
                meter.error(frame.code)
                if frame.id:
                    self.in_flight -= 1
                    if self.sending and self.in_flight < self.window:
                        await self.send()


async def measure(api: Api | None, meter: Meter, p: dict[str, Any]) -> None:
    """Let the load settle for ``warmup`` seconds, then record for ``duration`` seconds."""
    await asyncio.sleep(float(p["warmup"]))
    await meter.mark(api, "start")
    meter.recording = True
    end = time.perf_counter() + float(p["duration"])
    while (left := end - time.perf_counter()) > 0:
        meter.sample_pss()  # every 2 s: peak memory with shared pages counted once
        await asyncio.sleep(min(2.0, left))
    meter.sample_pss()
    meter.recording = False
    await meter.mark(api, "end")


async def connect(api: Api, users: list[User], concurrency: int = 200) -> list[Socket]:
    """One WebSocket per user, each past its hello frame."""
    gate = asyncio.Semaphore(concurrency)
    url = api.base.replace("http", "ws", 1) + "/v1/ws"
    sockets: list[Socket | None] = [None] * len(users)

    async def one(i: int) -> None:
        async with gate:
            ws = await api.session(i).ws_connect(
                url,
                headers=users[i].auth,
                autoping=True,
                heartbeat=None,
                compress=0,
                decode_text=False,
            )
            hello = await ws.receive()
            if hello.type != TEXT or decode_frame(hello.data).t != "hello":
                raise RuntimeError(f"expected hello, got {hello!r}")
            sockets[i] = ws

    await asyncio.gather(*(one(i) for i in range(len(users))))
    return [ws for ws in sockets if ws is not None]


async def open_pairs(api: Api, users: list[User], concurrency: int = 64) -> list[int]:
    """A direct conversation for each (users[2i], users[2i+1]); returns their ids."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with gate:
            data = await api.call(
                "POST",
                "/v1/conversations/direct",
                {"user_id": users[2 * i + 1].id},
                users[2 * i],
                index=i,
            )
            assert isinstance(data, dict)
            return int(data["id"])

    return list(await asyncio.gather(*(one(i) for i in range(len(users) // 2))))


OPEN: list[Api] = []
"""Kept alive until the process exits (see ``main``), so nothing is closed one by one."""


def setup(p: dict[str, Any]) -> tuple[Api, SmsLog, Meter]:
    api = Api(p["base"])
    OPEN.append(api)
    return api, SmsLog(Path(p["data_dir"]) / "sms.log"), Meter(int(p["server_pid"]))


async def direct(p: dict[str, Any]) -> dict[str, Any]:
    """500 pairs online; every user sends to its peer (window W, or paced at ``rate``)."""
    api, sms, meter = setup(p)
    pairs, window, rate = int(p["pairs"]), int(p["window"]), float(p.get("rate") or 0)
    t0 = time.perf_counter()
    users = await provision(api, sms, 2 * pairs, dm_anyone=True)
    convs = await open_pairs(api, users)
    sockets = await connect(api, users)
    setup_s = time.perf_counter() - t0
    peers = [Peer(u, ws, meter) for u, ws in zip(users, sockets, strict=True)]
    for i, peer in enumerate(peers):
        peer.conv = convs[i // 2]
        peer.window = window
    readers = [asyncio.create_task(peer.read()) for peer in peers]
    note(f"  {len(peers)} users online in {setup_s:.1f} s")

    stop = asyncio.Event()
    if rate > 0:
        pacer = asyncio.create_task(pace(peers, rate, stop))
    else:
        for peer in peers:
            peer.sending = True
        for _ in range(window):
            for peer in peers:
                await peer.send()
    await measure(api, meter, p)
    stop.set()
    for peer in peers:
        peer.sending = False
    if rate > 0:
        await pacer
    await drain(peers, 10.0)
    result = meter.window()
    result.update(
        users=len(peers),
        window=window if rate == 0 else None,
        offered_per_s=rate or None,
        setup_s=round(setup_s, 1),
        unacked_at_end=sum(peer.in_flight for peer in peers),
        load_cpu_total_s=round(own_cpu_s(), 1),
    )
    for task in readers:
        task.cancel()
    return result


async def pace(peers: list[Peer], rate: float, stop: asyncio.Event) -> None:
    """Open-loop sending at ``rate`` msgs/s round-robin over the peers; each message carries its
    scheduled time, so a late sender shows up as latency (no coordinated omission)."""
    started = now_ms()
    sent = 0
    turn = 0
    count = len(peers)
    while not stop.is_set():
        due = int((now_ms() - started) * rate / 1000.0)
        while sent < due:
            peer = peers[turn]
            turn = (turn + 1) % count
            await peer.send(started + sent * 1000.0 / rate)
            sent += 1
        await asyncio.sleep(0.001)


async def drain(peers: list[Peer], timeout_s: float) -> None:
    """Wait (bounded) for the acks of messages still in flight."""
    for _ in range(int(timeout_s / 0.05)):
        if not any(peer.in_flight > 0 for peer in peers):
            return
        await asyncio.sleep(0.05)


async def idle(p: dict[str, Any]) -> dict[str, Any]:
    """N authenticated connections that only said hello; server RSS growth per connection."""
    api, sms, meter = setup(p)
    conns = int(p["conns"])
    t0 = time.perf_counter()
    users = await provision(api, sms, conns)
    provision_s = time.perf_counter() - t0
    note(f"  {conns} users provisioned in {provision_s:.1f} s; connecting")
    # Close the provisioning keep-alive connections: every descriptor is needed for sockets.
    await api.close()
    api = Api(p["base"])
    OPEN.append(api)
    await asyncio.sleep(1.0)
    before = rss_kb(meter.server_pid)
    t1 = time.perf_counter()
    sockets = await connect(api, users, concurrency=int(p.get("connect_concurrency", 256)))
    connect_s = time.perf_counter() - t1
    await asyncio.sleep(float(p.get("settle_s", 3.0)))
    after = rss_kb(meter.server_pid)
    # An idle socket must stay idle: nothing is read from it here until the end.
    return {
        "conns": len(sockets),
        "provision_s": round(provision_s, 1),
        "logins_per_s": round(conns / provision_s),
        "connect_s": round(connect_s, 1),
        "server_rss_before_mb": round(before / 1024, 1),
        "server_rss_after_mb": round(after / 1024, 1),
        "kb_per_conn": round((after - before) / len(sockets), 2),
        "load_rss_mb": round(rss_kb(os.getpid()) / 1024, 1),
        "load_cpu_total_s": round(own_cpu_s(), 1),
    }


class SyncEvent(msgspec.Struct):
    seq: int


class SyncPage(msgspec.Struct):
    events: list[SyncEvent]
    next: int
    more: bool
    head: int


decode_page = msgspec.json.Decoder(SyncPage).decode


async def catchup(p: dict[str, Any]) -> dict[str, Any]:
    """B sends ``events`` messages to A while A is away; A's device then syncs them in pages."""
    api, sms, meter = setup(p)
    total, limit, repeats = int(p["events"]), int(p["limit"]), int(p["repeats"])
    a, b = await provision(api, sms, 2, dm_anyone=True)
    page = await api.call("GET", "/v1/sync?since=0&limit=1", user=a)
    assert isinstance(page, dict)
    cursor = int(page["head"])
    conv = await api.call("POST", "/v1/conversations/direct", {"user_id": a.id}, b)
    assert isinstance(conv, dict)
    (ws,) = await connect(api, [b])
    sender = Peer(b, ws, meter)
    sender.conv, sender.window, sender.sending = int(conv["id"]), 200, True
    reader = asyncio.create_task(sender.read())
    t0 = time.perf_counter()
    for _ in range(min(total, sender.window)):
        await sender.send()
    while meter.acked < total:
        await asyncio.sleep(0.01)
        sender.sending = meter.sent < total
    fill_s = time.perf_counter() - t0
    reader.cancel()
    note(f"  {total} events written in {fill_s:.1f} s; catching up")

    session = api.session(0)
    url = f"{api.base}/v1/sync"
    runs: list[float] = []
    pages = 0
    for _ in range(repeats):
        got, since, pages = 0, cursor, 0
        started = time.perf_counter()
        while got < total:
            async with session.get(
                url, params={"since": since, "limit": limit}, headers=a.auth
            ) as resp:
                body = await resp.read()
            batch = decode_page(body)
            got += len(batch.events)
            since = batch.next
            pages += 1
            if not batch.more:
                break
        runs.append((time.perf_counter() - started) * 1000)
        if got < total:
            raise RuntimeError(f"sync returned {got} of {total} events")
    ordered = sorted(runs)
    return {
        "events": total,
        "page_limit": limit,
        "pages": pages,
        "repeats": repeats,
        "first_ms": round(runs[0], 1),
        "median_ms": round(ordered[len(ordered) // 2], 1),
        "best_ms": round(ordered[0], 1),
        "fill_msgs_per_s": round(total / fill_s),
        "errors": dict(meter.errors),
        "load_cpu_total_s": round(own_cpu_s(), 1),
    }


async def group500(p: dict[str, Any]) -> dict[str, Any]:
    """One group of ``members`` online members; ``senders`` of them send with a window each."""
    api, sms, meter = setup(p)
    size, senders, window = int(p["members"]), int(p["senders"]), int(p["window"])
    t0 = time.perf_counter()
    users = await provision(api, sms, size, dm_anyone=True)
    owner, others = users[0], users[1:]
    if not await api.exists("POST", "/v1/groups", owner):
        return {"skipped": "the server has no POST /v1/groups yet"}
    await befriend(api, owner, others)
    group = await api.call(
        "POST", "/v1/groups", {"title": "bench", "members": [u.id for u in others]}, owner
    )
    assert isinstance(group, dict)
    conv = int(group.get("id") or group.get("conv") or 0)
    sockets = await connect(api, users)
    setup_s = time.perf_counter() - t0
    peers = [Peer(u, ws, meter) for u, ws in zip(users, sockets, strict=True)]
    for peer in peers:
        peer.conv, peer.window = conv, window
    readers = [asyncio.create_task(peer.read(count_own=True)) for peer in peers]
    note(f"  group {conv} with {len(peers)} members online in {setup_s:.1f} s")
    active = peers[:senders]
    for peer in active:
        peer.sending = True
    for _ in range(window):
        for peer in active:
            await peer.send()
    await measure(api, meter, p)
    for peer in active:
        peer.sending = False
    await drain(active, 10.0)
    result = meter.window()
    result["deliveries_per_s"] = result.pop("received_per_s")
    result["messages_per_s"] = result["acked_per_s"]
    result.update(
        members=len(peers),
        senders=senders,
        window=window,
        setup_s=round(setup_s, 1),
        load_cpu_total_s=round(own_cpu_s(), 1),
    )
    for task in readers:
        task.cancel()
    return result


async def befriend(api: Api, owner: User, others: list[User]) -> None:
    """Make ``owner`` a friend of each of ``others`` (groups need friendship to invite).

    Written against the contacts API as specified (request with a note, the other accepts); it
    runs only when the server has these routes.
    """
    gate = asyncio.Semaphore(64)

    async def one(i: int, user: User) -> None:
        async with gate:
            req = await api.call(
                "POST", "/v1/friends/requests", {"user_id": user.id, "note": "bench"}, owner, i
            )
            assert isinstance(req, dict)
            await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", {}, user, index=i)

    await asyncio.gather(*(one(i, u) for i, u in enumerate(others)))


SCENARIOS: dict[str, Scenario] = {
    "direct": direct,
    "idle": idle,
    "catchup": catchup,
    "group500": group500,
}


def process_main(run: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
    """``python bench/SCRIPT.py SCENARIO PARAMS``: run one scenario under uvloop and print its
    ``RESULT {json}`` line (what ``run.drive`` reads)."""

    async def main() -> None:
        raise_nofile()
        result = await run(sys.argv[1], json.loads(sys.argv[2]))
        print("RESULT " + json.dumps(result), flush=True)
        # Thousands of sockets close with the process; closing each politely would only add
        # noise (and the server's handling of it is not what is measured).
        os._exit(0)

    import uvloop

    uvloop.run(main())


async def run(name: str, params: dict[str, Any]) -> dict[str, Any]:
    from money import SCENARIOS as MONEY
    from radio import SCENARIOS as RADIO
    from wire import SCENARIOS as WIRE

    return await {**SCENARIOS, **MONEY, **WIRE, **RADIO}[name](params)


if __name__ == "__main__":
    process_main(run)
