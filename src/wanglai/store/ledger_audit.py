"""What the ledger checker reads: accounts, per-account transfer totals, pending transfers and
their resolutions, red packets with their claims, chat transfers — all from one snapshot.

The totals are aggregated in SQL (one row per account, side and flags), so the checker's cost
grows with the number of accounts and pending transfers, not with the history of plain moves.
"""

from __future__ import annotations

from wanglai.domain.ledger_audit import (
    ChatTransfer,
    Facts,
    Movement,
    OwnedAccount,
    Packet,
    PendingState,
    PendingTransfer,
    Resolution,
)
from wanglai.store import ledger
from wanglai.store.sql import Op, all_rows, execute


def facts() -> Op[Facts]:
    """Everything ``domain.ledger_audit.audit`` checks, read in one snapshot.

    SQLite reads run in one transaction already (a WAL snapshot). PostgreSQL reads run outside
    a transaction, where each statement sees the latest commits; this opens a read-only
    REPEATABLE READ transaction so that account sums and transfers are read at the same instant
    while the server keeps writing.
    """
    yield from execute("SELECT 1", pg_sql="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    accounts = yield from ledger.all_accounts()
    found = Facts(
        accounts=[OwnedAccount(a, kind, owner, name) for a, kind, owner, name in accounts],
        movements=(yield from movements()),
        pendings=(yield from pending_transfers()),
        pending_states=(yield from pending_states()),
        resolutions=(yield from resolutions()),
        packets=(yield from packets()),
        chat_transfers=(yield from chat_transfers()),
        escrow_name=ledger.REDPACKET_ESCROW,
    )
    yield from execute("SELECT 1", pg_sql="COMMIT")
    return found


def movements() -> Op[list[Movement]]:
    """Per account, side and flags, the sum of its transfers."""
    out: list[Movement] = []
    for side in ("debit", "credit"):
        rows = yield from all_rows(
            f"SELECT {side}_id, flags, SUM(amount) FROM ledger_transfers GROUP BY {side}_id, flags"
        )
        out.extend(Movement(int(r[0]), side, int(r[1]), int(r[2])) for r in rows)
    return out


def pending_transfers() -> Op[list[PendingTransfer]]:
    rows = yield from all_rows(
        "SELECT id, debit_id, credit_id, amount FROM ledger_transfers WHERE (flags & 1) <> 0"
    )
    return [PendingTransfer(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]


def pending_states() -> Op[list[PendingState]]:
    rows = yield from all_rows("SELECT transfer_id, state, resolved_by FROM ledger_pending")
    return [PendingState(int(r[0]), str(r[1]), None if r[2] is None else int(r[2])) for r in rows]


def resolutions() -> Op[list[Resolution]]:
    """Transfers that post or void, or that name a pending transfer."""
    rows = yield from all_rows(
        "SELECT id, flags, pending_id, debit_id, credit_id, amount FROM ledger_transfers"
        " WHERE (flags & 6) <> 0 OR pending_id IS NOT NULL"
    )
    return [
        Resolution(
            int(r[0]),
            int(r[1]),
            None if r[2] is None else int(r[2]),
            int(r[3]),
            int(r[4]),
            int(r[5]),
        )
        for r in rows
    ]


def packets() -> Op[list[Packet]]:
    rows = yield from all_rows(
        "SELECT p.id, p.state, p.currency, p.amount, p.shares, p.claimed_count,"
        " p.claimed_amount, COUNT(c.user_id), COALESCE(SUM(c.amount), 0)"
        " FROM red_packets p LEFT JOIN red_packet_claims c ON c.packet_id = p.id"
        " GROUP BY p.id, p.state, p.currency, p.amount, p.shares, p.claimed_count,"
        " p.claimed_amount"
    )
    return [
        Packet(
            int(r[0]),
            str(r[1]),
            str(r[2]),
            int(r[3]),
            int(r[4]),
            int(r[5]),
            int(r[6]),
            int(r[7]),
            int(r[8]),
        )
        for r in rows
    ]


def chat_transfers() -> Op[list[ChatTransfer]]:
    rows = yield from all_rows(
        "SELECT c.id, c.state, c.amount, p.state, t.amount FROM chat_transfers c"
        " LEFT JOIN ledger_pending p ON p.transfer_id = c.pending_id"
        " LEFT JOIN ledger_transfers t ON t.id = c.pending_id AND (t.flags & 1) <> 0"
    )
    return [
        ChatTransfer(
            int(r[0]),
            str(r[1]),
            int(r[2]),
            None if r[3] is None else str(r[3]),
            None if r[4] is None else int(r[4]),
        )
        for r in rows
    ]
