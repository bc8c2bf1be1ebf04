"""Conversations and their members: direct pairs, groups, read pointers, the conversation list."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wanglai.domain.policy import PeerFacts
from wanglai.store import events
from wanglai.store.sql import Op, Row, Values, all_rows, execute, one, scalar


def direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"


def open_direct(user_id: int, peer_id: int, now_ms: int) -> Op[tuple[int, bool]]:
    """The direct conversation of two users, created if missing; returns (id, created)."""
    key = direct_key(user_id, peer_id)
    found = yield from scalar("SELECT id FROM conversations WHERE direct_key = ?", key)
    if found is not None:
        return int(found), False
    row = yield from one(
        "INSERT INTO conversations (kind, direct_key, title, announcement, approval_required,"
        " seq, created_ms) VALUES ('direct', ?, '', '', 0, 0, ?) RETURNING id",
        key,
        now_ms,
    )
    assert row is not None
    conv_id = int(row[0])
    for uid in sorted({user_id, peer_id}):
        yield from execute(
            "INSERT INTO members (conv_id, user_id, role, joined_ms, from_seq, read_seq, muted)"
            " VALUES (?, ?, 'member', ?, 0, 0, 0)",
            conv_id,
            uid,
            now_ms,
        )
    return conv_id, True


def conversation(conv_id: int) -> Op[Row | None]:
    """id, kind, title, announcement, owner_id, approval_required, seq, created_ms."""
    row = yield from one(
        "SELECT id, kind, title, announcement, owner_id, approval_required, seq, created_ms"
        " FROM conversations WHERE id = ?",
        conv_id,
    )
    return row


def membership(conv_id: int, user_id: int) -> Op[Row | None]:
    """role, joined_ms, from_seq, read_seq, muted of a member, or None."""
    row = yield from one(
        "SELECT role, joined_ms, from_seq, read_seq, muted FROM members"
        " WHERE conv_id = ? AND user_id = ?",
        conv_id,
        user_id,
    )
    return row


def members(conv_id: int) -> Op[list[Row]]:
    """user_id, role, joined_ms, read_seq, muted of every member."""
    rows = yield from all_rows(
        "SELECT user_id, role, joined_ms, read_seq, muted FROM members WHERE conv_id = ?"
        " ORDER BY joined_ms, user_id",
        conv_id,
    )
    return rows


def member_ids(conv_id: int) -> Op[list[int]]:
    rows = yield from all_rows("SELECT user_id FROM members WHERE conv_id = ?", conv_id)
    return [int(r[0]) for r in rows]


def open_directs(pairs: Sequence[tuple[int, int]], now_ms: int) -> Op[dict[tuple[int, int], int]]:
    """``open_direct`` for many pairs: the conversation id of each pair, created if missing
    (found with one query; only new ones are made one by one)."""
    keys = {pair: direct_key(*pair) for pair in pairs}
    rows = yield from all_rows(
        "SELECT direct_key, id FROM conversations WHERE direct_key = ANY(?)",
        Values(sorted(set(keys.values()))),
    )
    by_key = {str(r[0]): int(r[1]) for r in rows}
    out: dict[tuple[int, int], int] = {}
    for pair, key in keys.items():
        if key not in by_key:
            by_key[key], _created = yield from open_direct(pair[0], pair[1], now_ms)
        out[pair] = by_key[key]
    return out


def peer_facts(pairs: set[tuple[int, int]]) -> Op[dict[tuple[int, int], PeerFacts]]:
    """Blocks, friendship and the peer's policy for each (sender, peer) pair whose peer exists
    (a pair with an unknown peer is left out), read set-wise for a whole batch of sends."""
    if not pairs:
        return {}
    people = Values(sorted({u for pair in pairs for u in pair}))
    blocks = yield from all_rows(
        "SELECT user_id, blocked_id FROM blocks WHERE user_id = ANY(?) AND blocked_id = ANY(?)",
        people,
        people,
    )
    friends = yield from all_rows(
        "SELECT user_id, friend_id FROM friendships WHERE user_id = ANY(?) AND friend_id = ANY(?)",
        people,
        people,
    )
    policies = yield from all_rows(
        "SELECT id, dm_policy, placeholder FROM users WHERE id = ANY(?)", people
    )
    blocked = {(int(a), int(b)) for a, b in blocks}
    friendly = {(int(a), int(b)) for a, b in friends}
    policy = {int(u): str(p) for u, p, _ in policies}
    placeholders = {int(u) for u, _, flag in policies if flag}
    # Only a pair the DM policy would refuse asks whether an SMS thread keeps it open.
    asking = [
        (me, peer)
        for me, peer in pairs
        if policy.get(peer) == "friends" and (me, peer) not in friendly and peer not in placeholders
    ]
    threads: set[tuple[int, int]] = set()
    if asking:
        askers = Values(sorted({u for pair in asking for u in pair}))
        rows = yield from all_rows(
            "SELECT user_id, sender_id FROM sms_threads WHERE user_id = ANY(?)"
            " AND sender_id = ANY(?)",
            askers,
            askers,
        )
        threads = {(int(a), int(b)) for a, b in rows}
    return {
        (me, peer): PeerFacts(
            (me, peer) in blocked,
            (peer, me) in blocked,
            (me, peer) in friendly,
            policy.get(peer, "friends"),
            peer in placeholders,
            (me, peer) in threads or (peer, me) in threads,
        )
        for me, peer in pairs
        if peer in policy
    }


def list_for_user(user_id: int, limit: int, only: int | None = None) -> Op[list[Row]]:
    """The user's conversations (or, with ``only``, that one of them), most recent first.

    Columns: id, kind, title, seq, read_seq, muted, role, unread, peer_id, then the last
    message's seq, sender_id, kind, body, created_ms, recalled_ms (NULLs when empty), then, in
    a direct conversation, the peer's delivered_seq and read_seq.
    """
    rows = yield from all_rows(
        "SELECT c.id, c.kind, c.title, c.seq, m.read_seq, m.muted, m.role,"
        " (SELECT COUNT(*) FROM messages x WHERE x.conv_id = c.id AND x.seq > m.read_seq"
        "   AND x.seq > m.from_seq AND x.sender_id <> ? AND x.recalled_ms IS NULL),"
        " p.user_id,"
        " l.seq, l.sender_id, l.kind, l.body, l.created_ms, l.recalled_ms,"
        " p.delivered_seq, p.read_seq, l.client_id"
        " FROM members m JOIN conversations c ON c.id = m.conv_id"
        " LEFT JOIN messages l ON l.conv_id = c.id AND l.seq = c.seq"
        " LEFT JOIN members p ON c.kind = 'direct' AND p.conv_id = c.id AND p.user_id <> m.user_id"
        " WHERE m.user_id = ?"
        + (" AND c.id = ?" if only is not None else "")
        + " ORDER BY COALESCE(l.created_ms, c.created_ms) DESC, c.id DESC LIMIT ?",
        user_id,
        user_id,
        *([only] if only is not None else []),
        limit,
    )
    return rows


def mark(
    conv_id: int,
    user_id: int,
    seq: int,
    pointer: str,
    now: int,
    audience: Callable[[str, list[int]], list[int]],
) -> Op[tuple[int, list[tuple[int, int]]] | None]:
    """Move the user's ``read`` or ``delivered`` pointer up to ``seq`` (never back, never past
    the conversation's newest message); reading also counts as delivery.

    Returns (the pointer's value, event deliveries), or None when the user is not a member.
    ``audience(conv_kind, member_ids)`` is the domain rule for whose logs get the receipt.
    """
    member = yield from membership(conv_id, user_id)
    if member is None:
        return None
    conv = yield from conversation(conv_id)
    assert conv is not None
    upto = min(seq, int(conv[6]))
    columns = ("read_seq", "delivered_seq") if pointer == "read" else ("delivered_seq",)
    changed = 0
    for column in columns:
        changed += yield from execute(
            f"UPDATE members SET {column} = ? WHERE conv_id = ? AND user_id = ? AND {column} < ?",
            upto,
            conv_id,
            user_id,
            upto,
        )
    current = yield from scalar(
        f"SELECT {columns[0]} FROM members WHERE conv_id = ? AND user_id = ?", conv_id, user_id
    )
    if not changed:
        return int(current), []
    ids = yield from member_ids(conv_id)
    told = audience(str(conv[1]), ids)
    if not told:
        return int(current), []
    data = f'{{"conv":{conv_id},"user":{user_id},"seq":{int(current)}}}'
    deliveries = yield from events.append(told, pointer, conv_id, None, data, now)
    return int(current), deliveries


def set_muted(
    conv_id: int, user_id: int, muted: bool, now: int
) -> Op[list[tuple[int, int]] | None]:
    """Mute or unmute a conversation for one member; their own devices hear of it.

    Returns the event deliveries, or None when the user is not a member.
    """
    changed = yield from execute(
        "UPDATE members SET muted = ? WHERE conv_id = ? AND user_id = ?",
        int(muted),
        conv_id,
        user_id,
    )
    if not changed:
        return None
    data = f'{{"conv":{conv_id},"change":"muted","muted":{"true" if muted else "false"}}}'
    deliveries = yield from events.append(
        [user_id], "conversation.updated", conv_id, None, data, now
    )
    return deliveries
