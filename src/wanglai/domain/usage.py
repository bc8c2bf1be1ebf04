"""Usage records for sponsored ("zero-rated") data: what one subscriber's device sent and
received on one day, and the charging-data record an operator reads it as.

Pure: the gateway counts, :class:`Tally` sums in memory, the store adds the sums to the
``usage_daily`` rows, and :func:`records` / :func:`to_csv` / :func:`to_json` turn those rows into
the export of ``wanglai admin usage export`` (docs/operations.md, Usage records).

Days are China-time days (UTC+8), the same rule as the wallet's daily caps
(:func:`wanglai.domain.limits.day_of`): a day runs from 00:00 to 24:00 +08:00.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import msgspec

from wanglai.domain.errors import Invalid
from wanglai.domain.limits import CHINA_OFFSET_MS, DAY_MS, day_of

CHINA = timezone(timedelta(milliseconds=CHINA_OFFSET_MS))
FORMATS = ("csv", "json")

# Positions in a tally entry.
UP, DOWN, CONNECTS, HEARTBEATS, PUSHES, REQUESTS, FIRST, LAST = range(8)
COUNTS = 6
"""The additive fields come first; FIRST and LAST are the earliest and latest activity (ms)."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One (day, user, device) sum: what is added to, or read from, ``usage_daily``."""

    day: int
    user_id: int
    device_id: int
    uplink_bytes: int
    downlink_bytes: int
    connects: int
    heartbeats: int
    pushes: int
    requests: int
    first_ms: int
    last_ms: int


class Tally:
    """Usage summed in memory per (day, user, device) until the next flush.

    ``add`` is a dictionary lookup and a few integer additions; nothing else happens per
    exchange. Bytes no subscriber can be named for (requests without a valid token) are summed
    apart in ``unattributed_up`` / ``unattributed_down``: they are in no subscriber's record.
    """

    __slots__ = ("entries", "unattributed_down", "unattributed_up")

    def __init__(self) -> None:
        self.entries: dict[tuple[int, int, int], list[int]] = {}
        self.unattributed_up = 0
        self.unattributed_down = 0

    def add(
        self,
        now_ms: int,
        user_id: int,
        device_id: int,
        up: int,
        down: int,
        connects: int = 0,
        heartbeats: int = 0,
        pushes: int = 0,
        requests: int = 0,
    ) -> None:
        key = (day_of(now_ms), user_id, device_id)
        entry = self.entries.get(key)
        if entry is None:
            self.entries[key] = [up, down, connects, heartbeats, pushes, requests, now_ms, now_ms]
            return
        entry[UP] += up
        entry[DOWN] += down
        entry[CONNECTS] += connects
        entry[HEARTBEATS] += heartbeats
        entry[PUSHES] += pushes
        entry[REQUESTS] += requests
        entry[LAST] = now_ms  # the clock does not go back between two adds of one process

    def drain(self) -> list[UsageRow]:
        """Everything summed since the last drain; the tally starts again from zero."""
        entries, self.entries = self.entries, {}
        return [UsageRow(*key, *entry) for key, entry in entries.items() if any(entry[:COUNTS])]

    def restore(self, rows: Sequence[UsageRow]) -> None:
        """Put drained rows back (their write failed); they are added to what came since."""
        for row in rows:
            key = (row.day, row.user_id, row.device_id)
            entry = self.entries.get(key)
            values = [
                row.uplink_bytes,
                row.downlink_bytes,
                row.connects,
                row.heartbeats,
                row.pushes,
                row.requests,
                row.first_ms,
                row.last_ms,
            ]
            if entry is None:
                self.entries[key] = values
                continue
            for i in range(COUNTS):
                entry[i] += values[i]
            entry[FIRST] = min(entry[FIRST], row.first_ms)
            entry[LAST] = max(entry[LAST], row.last_ms)


def parse_date(text: str) -> int:
    """A ``YYYY-MM-DD`` China-time date as its day number (as :func:`day_of` counts)."""
    try:
        if not _DATE.match(text):
            raise ValueError(text)
        when = date.fromisoformat(text)
    except ValueError:
        raise Invalid("invalid_date", "The date is YYYY-MM-DD, e.g. 2024-05-01.") from None
    return (when - date(1970, 1, 1)).days


