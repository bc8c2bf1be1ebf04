"""Usage rows on both databases: additive upserts, and ``wanglai admin usage export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wanglai.domain.usage import UsageRow, day_start_ms, parse_date
from wanglai.services.usage import UsageService
from wanglai.store import usage as usage_store

from .conftest import World
from .test_ledger_cli import invoke

DAY = parse_date("2024-05-01")
START = day_start_ms(DAY)


async def test_flushes_add_to_the_same_row(world: World) -> None:
    db = world.container.db
    await db.write(
        usage_store.add, [UsageRow(DAY, 1, 10, 100, 200, 1, 2, 3, 4, START + 50, START + 60)]
    )
    await db.write(
        usage_store.add,
        [
            UsageRow(DAY, 1, 10, 1, 2, 0, 1, 0, 1, START + 10, START + 20),
            UsageRow(DAY, 1, 11, 5, 5, 1, 0, 0, 0, START, START),
            UsageRow(DAY + 1, 1, 10, 7, 7, 0, 0, 0, 1, START + 86_400_000, START + 86_400_000),
        ],
    )
    rows = {row.device_id: row for row, _ in await db.read(usage_store.day_rows, DAY)}
    assert rows[10] == UsageRow(DAY, 1, 10, 101, 202, 1, 3, 3, 5, START + 10, START + 60)
    assert rows[11].uplink_bytes == 5
    assert len(await db.read(usage_store.day_rows, DAY + 1)) == 1


class FailsOnce:
    """The database, except that its next write fails (a lost connection, a full disk)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.failed = False

    async def write(self, fn: Any, *args: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise OSError("disk full")
        return await self.db.write(fn, *args)


async def test_a_failed_flush_keeps_the_sums_for_the_next(world: World) -> None:
    container = world.container
    flaky: Any = FailsOnce(container.db)
    usage = UsageService(flaky, container.clock, container.settings.usage_sponsor)
    usage.record(1, 10, 100, 200, requests=1)
    with pytest.raises(OSError):
        await usage.flush()
    usage.record(1, 10, 1, 1, requests=1)
    assert await usage.flush() == 1
    (row,) = [r for r, _ in await container.db.read(usage_store.day_rows, _today(world))]
    assert (row.uplink_bytes, row.downlink_bytes, row.requests) == (101, 201, 2)


def _today(world: World) -> int:
    from wanglai.domain.limits import day_of

    return day_of(world.container.clock.now_ms())


async def test_the_cli_exports_csv_and_json(world: World, tmp_path: Path) -> None:
    alice = await world.login("+8613900138000", "")
    await world.container.db.write(
        usage_store.add,
        [
            UsageRow(
                DAY, alice.user_id, alice.device_id, 1000, 2000, 1, 4, 2, 3, START, START + 1000
            )
        ],
    )
    result = await invoke(world, tmp_path, "admin", "usage", "export", "--date", "2024-05-01")
    assert result.exit_code == 0, result.output
    header, line = result.output.splitlines()
    assert header.startswith("servedMSISDN,recordOpeningTime,duration,")
    assert line.startswith("8613900138000,2024-05-01T00:00:00+08:00,86400,")
    out = tmp_path / "usage.json"
    result = await invoke(
        world,
        tmp_path,
        "admin",
        "usage",
        "export",
        "--date",
        "2024-05-01",
        "--format",
        "json",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    (rec,) = json.loads(out.read_text())["records"]
    assert (rec["datavolumeFBCUplink"], rec["datavolumeFBCDownlink"]) == (1000, 2000)
    assert (rec["heartbeats"], rec["pushes"], rec["deviceId"]) == (4, 2, alice.device_id)
    assert rec["sponsorIdentity"] == "wanglai"


async def test_the_cli_refuses_bad_input_with_exit_code_2(world: World, tmp_path: Path) -> None:
    out = tmp_path / "never.csv"
    for args in (
        ["--date", "2024-02-30"],
        ["--date", "yesterday"],
        ["--date", "2024-05-01", "--format", "xml"],
        [],
    ):
        result = await invoke(world, tmp_path, "admin", "usage", "export", *args, "--out", str(out))
        assert result.exit_code == 2, (args, result.output)
        assert not out.exists()
    result = await invoke(world, tmp_path, "admin", "usage", "export", "--date", "2024-02-30")
    assert "YYYY-MM-DD" in result.output
