"""Radio wake-ups of idle phones (the ``signal`` scenario of the load process).

Idle SDK clients keep their WebSocket open with the adaptive heartbeat and nothing else to
say. Each goes through its own counting relay (``relay.py``); every time data moves after a
quiet spell counts as one network event — one wake-up of a phone's radio. Time runs 60 times
faster than on a phone: the server advertises a 1 s heartbeat and a 10 s maximum (standing
for 60 s and 10 minutes), and the numbers are scaled back to events per real hour.

Two groups run side by side: an open path (only the server's maximum bounds the interval)
and a path through a NAT that forgets a connection after 7 (scaled) minutes of silence.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from load import setup
from relay import Relay, bursts
from users import provision
from wanglai.client import Client

SCALE = 60.0
"""Seconds of a phone's time per second of the benchmark's."""
GAP_S = 15.0 / SCALE
"""Data within 15 (real) seconds of the last is the same wake-up (a radio's tail)."""
NAT_S = 7 * 60 / SCALE


async def signal(p: dict[str, Any]) -> dict[str, Any]:
    api, sms, _meter = setup(p)
    devices, hours = int(p.get("devices", 10)), int(p.get("hours", 3))
    users = await provision(api, sms, 2 * devices, progress=False)
    port = int(p["base"].rsplit(":", 1)[1])
    groups: dict[str, list[Relay]] = {
        "open": [Relay(port) for _ in range(devices)],
        "nat": [Relay(port, nat_s=NAT_S) for _ in range(devices)],
    }
    clients: list[Client] = []
    relays = groups["open"] + groups["nat"]
    for relay, user in zip(relays, users, strict=True):
        await relay.start()
        client = Client(f"http://127.0.0.1:{relay.port}", token=user.token)
        clients.append(client)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(*(c.connect() for c in clients))
    hour = 3600 / SCALE
    await asyncio.sleep(hours * hour)
    intervals = [c.connection.heartbeat.interval * SCALE for c in clients if c.connection]
    pings = [c.connection.pings for c in clients if c.connection]
    for client in clients:
        await client.close()
    for relay in relays:
        await relay.stop()

    def per_hour(group: list[Relay], h: int) -> float:
        since, until = t0 + h * hour, t0 + (h + 1) * hour
        return statistics.mean(bursts(r.times, GAP_S, since, until) for r in group)

    out: dict[str, Any] = {"scale": SCALE, "hours": hours, "devices_per_group": devices}
    for name, group in groups.items():
        out[name] = {
            "events_by_hour": [per_hour(group, h) for h in range(hours)],
            "connects": sum(r.connects for r in group),
            "nat_cuts": sum(r.cut for r in group),
        }
    half = len(clients) // 2
    out["open"]["final_interval_s"] = statistics.mean(intervals[:half])
    out["nat"]["final_interval_s"] = statistics.mean(intervals[half:])
    out["open"]["pings"] = sum(pings[:half])
    out["nat"]["pings"] = sum(pings[half:])
    return out


SCENARIOS = {"signal": signal}
