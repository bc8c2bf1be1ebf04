"""Users, their devices, login codes and the rate-limit log."""

from __future__ import annotations

from collections.abc import Callable

from wanglai.domain import secret
from wanglai.domain.otp import PendingCode
from wanglai.store.sql import Op, Row, Values, all_rows, execute, many, one, scalar

USER_COLUMNS = "id, phone, name, about, dm_policy, created_ms"
# Placeholders (numbers someone texted that have not joined, store/interworking.py) are no
# users to anyone else: these lookups leave them out.


def user_by_phone(phone: str) -> Op[Row | None]:
    row = yield from one(
        f"SELECT {USER_COLUMNS} FROM users WHERE phone = ? AND placeholder = 0", phone
    )
    return row


def user_by_id(user_id: int) -> Op[Row | None]:
    row = yield from one(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = ? AND placeholder = 0", user_id
    )
    return row


def users_by_ids(user_ids: list[int]) -> Op[list[Row]]:
    rows = yield from all_rows(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = ANY(?) AND placeholder = 0",
        Values(sorted(set(user_ids))),
    )
    return rows


def ensure_user(phone: str, name: str, now_ms: int) -> Op[tuple[Row, bool]]:
    """The user with this number, created if new; returns the row and whether it was created.
    A placeholder for the number becomes the account, with the conversations it already has."""
    row = yield from user_by_phone(phone)
    if row is not None:
        return row, False
    joined = yield from one(
        "UPDATE users SET placeholder = 0, name = ?, created_ms = ?"
        f" WHERE phone = ? AND placeholder = 1 RETURNING {USER_COLUMNS}",
        name,
        now_ms,
        phone,
    )
    if joined is not None:
        return joined, True
    created = yield from one(
        f"INSERT INTO users (phone, name, about, dm_policy, seq, created_ms)"
        f" VALUES (?, ?, '', 'friends', 0, ?) RETURNING {USER_COLUMNS}",
        phone,
        name,
        now_ms,
    )
    assert created is not None
    return created, True


def update_profile(
    user_id: int, name: str | None, about: str | None, dm_policy: str | None
) -> Op[Row | None]:
    if name is not None:
        yield from execute("UPDATE users SET name = ? WHERE id = ?", name, user_id)
    if about is not None:
        yield from execute("UPDATE users SET about = ? WHERE id = ?", about, user_id)
    if dm_policy is not None:
        yield from execute("UPDATE users SET dm_policy = ? WHERE id = ?", dm_policy, user_id)
    row = yield from user_by_id(user_id)
    return row


def count_users() -> Op[int]:
    value = yield from scalar("SELECT COUNT(*) FROM users WHERE placeholder = 0")
    return int(value)


def list_users(limit: int, after_id: int) -> Op[list[Row]]:
    rows = yield from all_rows(
        f"SELECT {USER_COLUMNS} FROM users WHERE id > ? AND placeholder = 0 ORDER BY id LIMIT ?",
        after_id,
        limit,
    )
    return rows


# ---------------------------------------------------------------- devices

DEVICE_COLUMNS = "id, user_id, name, created_ms, last_seen_ms, cursor, revoked_ms"


def active_devices(user_id: int) -> Op[list[Row]]:
    rows = yield from all_rows(
        f"SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = ? AND revoked_ms IS NULL"
        " ORDER BY id",
        user_id,
    )
    return rows


def add_device(
    user_id: int, token_hash: bytes, name: str, now_ms: int, limit: int
) -> Op[tuple[int, list[int]]]:
    """Create a device session; the oldest sessions beyond ``limit`` are revoked.

    Returns the new device id and the ids of the devices revoked to make room.
    """
    rows = yield from active_devices(user_id)
    evicted = [int(r[0]) for r in rows[: max(0, len(rows) - limit + 1)]]
    for device_id in evicted:
        yield from execute("UPDATE devices SET revoked_ms = ? WHERE id = ?", now_ms, device_id)
    row = yield from one(
        "INSERT INTO devices (user_id, token_hash, name, created_ms, last_seen_ms, cursor)"
        " VALUES (?, ?, ?, ?, ?, 0) RETURNING id",
        user_id,
        token_hash,
        name,
        now_ms,
        now_ms,
    )
    assert row is not None
    return int(row[0]), evicted


def device_by_token(token_hash: bytes) -> Op[Row | None]:
    """``(device_id, user_id)`` of a live session with this token hash."""
    row = yield from one(
        "SELECT id, user_id FROM devices WHERE token_hash = ? AND revoked_ms IS NULL", token_hash
    )
    return row


