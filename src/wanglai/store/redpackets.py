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
from wanglai.domain import pin as pin_rules
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
from wanglai.store.sql import Op, Row, Values, all_rows, batched, many, one

PACKET_COLUMNS = (
    "p.id, p.sender_id, p.conv_id, p.msg_seq, p.kind, p.amount, p.currency, p.shares, p.splits,"
    " p.claimed_count, p.claimed_amount, p.greeting, p.state, p.created_ms, p.expires_ms,"
    " p.refund_transfer_id"
)
_encode = msgspec.json.Encoder().encode

CARD = "redpacket"
"""The message kind of a packet's card in the conversation."""
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


def sender_facts(
    conv_id: int, user_id: int
) -> Op[tuple[wallet.Wallet | None, tuple[str, int] | None]]:
    """The sender's wallet and ``chat_facts``, read together (point lookups: one read, on the
    calling thread, before the PIN is asked)."""
    found = yield from wallet.wallet(user_id)
    facts = yield from chat_facts(conv_id, user_id)
    return found, facts


@dataclass(frozen=True)
class NewPacket:
    """One packet to send, under the sender's idempotency key."""

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
    key: str
    fingerprint: str


@dataclass(frozen=True)
class SentPacket:
    packet: PacketRow
    card: Appended
    """The packet's card in the conversation, for the service to push to the members."""
    sent: Sent


@dataclass(frozen=True)
class Replayed:
    """The packet first sent under this idempotency key (a retry): nothing was done again."""

    packet: PacketRow


def send(item: NewPacket) -> Op[SentPacket | Replayed]:
    """Move the amount from the sender's wallet to escrow, store the packet with its shares and
    put its card in the chat, in one transaction, once per idempotency key; the limits are
    checked again here against the chat as it is now. Raises what refused it (a key reused for
    another packet, not a member, a broken limit, a locked or capped payer, an overdraft)."""
    (outcome,) = yield from send_many([item])
    if isinstance(outcome, WanglaiError):
        raise outcome
    return outcome


_decode_row = msgspec.json.Decoder(PacketRow)


def chats(convs: list[int]) -> Op[dict[int, tuple[str, list[int]]]]:
    """Each conversation's kind and members, by id (conversations that exist)."""
    rows = yield from all_rows(
        "SELECT c.id, c.kind, m.user_id FROM conversations c JOIN members m ON m.conv_id = c.id"
        " WHERE c.id = ANY(?) ORDER BY c.id, m.user_id",
        Values(sorted(set(convs))),
    )
    out: dict[int, tuple[str, list[int]]] = {}
    for r in rows:
        out.setdefault(int(r[0]), (str(r[1]), []))[1].append(int(r[2]))
    return out


