"""Usage sums and the export format: China-time days, additive sums, 3GPP field names."""

from __future__ import annotations

import csv
import io
import json

import pytest

from wanglai.domain.errors import Invalid
from wanglai.domain.limits import day_of
from wanglai.domain.usage import (
    FIELDS,
    Sponsor,
    Tally,
    UsageRow,
    day_start_ms,
    ms_to_next_day,
    parse_date,
    records,
    to_csv,
    to_json,
)

SPONSOR = Sponsor("sp1", "asp1", 7, 9)
MAY_1 = parse_date("2024-05-01")


def test_a_day_is_a_china_time_day() -> None:
    start = day_start_ms(MAY_1)
    assert start == 1714492800000  # 2024-04-30T16:00:00Z
    assert day_of(start) == MAY_1
    assert day_of(start - 1) == MAY_1 - 1
    assert ms_to_next_day(start) == 24 * 3600 * 1000
    assert ms_to_next_day(start + 24 * 3600 * 1000 - 1) == 1


@pytest.mark.parametrize("bad", ["2024-13-01", "2024-02-30", "20240501", "2024-5-1", "", "x"])
def test_bad_dates_are_refused(bad: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_date(bad)
    assert exc.value.code == "invalid_date"


def test_the_tally_sums_per_day_user_and_device() -> None:
    tally = Tally()
    start = day_start_ms(MAY_1)
    tally.add(start + 5, 1, 10, 100, 200, connects=1)
    tally.add(start + 9, 1, 10, 1, 2, heartbeats=1, pushes=2, requests=3)
    tally.add(start + 9, 1, 11, 5, 6)
    tally.add(start - 1, 1, 10, 7, 8)  # the day before
    rows = {(r.day, r.device_id): r for r in tally.drain()}
    assert rows[(MAY_1, 10)] == UsageRow(MAY_1, 1, 10, 101, 202, 1, 1, 2, 3, start + 5, start + 9)
    assert rows[(MAY_1, 11)].uplink_bytes == 5
    assert rows[(MAY_1 - 1, 10)].downlink_bytes == 8
    assert tally.drain() == []


def test_restored_rows_add_to_what_came_since() -> None:
    tally = Tally()
    start = day_start_ms(MAY_1)
    tally.add(start + 50, 1, 10, 100, 200)
    drained = tally.drain()
    tally.add(start + 70, 1, 10, 1, 1, requests=1)
    tally.restore(drained)
    (row,) = tally.drain()
    assert (row.uplink_bytes, row.downlink_bytes, row.requests) == (101, 201, 1)
    assert (row.first_ms, row.last_ms) == (start + 50, start + 70)


def test_records_name_their_fields_as_3gpp_charging_data_records() -> None:
    start = day_start_ms(MAY_1)
    rows = [
        (
            UsageRow(MAY_1, 2, 21, 10, 20, 1, 2, 3, 4, start + 1000, start + 61_000),
            "+8613800000002",
        ),
        (UsageRow(MAY_1, 1, 11, 30, 40, 0, 0, 0, 1, start, start), "+8613800000001"),
    ]
    recs = records(MAY_1, rows, SPONSOR)
    assert [r.servedMSISDN for r in recs] == ["8613800000001", "8613800000002"]
    first = recs[1]
    assert first.recordOpeningTime == "2024-05-01T00:00:00+08:00"
    assert first.duration == 86400
    assert first.timeOfFirstUsage == "2024-05-01T00:00:01+08:00"
    assert first.timeOfLastUsage == "2024-05-01T00:01:01+08:00"
    assert (first.datavolumeFBCUplink, first.datavolumeFBCDownlink) == (10, 20)
    assert (first.sponsorIdentity, first.applicationServiceProviderIdentity) == ("sp1", "asp1")
    assert (first.ratingGroup, first.serviceIdentifier) == (7, 9)
    assert (first.connects, first.heartbeats, first.pushes, first.requests) == (1, 2, 3, 4)

    table = list(csv.DictReader(io.StringIO(to_csv(recs))))
    assert tuple(table[0]) == FIELDS
    assert table[1]["servedMSISDN"] == "8613800000002"
    assert table[1]["datavolumeFBCDownlink"] == "20"

    doc = json.loads(to_json(MAY_1, recs))
    assert doc["date"] == "2024-05-01"
    assert doc["totals"] == {"datavolumeFBCUplink": 40, "datavolumeFBCDownlink": 60, "records": 2}
    assert doc["records"][1]["servedMSISDN"] == "8613800000002"
    assert set(doc["records"][0]) == set(FIELDS)


def test_an_empty_day_is_a_header_or_an_empty_list() -> None:
    assert to_csv([]).splitlines() == [",".join(FIELDS)]
    assert json.loads(to_json(MAY_1, []))["records"] == []
