"""Money flows written straight against the ledger store and the wallet tables, the way the red
packet, chat transfer and merchant use cases move money, for the checker's tests and the store's
property test. Each is one store operation (one transaction); the rows they write are the rows
the checker reads (``red_packets``, ``red_packet_claims``, ``chat_transfers``)."""

from __future__ import annotations

import json

from wanglai.domain.ledger import PENDING, POST, VOID, Request, Transfer
from wanglai.store import ledger
from wanglai.store.sql import Op, execute, one, scalar

DAY_MS = 24 * 3600 * 1000


def move(requests: list[Request], now: int) -> Op[list[Transfer]]:
    transfers, _ = yield from ledger.apply(requests, now)
    return transfers


def send_packet(
    sender_id: int, account_id: int, escrow_id: int, splits: list[int], now: int
) -> Op[int]:
    """Wallet -> escrow, and an open packet holding ``splits`` in claim order."""
    amount = sum(splits)
    yield from ledger.apply([Request(account_id, escrow_id, amount, "CNY", "redpacket")], now)
    row = yield from one(
        "INSERT INTO red_packets (sender_id, conv_id, msg_seq, kind, amount, currency, shares,"
        " splits, claimed_count, claimed_amount, greeting, state, created_ms, expires_ms)"
        " VALUES (?, 0, 0, 'lucky', ?, 'CNY', ?, ?, 0, 0, '', 'open', ?, ?) RETURNING id",
        sender_id,
        amount,
        len(splits),
        json.dumps(splits),
        now,
        now + DAY_MS,
    )
    assert row is not None
    return int(row[0])


def claim_packet(
    packet_id: int, user_id: int, account_id: int, escrow_id: int, now: int
) -> Op[int | None]:
    """The next share, escrow -> the claimer's wallet; None if the packet is done or the user
    already claimed it."""
    row = yield from one(
        "SELECT splits, claimed_count, shares, state FROM red_packets WHERE id = ?", packet_id
    )
    assert row is not None
    count, shares = int(row[1]), int(row[2])
    if str(row[3]) != "open" or count >= shares:
        return None
    seen = yield from scalar(
        "SELECT 1 FROM red_packet_claims WHERE packet_id = ? AND user_id = ?", packet_id, user_id
    )
    if seen is not None:
        return None
    share = int(json.loads(str(row[0]))[count])
    transfers, _ = yield from ledger.apply(
        [Request(escrow_id, account_id, share, "CNY", "redpacket_claim", ref=str(packet_id))], now
    )
    yield from execute(
        "INSERT INTO red_packet_claims (packet_id, user_id, share_index, amount, transfer_id,"
        " created_ms) VALUES (?, ?, ?, ?, ?, ?)",
        packet_id,
        user_id,
        count,
        share,
        transfers[0].id,
        now,
    )
    yield from execute(
        "UPDATE red_packets SET claimed_count = claimed_count + 1,"
        " claimed_amount = claimed_amount + ?, state = ? WHERE id = ?",
        share,
        "finished" if count + 1 == shares else "open",
        packet_id,
    )
    return share


def expire_packet(packet_id: int, sender_account: int, escrow_id: int, now: int) -> Op[int]:
    """Return what an open packet still holds to its sender; returns that amount."""
    row = yield from one(
        "SELECT amount, claimed_amount, state FROM red_packets WHERE id = ?", packet_id
    )
    assert row is not None
    if str(row[2]) != "open":
        return 0
    left = int(row[0]) - int(row[1])
    refund: int | None = None
    if left:
        transfers, _ = yield from ledger.apply(
            [Request(escrow_id, sender_account, left, "CNY", "redpacket_refund")], now
        )
        refund = transfers[0].id
    yield from execute(
        "UPDATE red_packets SET state = 'expired', refund_transfer_id = ? WHERE id = ?",
        refund,
        packet_id,
    )
    return left


def offer(
    sender_id: int,
    receiver_id: int,
    sender_account: int,
    receiver_account: int,
    amount: int,
    timeout_ms: int,
    now: int,
) -> Op[tuple[int, int]]:
    """A chat transfer: a pending ledger transfer and its row; returns (chat id, pending id)."""
    transfers, _ = yield from ledger.apply(
        [
            Request(
                sender_account,
                receiver_account,
                amount,
                "CNY",
                "chat_transfer",
                PENDING,
                timeout_ms=timeout_ms,
            )
        ],
        now,
    )
    pending = transfers[0]
    row = yield from one(
        "INSERT INTO chat_transfers (sender_id, receiver_id, conv_id, msg_seq, pending_id,"
        " amount, currency, note, state, created_ms, expires_ms)"
        " VALUES (?, ?, 0, 0, ?, ?, 'CNY', '', 'pending', ?, ?) RETURNING id",
        sender_id,
        receiver_id,
        pending.id,
        amount,
        now,
        pending.expires_ms,
    )
    assert row is not None
    return int(row[0]), pending.id


def settle_offer(chat_id: int, outcome: str, now: int) -> Op[int]:
    """``accepted`` posts the pending transfer; ``declined`` and ``returned`` void it. Returns
    the id of the transfer that did."""
    pending_id = yield from scalar("SELECT pending_id FROM chat_transfers WHERE id = ?", chat_id)
    flags = POST if outcome == "accepted" else VOID
    transfers, _ = yield from ledger.apply([Request(flags=flags, pending_id=int(pending_id))], now)
    yield from execute(
        "UPDATE chat_transfers SET state = ?, resolved_ms = ? WHERE id = ?", outcome, now, chat_id
    )
    return transfers[0].id