def send_many(items: list[NewPacket]) -> Op[list[SentPacket | Replayed | WanglaiError]]:
    """``send`` for a batch, set-wise: a fixed number of statements reads the keys, chats,
    wallets and spend counters and writes the transfers, packets, cards, events and keys,
    whatever the batch's size. Each item is sent or refused on its own, in order; a later item
    sees what earlier ones did (a balance spent, a daily cap used, a key taken)."""
    out: list[SentPacket | Replayed | WanglaiError | wallet.Same | None] = [None] * len(items)
    first = yield from wallet.known_keys([(i.sender_id, i.key) for i in items])
    found_chats = yield from chats([i.conv_id for i in items])
    peers = {
        (i.sender_id, peer)
        for i in items
        if i.conv_id in found_chats and found_chats[i.conv_id][0] == rules.DIRECT
        for peer in found_chats[i.conv_id][1]
        if peer != i.sender_id
    }
    facts = yield from peer_facts(peers)
    senders = sorted({i.sender_id for i in items})
    found = yield from wallet.wallets(senders)
    days = sorted({spend_rules.day_of(i.now_ms) for i in items})
    keys = wallet.BatchKeys(first)
    accepted: list[int] = []
    for n, item in enumerate(items):
        try:
            answered = keys.check(item.sender_id, item.key, item.fingerprint)
            if answered is not None:
                # a retry: the first answer (stored, or the earlier item's in this batch)
                out[n] = (
                    Replayed(_decode_row.decode(answered))
                    if isinstance(answered, str)
                    else answered
                )
                continue
            chat = found_chats.get(item.conv_id)
            if chat is None or item.sender_id not in chat[1]:
                raise NotFound("conversation_not_found", "No such conversation.")
            kind, members = chat
            if kind == rules.DIRECT:
                for peer in members:
                    pair = facts.get((item.sender_id, peer))
                    if peer != item.sender_id and pair is not None:
                        check_direct(pair)
            rules.check_packet(
                item.kind, item.amount, len(item.splits), kind, len(members), item.limits
            )
            assert sum(item.splits) == item.amount
            payer = found.get(item.sender_id)
            if payer is None:
                raise wallet.ledger_empty()
            pin_rules.check_unlocked(payer.locked_until_ms, item.now_ms)
        except WanglaiError as refused:
            out[n] = refused
            continue
        keys.take(n, item.sender_id, item.key, item.fingerprint)
        accepted.append(n)

    if not accepted:
        return _settled(out)
    # the money: one book for the batch; a cap or an overdraft refuses that item only
    escrows = sorted({items[n].escrow_id for n in accepted})
    loaded = yield from ledger.load(
        [found[items[n].sender_id].account_id for n in accepted] + escrows
    )
    # read once the payers' accounts are locked: concurrent payments are counted in turn
    spent = yield from wallet.spent_on(senders, days)
    first_id = yield from ledger.reserve_ids(len(accepted))
    packet_ids = yield from _packet_ids(len(accepted))
    moved: list[int] = []
    made: dict[int, tuple[int, Transfer]] = {}
    for offset, n in enumerate(accepted):
        item = items[n]
        day = spend_rules.day_of(item.now_ms)
        packet_id = packet_ids[offset]
        request = Request(
            found[item.sender_id].account_id,
            item.escrow_id,
            item.amount,
            item.currency,
            "redpacket",
            ref=_ref(packet_id),
        )
        try:
            # checked item by item, so two packets of one payer in a batch add up
            spend_rules.check_spend(
                item.amount,
                spent.get((item.sender_id, day), 0),
                found[item.sender_id].verified,
                item.spend_limits,
            )
            move = loaded.book.apply(request, first_id + offset, item.now_ms)
        except WanglaiError as refused:
            out[n] = refused
            continue
        spent[(item.sender_id, day)] = spent.get((item.sender_id, day), 0) + item.amount
        made[n] = (packet_id, move)
        moved.append(n)
    yield from ledger.save(loaded.book)
    if not moved:
        return _settled(out)
    yield from wallet.add_spend(
        [(items[n].sender_id, spend_rules.day_of(items[n].now_ms), items[n].amount) for n in moved]
    )

    # the cards, each after its movement events; then the packets, which point at their cards
    cards = []
    for n in moved:
        item = items[n]
        packet_id, move = made[n]
        body = {
            "packet": packet_id,
            "kind": item.kind,
            "shares": len(item.splits),
            "greeting": item.greeting,
        }
        cards.append(
            messages.Card(
                item.conv_id,
                item.sender_id,
                CARD,
                _encode(body).decode(),
                found_chats[item.conv_id][1],
                wallet.movement_notices(loaded, [move]),
                item.now_ms,
            )
        )
    appended = yield from messages.append_cards(cards, items[moved[0]].now_ms)
    packets: dict[int, PacketRow] = {}
    for n, (card, _sent) in zip(moved, appended, strict=True):
        item = items[n]
        packets[n] = PacketRow(
            made[n][0],
            item.sender_id,
            item.conv_id,
            int(card.message[1]),
            item.kind,
            item.amount,
            item.currency,
            len(item.splits),
            list(item.splits),
            0,
            0,
            item.greeting,
            rules.OPEN,
            item.now_ms,
            item.now_ms + item.limits.expiry_ms,
            None,
        )
    yield from many(
        "INSERT INTO red_packets (id, sender_id, conv_id, msg_seq, kind, amount, currency, shares,"
        " splits, claimed_count, claimed_amount, greeting, state, created_ms, expires_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?)",
        [
            (
                p.id,
                p.sender_id,
                p.conv_id,
                p.msg_seq,
                p.kind,
                p.amount,
                p.currency,
                p.shares,
                json.dumps(p.splits),
                p.greeting,
                p.state,
                p.created_ms,
                p.expires_ms,
            )
            for p in (packets[n] for n in moved)
        ],
    )
    yield from wallet.remember_keys(
        [
            (
                items[n].sender_id,
                items[n].key,
                items[n].fingerprint,
                _encode(packets[n]).decode(),
                items[n].now_ms,
            )
            for n in moved
        ]
    )
    for n, (card, sent) in zip(moved, appended, strict=True):
        out[n] = SentPacket(packets[n], card, sent)
    return _settled(out)


def _settled(
    out: list[SentPacket | Replayed | WanglaiError | wallet.Same | None],
) -> list[SentPacket | Replayed | WanglaiError]:
    """Items that repeated an earlier item's key in the same batch get its answer."""
    return wallet.settle(out, lambda first: Replayed(first.packet))  # type: ignore[attr-defined,return-value]


def _packet_ids(count: int) -> Op[list[int]]:
    """``count`` new packet ids: on SQLite the next rowids (the one writer holds the write
    lock), on PostgreSQL drawn from the column's sequence."""
    if not count:
        return []
    rows = yield from all_rows(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " SELECT (SELECT COALESCE(MAX(id), 0) FROM red_packets) + i FROM n",
        count,
        pg_sql="SELECT nextval(pg_get_serial_sequence('red_packets', 'id'))"
        " FROM generate_series(1, $1)",
    )
    return sorted(int(r[0]) for r in rows)


batched(send, send_many)


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
    found = yield from wallet.wallets(sorted({item.user_id for _, item, _ in new}))
    accounts = {uid: w.account_id for uid, w in found.items()}
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
    senders = yield from wallet.wallets(sorted({row.sender_id for row, _ in due}))
    accounts = {uid: w.account_id for uid, w in senders.items()}
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


def _visible(packet_id: int, user_id: int) -> Op[Row | None]:
    """The packet's row if ``user_id`` is in its chat (for anyone else it does not exist)."""
    row = yield from one(
        f"SELECT {PACKET_COLUMNS} FROM red_packets p"
        " JOIN members m ON m.conv_id = p.conv_id AND m.user_id = ? WHERE p.id = ?",
        user_id,
        packet_id,
    )
    return row


def packet_for(packet_id: int, user_id: int) -> Op[tuple[PacketRow, list[Claim]] | None]:
    """The packet and its claims in share order, if ``user_id`` is in the packet's chat."""
    row = yield from _visible(packet_id, user_id)
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
    row = yield from _visible(packet_id, user_id)
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