def day_start_ms(day: int) -> int:
    """00:00 China time of a day number, in ms since the epoch."""
    return day * DAY_MS - CHINA_OFFSET_MS


def ms_to_next_day(now_ms: int) -> int:
    """Milliseconds from ``now_ms`` to the next China-time midnight (a record boundary)."""
    return day_start_ms(day_of(now_ms) + 1) - now_ms


def china_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, CHINA).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Sponsor:
    """Who sponsors the data, as the operator's charging system names them (settings)."""

    sponsor_identity: str
    application_service_provider_identity: str
    rating_group: int
    service_identifier: int


class Record(msgspec.Struct, omit_defaults=False):
    """One subscriber's device on one day. Field names are those of 3GPP TS 32.298's PGW-CDR
    (``servedMSISDN``, ``recordOpeningTime``, ``duration``) and of its service data container
    ``ChangeOfServiceCondition`` (the rest up to ``datavolumeFBCDownlink``); the signalling
    counts and the Wanglai ids after them have no 3GPP field."""

    servedMSISDN: str
    recordOpeningTime: str
    duration: int
    timeOfFirstUsage: str
    timeOfLastUsage: str
    ratingGroup: int
    serviceIdentifier: int
    sponsorIdentity: str
    applicationServiceProviderIdentity: str
    datavolumeFBCUplink: int
    datavolumeFBCDownlink: int
    connects: int
    heartbeats: int
    pushes: int
    requests: int
    userId: int
    deviceId: int


FIELDS = tuple(Record.__struct_fields__)


def msisdn(phone: str | None) -> str:
    """An E.164 number as an MSISDN: country code and national number, digits only."""
    return (phone or "").lstrip("+")


def records(
    day: int, rows: Sequence[tuple[UsageRow, str | None]], sponsor: Sponsor
) -> list[Record]:
    """The export's records for ``day``: one per subscriber and device, by MSISDN then device."""
    opening = china_time(day_start_ms(day))
    out = [
        Record(
            servedMSISDN=msisdn(phone),
            recordOpeningTime=opening,
            duration=DAY_MS // 1000,
            timeOfFirstUsage=china_time(row.first_ms),
            timeOfLastUsage=china_time(row.last_ms),
            ratingGroup=sponsor.rating_group,
            serviceIdentifier=sponsor.service_identifier,
            sponsorIdentity=sponsor.sponsor_identity,
            applicationServiceProviderIdentity=sponsor.application_service_provider_identity,
            datavolumeFBCUplink=row.uplink_bytes,
            datavolumeFBCDownlink=row.downlink_bytes,
            connects=row.connects,
            heartbeats=row.heartbeats,
            pushes=row.pushes,
            requests=row.requests,
            userId=row.user_id,
            deviceId=row.device_id,
        )
        for row, phone in rows
        if row.day == day
    ]
    out.sort(key=lambda r: (r.servedMSISDN, r.deviceId))
    return out


def to_csv(recs: Sequence[Record]) -> str:
    """A header line and one line per record (RFC 4180, CRLF line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for rec in recs:
        writer.writerow([getattr(rec, name) for name in FIELDS])
    return buf.getvalue()


def to_json(day: int, recs: Sequence[Record]) -> str:
    """``{"date", "recordOpeningTime", "duration", "records": [...]}`` with totals."""
    doc: dict[str, Any] = {
        "date": (date(1970, 1, 1) + timedelta(days=day)).isoformat(),
        "recordOpeningTime": china_time(day_start_ms(day)),
        "duration": DAY_MS // 1000,
        "totals": {
            "datavolumeFBCUplink": sum(r.datavolumeFBCUplink for r in recs),
            "datavolumeFBCDownlink": sum(r.datavolumeFBCDownlink for r in recs),
            "records": len(recs),
        },
        "records": list(recs),
    }
    return msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n"
