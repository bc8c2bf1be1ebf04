"""Operator queries: installation-wide counts and lookups by device (``wanglai admin``)."""

from __future__ import annotations

from wanglai.store import accounts
from wanglai.store.sql import Op, Row, one, scalar


def counts() -> Op[dict[str, int]]:
    """Users, live devices, conversations (and how many are groups), messages and events."""
    found: dict[str, int] = {}
    found["users"] = yield from accounts.count_users()
    found["active_devices"] = yield from accounts.count_devices()
    for key, sql in (
        ("conversations", "SELECT COUNT(*) FROM conversations"),
        ("groups", "SELECT COUNT(*) FROM conversations WHERE kind = 'group'"),
        ("messages", "SELECT COUNT(*) FROM messages"),
        ("events", "SELECT COUNT(*) FROM events"),
    ):
        value = yield from scalar(sql)
        found[key] = int(value or 0)
    return found


def device(device_id: int) -> Op[Row | None]:
    """A device by id, revoked or not, in ``accounts.DEVICE_COLUMNS`` order."""
    row = yield from one(f"SELECT {accounts.DEVICE_COLUMNS} FROM devices WHERE id = ?", device_id)
    return row


def revoke_device(device_id: int, now_ms: int) -> Op[Row | None]:
    """Revoke a live device whoever owns it; returns its row, or None if none was live."""
    row = yield from device(device_id)
    if row is None or row[6] is not None:
        return None
    yield from accounts.revoke_device(int(row[1]), device_id, now_ms)
    return row


def user_facts(user_id: int) -> Op[dict[str, int]]:
    """How many conversations a user is in and how long their event log is."""
    convs = yield from scalar("SELECT COUNT(*) FROM members WHERE user_id = ?", user_id)
    head = yield from scalar("SELECT seq FROM users WHERE id = ?", user_id)
    return {"conversations": int(convs or 0), "events": int(head or 0)}
