"""kill -9 under load: every acknowledged message survives exactly once, devices catch up."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from .conftest import Server, database_for

LOAD = Path(__file__).with_name("load_sender.py")
PAIRS = 10


@pytest.fixture(params=["sqlite", "postgres"])
def e2e_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The crash test runs on both databases, whatever WANGLAI_E2E_DB says."""
    yield from database_for(request, request.param)


async def login(http: aiohttp.ClientSession, server: Server, phone: str) -> dict[str, object]:
    base = server.base_url
    async with http.post(f"{base}/v1/auth/code", json={"phone": phone}) as r:
        assert r.status == 200
    async with http.post(
        f"{base}/v1/auth/login", json={"phone": phone, "code": server.code_for(phone)}
    ) as r:
        body = await r.json()
    token = body["token"]
    async with http.patch(
        f"{base}/v1/me",
        json={"dm_policy": "anyone"},
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        assert r.status == 200
    return {"id": body["user"]["id"], "token": token}


async def get(http: aiohttp.ClientSession, server: Server, path: str, token: str) -> object:
    async with http.get(server.base_url + path, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def sync_all(
    http: aiohttp.ClientSession, server: Server, token: str, since: int
) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    while True:
        page = await get(http, server, f"/v1/sync?since={since}&limit=5000", token)
        assert isinstance(page, dict)
        events += page["events"]
        since = page["next"]
        if not page["more"]:
            return events


async def test_kill_9_under_load_loses_no_acknowledged_message(
    server: Server, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        people = [await login(http, server, f"+861360000{i:04d}") for i in range(PAIRS * 2)]
        plan = []
        for i in range(PAIRS):
            a, b = people[2 * i], people[2 * i + 1]
            async with http.post(
                f"{server.base_url}/v1/conversations/direct",
                json={"user_id": b["id"]},
                headers={"Authorization": f"Bearer {a['token']}"},
            ) as r:
                conv = (await r.json())["id"]
            plan.append({**a, "conv": conv})
            plan.append({**b, "conv": conv})
        # a device that is partly caught up before the crash
        watcher = people[1]
        plan_path, acks = tmp_path / "plan.json", tmp_path / "acks.log"
        plan_path.write_text(json.dumps(plan))
        load = await asyncio.create_subprocess_exec(
            sys.executable, str(LOAD), server.base_url, str(plan_path), str(acks)
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if acks.exists() and len(acks.read_text().splitlines()) >= 1500:
                    break
            early = await sync_all(http, server, str(watcher["token"]), 0)
            await asyncio.sleep(0.3)
            server.kill()  # SIGKILL while the load is running
            await asyncio.wait_for(load.wait(), 30)
        finally:
            if load.returncode is None:
                load.kill()
                await load.wait()
        acked = [line.split() for line in acks.read_text().splitlines()]
        assert len(acked) >= 500, "the load did not get going before the kill"
        server.start()
        for i in range(PAIRS):
            a = people[2 * i]
            conv = plan[2 * i]["conv"]
            messages: list[dict[str, object]] = []
            before = ""
            while True:
                page = await get(
                    http,
                    server,
                    f"/v1/conversations/{conv}/messages?limit=200{before}",
                    str(a["token"]),
                )
                assert isinstance(page, list)
                messages += page
                if len(page) < 200:
                    break
                before = f"&before={page[-1]['seq']}"
            seqs = sorted(int(m["seq"]) for m in messages)  # type: ignore[call-overload]
            assert seqs == list(range(1, len(seqs) + 1)), "conversation seqs have a gap"
            client_ids = [m["client_id"] for m in messages]
            assert len(client_ids) == len(set(client_ids)), "a message was stored twice"
            by_client = {m["client_id"]: m["seq"] for m in messages}
            for _uid, c, client_id, seq in acked:
                if int(c) == conv:
                    assert by_client.get(client_id) == int(seq), f"acked {client_id} lost"
        # every device catches up with no gap: from scratch, and from its old cursor
        for person in people:
            events = await sync_all(http, server, str(person["token"]), 0)
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        cursor = int(early[-1]["seq"]) if early else 0  # type: ignore[call-overload]
        rest = await sync_all(http, server, str(watcher["token"]), cursor)
        full = await sync_all(http, server, str(watcher["token"]), 0)
        assert early + rest == full
