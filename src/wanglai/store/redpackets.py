"""Red packets and their claims: sending (wallet to escrow, the packet, its card in the chat),
claiming set-wise (one packet read and one ledger apply for a whole batch of claims), expiry
(the unclaimed rest back to the sender) and the reads behind a packet's view.

Claims of one packet are serialised: on SQLite by the single writer, on PostgreSQL by locking
the packet rows (``FOR UPDATE``, in id order) before anything else a claim touches; expiry
locks them the same way, so a claim and the refund never both take the same money.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec

from wanglai.domain import limits as spend_rules
from wanglai.domain import redpacket as rules
from wanglai.domain.errors import NotFound, WanglaiError
from wanglai.domain.ledger import Request, Transfer
from wanglai.domain.policy import check_direct
from wanglai.domain.redpacket import Claim, Packet
from wanglai.store import events, ledger, messages, wallet
from wanglai.store.conversations import peer_facts
from wanglai.store.events import Notice, Sent
from wanglai.store.ledger import Loaded
from wanglai.store.messages import Appended
from wanglai.store.sql import Op, Row, Values, all_rows, batched, execute, many, one

PACKET_COLUMNS = (
    "p.id, p.sender_id, p.conv_id, p.msg_seq, p.kind, p.amount, p.currency, p.shares, p.splits,"
    " p.claimed_count, p.claimed_amount, p.greeting, p.state, p.created_ms, p.expires_ms,"
    " p.refund_transfer_id"
)
_encode = msgspec.json.Encoder().encode

CLAIMED = "redpacket.claimed"
EXPIRED = "redpacket.expired"


@dataclass(frozen=True)
class PacketRow:
    id: int
    sender_id: int
    conv_id: int
    msg_seq: int
    kind: str
    amount: int
    currency: str
    shares: int
    splits: list[int]
    claimed_count: int
    claimed_amount: int
    greeting: str
    state: str
    created_ms: int
    expires_ms: int
    refund_transfer_id: int | None


def _packet_row(r: Row) -> PacketRow:
    return PacketRow(
        int(r[0]),
        int(r[1]),
        int(r[2]),
        int(r[3]),
        str(r[4]),
        int(r[5]),
        str(r[6]),
        int(r[7]),
        [int(x) for x in json.loads(r[8])],
        int(r[9]),
        int(r[10]),
        str(r[11]),
        str(r[12]),
        int(r[13]),
        int(r[14]),
        None if r[15] is None else int(r[15]),
    )


def _ref(packet_id: int) -> str:
    return f"redpacket:{packet_id}"


# ---------------------------------------------------------------- sending


def chat_facts(conv_id: int, user_id: int) -> Op[tuple[str, int] | None]:
    """The conversation's kind and its number of members, if ``user_id`` is one of them; in a
    one-to-one chat, raises if the other person does not take the user's messages."""
    row = yield from one(
        "SELECT c.kind, (SELECT COUNT(*) FROM members a WHERE a.conv_id = c.id)"
        " FROM conversations c JOIN members m ON m.conv_id = c.id AND m.user_id = ?"
        " WHERE c.id = ?",
        user_id,
        conv_id,
    )
    if row is None:
        return None
    chat = str(row[0])
    if chat == rules.DIRECT:
        peer = yield from one(
            "SELECT user_id FROM members WHERE conv_id = ? AND user_id <> ?", conv_id, user_id
        )
        if peer is not None:
            facts = yield from peer_facts({(user_id, int(peer[0]))})
            found = facts.get((user_id, int(peer[0])))
            if found is not None:
                check_direct(found)
    return chat, int(row[1])


@dataclass(frozen=True)
class NewPacket:
    sender_id: int
    conv_id: int
    kind: str
    amount: int
    currency: str
    splits: tuple[int, ...]
    """Drawn by the service before the write (``domain.redpacket.split``)."""
    greeting: str
    escrow_id: int
    limits: rules.PacketLimits
    spend_limits: spend_rules.SpendLimits
    now_ms: int


@dataclass(frozen=True)
class SentPacket:
    packet: PacketRow
    card: Appended
    """The packet's card in the conversation, for the service to push to the members."""
    sent: Sent


