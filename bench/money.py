"""Money scenarios for the load process (``bench/load.py`` runs them): transfers through the
public API, a red-packet claim storm, and red-packet sends.

Wallets are filled through the real funding path: a bank top-up against the ``wanglai sandbox
bank`` process the bench starts beside the server (SANDBOX: it stands for the bank), settled by
the sandbox's signed callback. Payers allow small payments without a PIN (as the large wallets
let their users do), so the PIN's argon2 check is not what is measured.
"""

from __future__ import annotations

import array
import asyncio
import itertools
import json
import time
from typing import Any

import aiohttp

from load import befriend, connect, measure, note, own_cpu_s, percentile, setup
from users import Api, User, provision

CARD = "4242424242424242"
"""A test card number (passes the Luhn check); the sandbox bank accepts any."""
PIN_FREE = 20_000


async def ready_wallets(api: Api, users: list[User], amount: int) -> None:
    """Allow PIN-free small payments and top each wallet up by ``amount`` through the bank."""
    gate = asyncio.Semaphore(64)

    async def one(i: int, user: User) -> None:
        async with gate:
            await api.call(
                "PATCH",
                "/v1/wallet/settings",
                {"strangers": True, "pin_free_limit": PIN_FREE},
                user,
                index=i,
            )
            await api.call(
                "POST",
                "/v1/wallet/topups",
                {"channel": "bank", "amount": amount, "card": CARD},
                user,
                index=i,
                headers={"Idempotency-Key": f"bench-topup-{user.id}"},
            )

    await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))
    deadline = time.monotonic() + 120
    for i, user in enumerate(users):
        while True:
            wallet = await api.call("GET", "/v1/wallet", None, user, index=i)
            assert isinstance(wallet, dict)
            if int(wallet["balance"]) >= amount:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"user {user.id}'s top-up did not settle")
            await asyncio.sleep(0.05)


async def transfers(p: dict[str, Any]) -> dict[str, Any]:
    """``users`` payers, each with ``window`` transfers in flight to the next one."""
    api, sms, meter = setup(p)
    count, window = int(p["users"]), int(p["window"])
    t0 = time.perf_counter()
    users = await provision(api, sms, count)
    await ready_wallets(api, users, 100_000)
    setup_s = time.perf_counter() - t0
    note(f"  {count} funded wallets in {setup_s:.1f} s")
    keys = itertools.count()
    stop = asyncio.Event()

    async def payer(i: int, me: User, to: User) -> None:
        session = api.session(i)
        url = api.base + "/v1/wallet/transfers"
        body = {"to": to.id, "amount": 1, "note": "bench"}
        while not stop.is_set():
            key = f"b{next(keys)}"
            started = time.perf_counter()
            async with session.post(
                url, json=body, headers={**me.auth, "Idempotency-Key": key}
            ) as resp:
                await resp.read()
                status = resp.status
            if status == 200 or status == 201:
                meter.acked += 1
                meter.received += 1
                if meter.recording:
                    meter.latencies.append((time.perf_counter() - started) * 1000)
            else:
                meter.error(str(status))
                await asyncio.sleep(0.01)

    tasks = [
        asyncio.create_task(payer(i, u, users[(i + 1) % count]))
        for i, u in enumerate(users)
        for _ in range(window)
    ]
    await measure(api, meter, p)
    stop.set()
    await asyncio.gather(*tasks)
    result = meter.window()
    result["transfers_per_s"] = result.pop("received_per_s")
    result.update(users=count, window=window, setup_s=round(setup_s, 1))
    return result


