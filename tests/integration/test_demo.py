"""``wanglai demo`` seeds people, chats and wallets a newcomer can try, once."""

from __future__ import annotations

from pathlib import Path

from wanglai.app import Container
from wanglai.cli.demo import DEMO_FUNDS, PEOPLE, _seed
from wanglai.services.ledger_check import check_ledger
from wanglai.settings import Settings
from wanglai.store import accounts


async def test_demo_seeds_wallets_once(db_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url, code_pepper=b"demo")
    assert await _seed(settings) is True
    assert await _seed(settings) is False  # a second run adds nothing
    container = Container(settings)
    await container.start()
    try:
        ids = []
        for phone, *_ in PEOPLE:
            row = await container.db.read(accounts.user_by_phone, phone)
            assert row is not None
            ids.append(int(row[0]))
        alice = await container.wallet.balance(ids[0])
        bob = await container.wallet.balance(ids[1])
        assert alice.balance == DEMO_FUNDS - 8_800 - 1_000
        assert bob.balance == DEMO_FUNDS + 8_800
        assert (await check_ledger(container.db)).ok
    finally:
        await container.close()