def send(p: NewPacket) -> Op[SentPacket]:
    """Move the amount from the sender's wallet to escrow, store the packet with its shares and
    put its card in the chat, in one transaction; the limits are checked again here against the
    chat as it is now."""
    facts = yield from chat_facts(p.conv_id, p.sender_id)
    if facts is None:
        raise NotFound("conversation_not_found", "No such conversation.")
    chat, members = facts
    rules.check_packet(p.kind, p.amount, len(p.splits), chat, members, p.limits)
    assert sum(p.splits) == p.amount
    payer = yield from wallet.spend(p.sender_id, p.amount, p.now_ms, p.spend_limits)
    expires = p.now_ms + p.limits.expiry_ms
    row = yield from one(
        "INSERT INTO red_packets (sender_id, conv_id, msg_seq, kind, amount, currency, shares,"
        " splits, claimed_count, claimed_amount, greeting, state, created_ms, expires_ms)"
        " VALUES (?, ?, 0, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?) RETURNING id",
        p.sender_id,
        p.conv_id,
        p.kind,
        p.amount,
        p.currency,
        len(p.splits),
        json.dumps(list(p.splits)),
        p.greeting,
        rules.OPEN,
        p.now_ms,
        expires,
    )
    assert row is not None
    packet_id = int(row[0])
    move = Request(
        payer.account_id, p.escrow_id, p.amount, p.currency, "redpacket", ref=_ref(packet_id)
    )
    transfers, loaded = yield from ledger.apply([move], p.now_ms)
    body = {"packet": packet_id, "kind": p.kind, "shares": len(p.splits), "greeting": p.greeting}
    card = yield from messages.append_card(
        p.conv_id, p.sender_id, "redpacket", _encode(body).decode(), p.now_ms
    )
    msg_seq = int(card.message[1])
    yield from execute("UPDATE red_packets SET msg_seq = ? WHERE id = ?", msg_seq, packet_id)
    sent = yield from events.notify(wallet.movement_notices(loaded, transfers), p.now_ms)
    packet = PacketRow(
        packet_id,
        p.sender_id,
        p.conv_id,
        msg_seq,
        p.kind,
        p.amount,
        p.currency,
        len(p.splits),
        list(p.splits),
        0,
        0,
        p.greeting,
        rules.OPEN,
        p.now_ms,
        expires,
        None,
    )
    return SentPacket(packet, card, sent)


# ---------------------------------------------------------------- claiming


@dataclass(frozen=True)
class ClaimRequest:
    packet_id: int
    user_id: int
    escrow_id: int
    now_ms: int


@dataclass(frozen=True)
class Claimed:
    claim: Claim
    new: bool
    """False when this is the claimant's earlier claim, answered again."""
    state: str
    claimed_count: int
    shares: int
    sent: Sent


