"""Provisioning users through the real login flow: request a code, read it from sms.log, log in.

Used by the load process. Numbers are valid Chinese mobiles spread over 100 number prefixes, and
requests come from many loopback source addresses, so the server's per-prefix and per-address
SMS limits (raised for the bench) see realistic, bounded buckets.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

CODE_LINE = re.compile(rb"to=(\+\d+) Your Wanglai code is (\d+)\.")
SOURCE_ADDRESSES = 64


@dataclass
class User:
    phone: str
    token: str
    id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def phone_for(index: int) -> str:
    """The index-th bench number: +86 13AB NNNNNNN with AB cycling over 00..99."""
    return f"+8613{index % 100:02d}{index // 100 + 1000:07d}"


def source_address(index: int) -> str:
    return f"127.0.{1 + index // 250 % 250}.{1 + index % 250}"


class SmsLog:
    """Reads login codes from the console SMS channel's file as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.codes: dict[str, str] = {}

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        self.offset += len(chunk)
        data = self.partial + chunk
        complete, _, self.partial = data.rpartition(b"\n")
        for match in CODE_LINE.finditer(complete):
            self.codes[match.group(1).decode()] = match.group(2).decode()

    async def code_for(self, phone: str, timeout_s: float = 10.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.codes.pop(phone, None)
            if code is not None:
                return code
            self._read()
            code = self.codes.pop(phone, None)
            if code is not None:
                return code
            if time.monotonic() > deadline:
                raise TimeoutError(f"no login code for {phone} in {self.path}")
            await asyncio.sleep(0.005)


class Api:
    """A few REST calls over sessions bound to many loopback source addresses."""

    def __init__(self, base: str, sources: int = SOURCE_ADDRESSES) -> None:
        self.base = base
        # No connector limit: WebSockets hold their connection for good; callers bound their
        # own concurrency.
        self.sessions = [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, local_addr=(source_address(i), 0))
            )
            for i in range(sources)
        ]

    def session(self, index: int) -> aiohttp.ClientSession:
        return self.sessions[index % len(self.sessions)]

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        user: User | None = None,
        index: int = 0,
        ok: tuple[int, ...] = (200, 201, 204),
        headers: dict[str, str] | None = None,
    ) -> object:
        headers = {**(user.auth if user else {}), **(headers or {})}
        async with self.session(index).request(
            method, self.base + path, json=body, headers=headers
        ) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            if resp.status not in ok:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {data}")
            return data

    async def exists(self, method: str, path: str, user: User) -> bool:
        """Whether the server has this route at all (any answer but route_not_found/405)."""
        async with self.session(0).request(
            method, self.base + path, json={}, headers=user.auth
        ) as resp:
            body = await resp.read()
            return b"route_not_found" not in body and b"method_not_allowed" not in body


async def login(api: Api, sms: SmsLog, index: int, device: str = "bench") -> User:
    phone = phone_for(index)
    await api.call("POST", "/v1/auth/code", {"phone": phone}, index=index)
    code = await sms.code_for(phone)
    data = await api.call(
        "POST",
        "/v1/auth/login",
        {"phone": phone, "code": code, "device_name": device},
        index=index,
    )
    assert isinstance(data, dict)
    return User(phone, str(data["token"]), int(data["user"]["id"]))


async def provision(
    api: Api,
    sms: SmsLog,
    count: int,
    first: int = 0,
    concurrency: int = 128,
    dm_anyone: bool = False,
    progress: bool = True,
) -> list[User]:
    """``count`` logged-in users (one device each), in index order."""
    users: list[User | None] = [None] * count
    gate = asyncio.Semaphore(concurrency)
    done = 0
    started = time.monotonic()

    async def one(i: int) -> None:
        nonlocal done
        async with gate:
            user = await login(api, sms, first + i)
            if dm_anyone:
                await api.call("PATCH", "/v1/me", {"dm_policy": "anyone"}, user, index=i)
            users[i] = user
            done += 1
            if progress and done % 5000 == 0:
                rate = done / (time.monotonic() - started)
                print(f"  provisioned {done}/{count} users ({rate:.0f}/s)", flush=True)

    await asyncio.gather(*(one(i) for i in range(count)))
    return [u for u in users if u is not None]
