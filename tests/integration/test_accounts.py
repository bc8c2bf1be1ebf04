"""Accounts on both databases: code limits under concurrency, devices, profiles."""

from __future__ import annotations

import asyncio

import pytest

from wanglai.domain.errors import Invalid, NotFound, RateLimited, Unauthorized
from wanglai.services.accounts import Session
from wanglai.store import accounts as account_store

from .conftest import World


async def test_code_limit_holds_under_concurrent_requests(world: World) -> None:
    phone = "+8613512345678"
    results = await asyncio.gather(
        *(world.container.accounts.request_code(phone, f"10.1.1.{i}") for i in range(10)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if r == 300) == 3
    assert all(isinstance(r, RateLimited) for r in results if r != 300)
    assert len([t for t in world.sms.sent if t[0] == phone]) == 3
    hits = await world.container.db.read(account_store.hits_since, [f"otp:n:{phone}"], 0)
    assert len(hits[f"otp:n:{phone}"]) == 3


async def test_codes_are_single_use_and_stored_hashed(world: World) -> None:
    phone = "+8613512340000"
    await world.container.accounts.request_code(phone, "10.0.0.1")
    code = world.sms.last_code(phone)
    row = await world.container.db.read(account_store.pending_code, phone)
    assert row is not None and code.encode() not in bytes(row[0])
    await world.container.accounts.login(phone, code, "phone")
    with pytest.raises(Invalid) as info:
        await world.container.accounts.login(phone, code, "again")
    assert info.value.code == "otp_not_requested"


async def test_devices_list_revoke_and_profile(world: World) -> None:
    alice = await world.user("alice")
    second = await world.login((await world.container.accounts.me(alice)).phone, device="laptop")
    acc = world.container.accounts
    devices = await acc.devices(alice)
    assert [(d.name, d.current) for d in devices] == [("test", True), ("laptop", False)]
    await acc.revoke(alice, second.device_id)
    assert [d.id for d in await acc.devices(alice)] == [alice.device_id]
    with pytest.raises(NotFound):
        await acc.revoke(alice, second.device_id)
    bob = await world.user()
    with pytest.raises(NotFound):
        await acc.revoke(bob, alice.device_id)  # someone else's device
    assert [d.id for d in await acc.devices(alice)] == [alice.device_id]
    me = await acc.update_profile(alice, name="Alice Z", about="hi", dm_policy="anyone")
    assert (me.name, me.about, me.dm_policy) == ("Alice Z", "hi", "anyone")
    for bad in ({"name": "x" * 65}, {"about": "x" * 281}, {"dm_policy": "nobody"}):
        with pytest.raises(Invalid):
            await acc.update_profile(alice, **bad)  # type: ignore[arg-type]
    assert (await acc.me(alice)).name == "Alice Z"
    with pytest.raises(Unauthorized):
        await acc.me(Session(424242, 1))