def claim(item: ClaimRequest) -> Op[Claimed]:
    """One claim; see :func:`claim_many`. Raises the error that refused it."""
    [outcome] = yield from claim_many([item])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def claim_many(items: list[ClaimRequest]) -> Op[list[Claimed | WanglaiError]]:
    """Claims, set-wise: the group-commit writer hands a whole batch of claims here, so a storm
    of claimers on one packet costs one packet read, one ledger apply and a few inserts per
    batch, however many claim at once. Each claim gets its own outcome, in order: the claim
    (a second claim of the same person answers with the first), or the error that refused it
    (``packet_not_found``, ``packet_empty``, ``packet_expired``, ``own_packet``)."""
    packets = yield from _lock_packets(sorted({it.packet_id for it in items}))
    users = Values(sorted({it.user_id for it in items}))
    found = [p for p, _ in packets.values()]
    conv_ids = Values(sorted({row.conv_id for row in found}))
    member_rows = yield from all_rows(
        "SELECT conv_id, user_id FROM members WHERE conv_id = ANY(?) AND user_id = ANY(?)",
        conv_ids,
        users,
    )
    members = {(int(r[0]), int(r[1])) for r in member_rows}
    claim_rows = yield from all_rows(
        "SELECT packet_id, user_id, share_index, amount, created_ms FROM red_packet_claims"
        " WHERE packet_id = ANY(?) AND user_id = ANY(?)",
        Values(sorted(packets)),
        users,
    )
    for r in claim_rows:
        rule = packets[int(r[0])][1]
        rule.claims[int(r[1])] = Claim(int(r[1]), int(r[2]), int(r[3]), int(r[4]))
    # decide each claim in order; the packets hand out their next shares as they go
    outcomes: list[Claimed | WanglaiError] = []
    new: list[tuple[int, ClaimRequest, Claimed]] = []
    for item in items:
        entry = packets.get(item.packet_id)
        try:
            if entry is None:
                raise rules.not_found()
            row, rule = entry
            made, fresh = rule.claim(
                item.user_id, (row.conv_id, item.user_id) in members, item.now_ms
            )
        except WanglaiError as refused:
            outcomes.append(refused)
            continue
        claimed = Claimed(made, fresh, rule.state, rule.claimed_count, row.shares, [])
        if fresh:
            new.append((len(outcomes), item, claimed))
        outcomes.append(claimed)
    if not new:
        return outcomes
    # the money: escrow to each new claimant's wallet, one linked apply for the batch
    accounts = yield from _wallets(new, packets)
    now_ms = max(item.now_ms for _, item, _ in new)
    requests = [
        Request(
            item.escrow_id,
            accounts[item.user_id],
            c.claim.amount,
            packets[item.packet_id][0].currency,
            "redpacket.claim",
            ref=_ref(item.packet_id),
        )
        for _, item, c in new
    ]
    transfers, loaded = yield from ledger.apply(requests, now_ms)
    yield from many(
        "INSERT INTO red_packet_claims (packet_id, user_id, share_index, amount, transfer_id,"
        " created_ms) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (item.packet_id, c.claim.user_id, c.claim.share_index, c.claim.amount, t.id, c.claim.at)
            for (_, item, c), t in zip(new, transfers, strict=True)
        ],
    )
    changed = sorted({item.packet_id for _, item, _ in new})
    yield from many(
        "UPDATE red_packets SET claimed_count = ?, claimed_amount = ?, state = ? WHERE id = ?",
        [
            (rule.claimed_count, rule.claimed_amount, rule.state, pid)
            for pid in changed
            for rule in (packets[pid][1],)
        ],
    )
    # the events: the claimant and the sender hear of the claim, the claimant of the money
    per_claim: list[list[Notice]] = []
    for (_, item, c), t in zip(new, transfers, strict=True):
        row = packets[item.packet_id][0]
        data = {
            "packet": row.id,
            "conv": row.conv_id,
            "user": c.claim.user_id,
            "amount": c.claim.amount,
            "claimed_count": c.claimed_count,
            "shares": row.shares,
            "state": c.state,
        }
        notices = [Notice([item.user_id, row.sender_id], CLAIMED, data, row.conv_id)]
        per_claim.append(notices + wallet.movement_notices(loaded, [t]))
    sent = yield from events.notify_many([n for group in per_claim for n in group], now_ms)
    start = 0
    for (index, _, c), group in zip(new, per_claim, strict=True):
        mine = sent[start : start + len(group)]
        start += len(group)
        outcomes[index] = Claimed(c.claim, True, c.state, c.claimed_count, c.shares, mine)
    return outcomes


batched(claim, claim_many)


def _lock_packets(packet_ids: list[int]) -> Op[dict[int, tuple[PacketRow, Packet]]]:
    """The packets, with their conversation's kind, locked in id order on PostgreSQL."""
    if not packet_ids:
        return {}
    rows = yield from all_rows(
        f"SELECT {PACKET_COLUMNS}, c.kind FROM red_packets p"
        " JOIN conversations c ON c.id = p.conv_id WHERE p.id = ANY(?)",
        Values(packet_ids),
        pg_sql=f"SELECT {PACKET_COLUMNS}, c.kind FROM red_packets p"
        " JOIN conversations c ON c.id = p.conv_id WHERE p.id = ANY(?)"
        " ORDER BY p.id FOR UPDATE OF p",
    )
    out: dict[int, tuple[PacketRow, Packet]] = {}
    for r in rows:
        row = _packet_row(r)
        out[row.id] = (
            row,
            Packet(
                row.id,
                row.sender_id,
                str(r[16]),
                row.splits,
                row.claimed_count,
                row.claimed_amount,
                row.state,
                row.expires_ms,
            ),
        )
    return out


def _wallets(
    new: list[tuple[int, ClaimRequest, Claimed]], packets: dict[int, tuple[PacketRow, Packet]]
) -> Op[dict[int, int]]:
    """Each new claimant's wallet account, opening the wallets of people never paid before."""
    rows = yield from all_rows(
        "SELECT user_id, account_id FROM wallets WHERE user_id = ANY(?)",
        Values(sorted({item.user_id for _, item, _ in new})),
    )
    accounts = {int(r[0]): int(r[1]) for r in rows}
    for _, item, c in new:
        if item.user_id not in accounts:
            currency = packets[item.packet_id][0].currency
            opened = yield from wallet.open_wallet(item.user_id, currency, c.claim.at)
            accounts[item.user_id] = opened.account_id
    return accounts


# ---------------------------------------------------------------- expiry


@dataclass(frozen=True)
class Expired:
    packet_id: int
    refunded: int
    sent: Sent