def revoke_device(user_id: int, device_id: int, now_ms: int) -> Op[int]:
    changed = yield from execute(
        "UPDATE devices SET revoked_ms = ? WHERE id = ? AND user_id = ? AND revoked_ms IS NULL",
        now_ms,
        device_id,
        user_id,
    )
    return changed


def touch_device(device_id: int, now_ms: int, cursor: int | None) -> Op[None]:
    if cursor is None:
        yield from execute("UPDATE devices SET last_seen_ms = ? WHERE id = ?", now_ms, device_id)
    else:
        yield from execute(
            "UPDATE devices SET last_seen_ms = ?,"
            " cursor = CASE WHEN cursor > ? THEN cursor ELSE ? END WHERE id = ?",
            now_ms,
            cursor,
            cursor,
            device_id,
        )


def count_devices() -> Op[int]:
    value = yield from scalar("SELECT COUNT(*) FROM devices WHERE revoked_ms IS NULL")
    return int(value)


# ---------------------------------------------------------------- login codes


def save_code(phone: str, code_hash: bytes, expires_ms: int) -> Op[None]:
    yield from execute(
        "INSERT INTO login_codes (phone, code_hash, expires_ms, tries) VALUES (?, ?, ?, 0)"
        " ON CONFLICT (phone) DO UPDATE SET code_hash = excluded.code_hash,"
        " expires_ms = excluded.expires_ms, tries = 0",
        phone,
        code_hash,
        expires_ms,
    )


def pending_code(phone: str) -> Op[Row | None]:
    row = yield from one(
        "SELECT code_hash, expires_ms, tries FROM login_codes WHERE phone = ?", phone
    )
    return row


def count_wrong_try(phone: str) -> Op[None]:
    yield from execute("UPDATE login_codes SET tries = tries + 1 WHERE phone = ?", phone)


def drop_code(phone: str) -> Op[None]:
    yield from execute("DELETE FROM login_codes WHERE phone = ?", phone)


def redeem_code(
    phone: str,
    code_hash: bytes,
    check: Callable[[PendingCode | None], None],
    token_hash: bytes,
    device_name: str,
    now_ms: int,
    max_devices: int,
) -> Op[tuple[Row, bool, int, list[int]] | None]:
    """Try a login code; on success consume it, make sure the user exists and open a device.

    ``check`` is the domain rule that raises when the code may not be tried at all. A wrong code
    counts a try and returns ``None`` (the try is committed; that is the point of counting).
    Returns (user row, user created, device id, devices evicted to make room).
    """
    row = yield from pending_code(phone)
    pending = None if row is None else PendingCode(bytes(row[0]), int(row[1]), int(row[2]))
    check(pending)
    assert pending is not None
    if not secret.same(pending.code_hash, code_hash):
        yield from count_wrong_try(phone)
        return None
    yield from drop_code(phone)
    user_row, created = yield from ensure_user(phone, "", now_ms)
    device_id, evicted = yield from add_device(
        int(user_row[0]), token_hash, device_name, now_ms, max_devices
    )
    return user_row, created, device_id, evicted


# ---------------------------------------------------------------- rate limits


def hits_since(buckets: list[str], since_ms: int, newest: int = 1000) -> Op[dict[str, list[int]]]:
    """Each bucket's hits after ``since_ms`` (at most the ``newest`` ones), oldest first.

    Rate rules only need as many hits as their limit, so the read stays small however hard a
    bucket is being hammered.
    """
    found: dict[str, list[int]] = {}
    for bucket in buckets:
        rows = yield from all_rows(
            "SELECT at_ms FROM rate_hits WHERE bucket = ? AND at_ms > ?"
            " ORDER BY at_ms DESC LIMIT ?",
            bucket,
            since_ms,
            newest,
        )
        found[bucket] = sorted(int(r[0]) for r in rows)
    return found


def record_hits(buckets: list[str], now_ms: int, forget_before_ms: int) -> Op[None]:
    yield from many(
        "INSERT INTO rate_hits (bucket, at_ms) VALUES (?, ?)", [(b, now_ms) for b in buckets]
    )
    yield from execute("DELETE FROM rate_hits WHERE at_ms < ?", forget_before_ms)


def issue_code(
    phone: str,
    code_hash: bytes,
    expires_ms: int,
    buckets: list[str],
    now_ms: int,
    window_ms: int,
    newest: int,
    check: Callable[[dict[str, list[int]]], None],
) -> Op[None]:
    """Store a new login code for ``phone`` unless ``check`` (the rate rules, seeing each
    bucket's recent hits) refuses; the hits are recorded in the same transaction, so
    concurrent requests cannot slip past a limit together."""
    seen = yield from hits_since(buckets, now_ms - window_ms, newest)
    check(seen)
    yield from record_hits(buckets, now_ms, now_ms - window_ms)
    yield from save_code(phone, code_hash, expires_ms)
