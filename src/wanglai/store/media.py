"""Media records: which blobs exist, who uploaded them, and who may see them.

The bytes live on disk (``services/media.py``); these rows say what they are. A user may see a
blob they uploaded, or one referenced by a message sent in a conversation they are a member of,
after they joined (``media_refs``, filled by ``store/messages.py: append``).
"""

from __future__ import annotations

from wanglai.store.sql import Op, Row, execute, one


def record_upload(digest: str, size: int, mime: str, user_id: int, now_ms: int) -> Op[Row]:
    """Record that ``user_id`` uploaded the blob; returns its stored ``(size, mime)``.

    The first upload of a blob fixes its type; later uploads of the same bytes only add uploaders.
    """
    yield from execute(
        "INSERT INTO media (hash, size, mime, owner_id, created_ms) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (hash) DO NOTHING",
        digest,
        size,
        mime,
        user_id,
        now_ms,
    )
    yield from execute(
        "INSERT INTO media_uploads (hash, user_id, created_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (hash, user_id) DO NOTHING",
        digest,
        user_id,
        now_ms,
    )
    row = yield from one("SELECT size, mime FROM media WHERE hash = ?", digest)
    assert row is not None
    return row


def visible(digest: str, user_id: int) -> Op[Row | None]:
    """``(size, mime)`` of the blob if ``user_id`` may see it, else None (also when unknown)."""
    row = yield from one(
        "SELECT md.size, md.mime FROM media md WHERE md.hash = ? AND ("
        " EXISTS (SELECT 1 FROM media_uploads u WHERE u.hash = md.hash AND u.user_id = ?)"
        " OR EXISTS (SELECT 1 FROM media_refs r JOIN members me ON me.conv_id = r.conv_id"
        " WHERE r.hash = md.hash AND me.user_id = ? AND r.seq > me.from_seq))",
        digest,
        user_id,
        user_id,
    )
    return row