def expire_due(escrow_id: int, now_ms: int, limit: int) -> Op[list[Expired]]:
    """Close up to ``limit`` open packets whose time is up and send what nobody claimed back
    from escrow to each sender, with a ``redpacket.expired`` event and the wallet movement."""
    rows = yield from all_rows(
        "SELECT id FROM red_packets WHERE state = ? AND expires_ms <= ? ORDER BY id LIMIT ?",
        rules.OPEN,
        now_ms,
        limit,
    )
    packets = yield from _lock_packets([int(r[0]) for r in rows])
    due: list[tuple[PacketRow, int]] = []
    for row, rule in packets.values():
        refund = rule.expire(now_ms)
        if row.state == rules.OPEN and rule.state == rules.EXPIRED:  # not closed meanwhile
            due.append((row, refund))
    if not due:
        return []
    senders = yield from all_rows(
        "SELECT user_id, account_id FROM wallets WHERE user_id = ANY(?)",
        Values(sorted({row.sender_id for row, _ in due})),
    )
    accounts = {int(r[0]): int(r[1]) for r in senders}
    refunds = [(row, amount) for row, amount in due if amount > 0]
    requests = [
        Request(
            escrow_id,
            accounts[row.sender_id],
            amount,
            row.currency,
            "redpacket.refund",
            ref=_ref(row.id),
        )
        for row, amount in refunds
    ]
    transfers: list[Transfer] = []
    loaded: Loaded | None = None
    if requests:
        transfers, loaded = yield from ledger.apply(requests, now_ms)
    by_packet = {row.id: t for (row, _), t in zip(refunds, transfers, strict=True)}
    yield from many(
        "UPDATE red_packets SET state = ?, refund_transfer_id = ? WHERE id = ?",
        [
            (rules.EXPIRED, by_packet[row.id].id if row.id in by_packet else None, row.id)
            for row, _ in due
        ],
    )
    per_packet: list[list[Notice]] = []
    for row, amount in due:
        data = {
            "packet": row.id,
            "conv": row.conv_id,
            "refunded": amount,
            "claimed_count": row.claimed_count,
            "shares": row.shares,
        }
        notices = [Notice([row.sender_id], EXPIRED, data, row.conv_id)]
        if row.id in by_packet and loaded is not None:
            notices += wallet.movement_notices(loaded, [by_packet[row.id]])
        per_packet.append(notices)
    sent = yield from events.notify_many([n for group in per_packet for n in group], now_ms)
    out: list[Expired] = []
    start = 0
    for (row, amount), group in zip(due, per_packet, strict=True):
        out.append(Expired(row.id, amount, sent[start : start + len(group)]))
        start += len(group)
    return out


# ---------------------------------------------------------------- reading


def packet_for(packet_id: int, user_id: int) -> Op[tuple[PacketRow, list[Claim]] | None]:
    """The packet and its claims in share order, if ``user_id`` is in the packet's chat."""
    row = yield from one(
        f"SELECT {PACKET_COLUMNS} FROM red_packets p"
        " JOIN members m ON m.conv_id = p.conv_id AND m.user_id = ? WHERE p.id = ?",
        user_id,
        packet_id,
    )
    if row is None:
        return None
    rows = yield from all_rows(
        "SELECT user_id, share_index, amount, created_ms FROM red_packet_claims"
        " WHERE packet_id = ? ORDER BY share_index",
        packet_id,
    )
    claims = [Claim(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]
    return _packet_row(row), claims


def claim_of(packet_id: int, user_id: int) -> Op[tuple[PacketRow, Claim | None] | None]:
    """The packet and the user's claim of it, if they are in the packet's chat."""
    row = yield from one(
        f"SELECT {PACKET_COLUMNS} FROM red_packets p"
        " JOIN members m ON m.conv_id = p.conv_id AND m.user_id = ? WHERE p.id = ?",
        user_id,
        packet_id,
    )
    if row is None:
        return None
    found = yield from one(
        "SELECT user_id, share_index, amount, created_ms FROM red_packet_claims"
        " WHERE packet_id = ? AND user_id = ?",
        packet_id,
        user_id,
    )
    if found is None:
        return _packet_row(row), None
    return _packet_row(row), Claim(int(found[0]), int(found[1]), int(found[2]), int(found[3]))


def open_escrow(currency: str) -> Op[int]:
    """What the open packets of a currency still hold: the escrow account must equal it."""
    row = yield from one(
        "SELECT COALESCE(SUM(amount - claimed_amount), 0) FROM red_packets"
        " WHERE state = ? AND currency = ?",
        rules.OPEN,
        currency,
    )
    return 0 if row is None else int(row[0])