async def transfers_ws(p: dict[str, Any]) -> dict[str, Any]:
    """``transfers`` over WebSockets: each payer keeps ``window`` ``transfer`` frames in flight on
    its socket (the frame id is the idempotency key) and reads its events as a phone would."""
    api, sms, meter = setup(p)
    count, window = int(p["users"]), int(p["window"])
    t0 = time.perf_counter()
    users = await provision(api, sms, count)
    await ready_wallets(api, users, 100_000)
    sockets = await connect(api, users)
    setup_s = time.perf_counter() - t0
    note(f"  {count} funded wallets online in {setup_s:.1f} s")
    stop = asyncio.Event()

    async def payer(i: int) -> None:
        ws, to = sockets[i], users[(i + 1) % count]
        started: dict[str, float] = {}
        n = 0

        async def send() -> None:
            nonlocal n
            n += 1
            frame_id = f"{i}-{n}"
            started[frame_id] = time.perf_counter()
            await ws.send_str(
                f'{{"t":"transfer","id":"{frame_id}","to":{to.id},"amount":1,"note":"bench"}}'
            )

        for _ in range(window):
            await send()
        while started:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            data = msg.data
            if b'"t":"transferred"' not in data and b'"t":"error"' not in data:
                continue  # events: movements and cards
            frame = json.loads(data)
            began = started.pop(frame.get("id"), None)
            if began is None:
                continue
            if frame["t"] == "transferred":
                meter.acked += 1
                meter.received += 1
                if meter.recording:
                    meter.latencies.append((time.perf_counter() - began) * 1000)
            else:
                meter.error(frame.get("code", "error"))
            if not stop.is_set():
                await send()

    tasks = [asyncio.create_task(payer(i)) for i in range(len(sockets))]
    await measure(api, meter, p)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    result = meter.window()
    result["transfers_per_s"] = result.pop("received_per_s")
    result.update(users=count, window=window, setup_s=round(setup_s, 1))
    return result


async def group_of(api: Api, users: list[User]) -> int:
    owner, others = users[0], users[1:]
    await befriend(api, owner, others)
    group = await api.call(
        "POST", "/v1/groups", {"title": "bench", "members": [u.id for u in others]}, owner
    )
    assert isinstance(group, dict)
    return int(group["id"])


