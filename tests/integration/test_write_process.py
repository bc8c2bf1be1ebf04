"""Message batches committed by the second write process behave like the in-process writer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wanglai.app import Container
from wanglai.bus.local import LocalBus
from wanglai.domain.clock import ManualClock
from wanglai.domain.errors import Conflict, NotFound, RateLimited, WanglaiError
from wanglai.settings import Settings
from wanglai.store import messages as message_store
from wanglai.store.database import SqliteDatabase
from wanglai.store.sql import Op, one

from .conftest import Delivered, RecordingSms, World


@pytest.fixture
async def process_world(tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(
        data_dir=tmp_path, code_pepper=b"p", write_process=True, otp_sends_per_address=1000
    )
    container = Container(settings, clock=ManualClock(), bus=LocalBus(), sms=RecordingSms())
    await container.start()
    delivered = Delivered()
    container.bus.subscribe(delivered)
    try:
        yield World(container, container.clock, container.sms_channel, delivered)  # type: ignore[arg-type]
    finally:
        await container.close()


def test_errors_survive_pickling() -> None:
    import pickle

    for error in (NotFound("x_not_found", "gone"), RateLimited("slow", "wait", 7.5)):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and copy.code == error.code
        assert copy.message == error.message
    assert pickle.loads(pickle.dumps(RateLimited("slow", "wait", 7.5))).retry_after == 7.5


async def test_sends_go_through_the_write_process(process_world: World) -> None:
    world = process_world
    db = world.container.db
    assert getattr(db, "_worker", None) is not None, "the write process should be running"
    alice, bob, eve = await world.user(), await world.user(), await world.user()
    await world.container.accounts.update_profile(bob, dm_policy="anyone")
    m = world.container.messaging
    conv = await m.open_direct(alice.user_id, bob.user_id)
    results = await asyncio.gather(
        *(m.send(alice.user_id, conv, f"c{i}", "text", {"text": f"hello {i}"}) for i in range(200)),
        m.send(eve.user_id, conv, "e", "text", {"text": "intruder"}),
        return_exceptions=True,
    )
    assert isinstance(results[-1], NotFound) and isinstance(results[-1], WanglaiError)
    assert sorted(r.seq for r in results[:-1]) == list(range(1, 201))  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        await m.send(alice.user_id, conv, "c5", "text", {"text": "different"})
    again = await m.send(alice.user_id, conv, "c5", "text", {"text": "hello 5"})
    first = next(r for r in results[:-1] if r.client_id == "c5")  # type: ignore[union-attr]
    assert again == first  # the first message, as stored (a retry is answered with it)
    page = await world.container.sync.since(bob.user_id, 0, limit=500)
    assert [e.message.seq for e in page.events if e.message] == list(range(1, 201))
    assert len(world.delivered.for_user(bob.user_id)) == 200
    # search indexing is portable too, and search finds both indexed and unindexed messages
    assert await db.write(message_store.index_search, 1000) == 200
    await m.send(alice.user_id, conv, "late", "text", {"text": "hello late"})
    found = await m.search(bob.user_id, "hello", None, 100)
    assert len(found) == 100


def _cache_size() -> Op[int]:
    row = yield from one("PRAGMA cache_size")
    assert row is not None
    return int(row[0])


async def test_the_page_cache_is_the_configured_size(tmp_path: Path) -> None:
    db = SqliteDatabase(str(tmp_path / "w.db"), cache_mb=3)
    await db.start()
    try:
        assert await db.read(_cache_size) == -3 * 1024  # negative: KiB, as SQLite counts it
        assert await db.write(_cache_size) == -3 * 1024
    finally:
        await db.close()
    with pytest.raises(ValueError, match="at least 1 MiB"):
        SqliteDatabase(str(tmp_path / "w.db"), cache_mb=0)