async def storm(p: dict[str, Any]) -> dict[str, Any]:
    """One ``shares``-share packet in a group of ``members``; ``claimers`` claims at once."""
    api, sms, _meter = setup(p)
    members, claimers, shares = int(p["members"]), int(p["claimers"]), int(p["shares"])
    amount = int(p.get("amount", 20_000))
    users = await provision(api, sms, members)
    conv = await group_of(api, users)
    await ready_wallets(api, users[:1], amount)
    packet = await api.call(
        "POST",
        "/v1/redpackets",
        {"conv": conv, "kind": "lucky", "amount": amount, "shares": shares},
        users[0],
        headers={"Idempotency-Key": "storm"},
    )
    assert isinstance(packet, dict)
    path = f"{api.base}/v1/redpackets/{packet['id']}/claim"
    # every connection is open before the storm, so the storm measures claims, not handshakes
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) for _ in range(8)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    won: dict[int, int] = {}
    go = asyncio.Event()
    warmed = 0
    all_warm = asyncio.Event()

    async def claim(i: int) -> None:
        user = users[i % members]
        session = sessions[i % len(sessions)]
        # one keep-alive connection per claimer, opened before the storm
        nonlocal warmed
        async with session.get(path.removesuffix("/claim"), headers=user.auth) as resp:
            await resp.read()
        warmed += 1
        if warmed == claimers:
            all_warm.set()
        await go.wait()
        started = time.perf_counter()
        async with session.post(path, headers=user.auth) as resp:
            body = await resp.json()
            status = resp.status
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200 and body.get("new"):
            won[user.id] = won.get(user.id, 0) + int(body["claim"]["amount"])

    tasks = [asyncio.create_task(claim(i)) for i in range(claimers)]
    await asyncio.wait_for(all_warm.wait(), 120)
    await asyncio.sleep(0.5)
    cpu0, t0 = own_cpu_s(), time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    view = await api.call("GET", f"/v1/redpackets/{packet['id']}", None, users[0])
    assert isinstance(view, dict)
    for session in sessions:
        await session.close()
    lat = array.array("d", latencies)
    return {
        "claimers": claimers,
        "members": members,
        "shares": shares,
        "amount": amount,
        "winners": len(won),
        "sum": sum(won.values()),
        "packet_claimed_count": view.get("claimed_count"),
        "packet_claimed_amount": view.get("claimed_amount"),
        "p50_ms": round(percentile(lat, 0.5), 1),
        "p99_ms": round(percentile(lat, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "storm_s": round(wall, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "load_cpu_s": round(own_cpu_s() - cpu0, 2),
    }


async def storm_ws(p: dict[str, Any]) -> dict[str, Any]:
    """The storm over WebSockets: each of ``members`` online members sends its share of the
    ``claimers`` claim frames at once (20 each for 10,000 claims in a group of 500)."""
    api, sms, _meter = setup(p)
    members, claimers, shares = int(p["members"]), int(p["claimers"]), int(p["shares"])
    amount = int(p.get("amount", 20_000))
    users = await provision(api, sms, members)
    conv = await group_of(api, users)
    await ready_wallets(api, users[:1], amount)
    packet = await api.call(
        "POST",
        "/v1/redpackets",
        {"conv": conv, "kind": "lucky", "amount": amount, "shares": shares},
        users[0],
        headers={"Idempotency-Key": "storm"},
    )
    assert isinstance(packet, dict)
    sockets = await connect(api, users)
    per_member = claimers // members
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    won: dict[int, int] = {}
    go = asyncio.Event()

    async def member(i: int) -> None:
        ws, user = sockets[i], users[i]
        await go.wait()
        started: dict[str, float] = {}
        for n in range(per_member):
            frame_id = f"{i}-{n}"
            started[frame_id] = time.perf_counter()
            await ws.send_str(f'{{"t":"claim","id":"{frame_id}","packet":{packet["id"]}}}')
        while started:
            msg = await ws.receive(timeout=60)
            frame = json.loads(msg.data)
            frame_id = frame.get("id")
            if frame.get("t") not in ("claimed", "error") or frame_id not in started:
                continue
            latencies.append((time.perf_counter() - started.pop(frame_id)) * 1000)
            kind = frame.get("code") or frame["t"]
            outcomes[kind] = outcomes.get(kind, 0) + 1
            if frame["t"] == "claimed" and frame["result"]["new"]:
                won[user.id] = won.get(user.id, 0) + int(frame["result"]["claim"]["amount"])

    tasks = [asyncio.create_task(member(i)) for i in range(len(sockets))]
    await asyncio.sleep(0.5)
    cpu0, t0 = own_cpu_s(), time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    view = await api.call("GET", f"/v1/redpackets/{packet['id']}", None, users[0])
    assert isinstance(view, dict)
    lat = array.array("d", latencies)
    return {
        "claimers": per_member * len(sockets),
        "members": members,
        "shares": shares,
        "amount": amount,
        "winners": len(won),
        "sum": sum(won.values()),
        "packet_claimed_count": view.get("claimed_count"),
        "packet_claimed_amount": view.get("claimed_amount"),
        "p50_ms": round(percentile(lat, 0.5), 1),
        "p99_ms": round(percentile(lat, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "storm_s": round(wall, 2),
        "outcomes": dict(sorted(outcomes.items())),
        "load_cpu_s": round(own_cpu_s() - cpu0, 2),
    }


async def sends(p: dict[str, Any]) -> dict[str, Any]:
    """``senders`` members of a group of ``members`` each keep ``window`` packets in flight."""
    api, sms, meter = setup(p)
    members, senders, window = int(p["members"]), int(p["senders"]), int(p["window"])
    users = await provision(api, sms, members)
    conv = await group_of(api, users)
    await ready_wallets(api, users[:senders], 100_000)
    keys = itertools.count()
    stop = asyncio.Event()

    async def sender(i: int, me: User) -> None:
        session = api.session(i)
        url = api.base + "/v1/redpackets"
        body = {"conv": conv, "kind": "lucky", "amount": 10, "shares": 10}
        while not stop.is_set():
            started = time.perf_counter()
            async with session.post(
                url, json=body, headers={**me.auth, "Idempotency-Key": f"s{next(keys)}"}
            ) as resp:
                await resp.read()
                status = resp.status
            if status in (200, 201):
                meter.acked += 1
                meter.received += 1
                if meter.recording:
                    meter.latencies.append((time.perf_counter() - started) * 1000)
            else:
                meter.error(str(status))
                await asyncio.sleep(0.01)

    tasks = [
        asyncio.create_task(sender(i, u))
        for i, u in enumerate(users[:senders])
        for _ in range(window)
    ]
    await measure(api, meter, p)
    stop.set()
    await asyncio.gather(*tasks)
    result = meter.window()
    result["sends_per_s"] = result.pop("received_per_s")
    result.update(members=members, senders=senders, window=window)
    return result


SCENARIOS = {
    "transfers": transfers,
    "transfers_ws": transfers_ws,
    "storm": storm,
    "storm_ws": storm_ws,
    "sends": sends,
}
