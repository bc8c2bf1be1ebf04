"""The checker's rules on plain facts, including breaches the database's own constraints make
hard to produce (two resolutions of one pending, unknown flags and states)."""

from __future__ import annotations

from wanglai.domain.ledger import DEBITS_LIMITED, PENDING, POST, VOID, Account
from wanglai.domain.ledger_audit import (
    Breach,
    ChatTransfer,
    Facts,
    Movement,
    OwnedAccount,
    Packet,
    PendingState,
    PendingTransfer,
    Resolution,
    audit,
    check_chat_transfers,
    check_escrow,
    check_no_overdraft,
    check_pending_resolution,
    recompute,
)

PENDING_40 = PendingTransfer(40, 1, 2, 500)


def details(breaches: list[Breach]) -> list[str]:
    return [b.detail for b in breaches]


def test_an_empty_ledger_passes_and_counts_nothing() -> None:
    report = audit(Facts([], [], [], [], []))
    assert report.ok and all(r.checked == 0 for r in report.results)


def test_recompute_follows_pending_post_and_void() -> None:
    sums, breaches = recompute(
        [
            Movement(1, "debit", 0, 100),
            Movement(1, "debit", PENDING, 70),
            Movement(1, "debit", POST, 50),
            Movement(1, "debit", VOID, 20),
            Movement(2, "credit", PENDING, 70),
            Movement(2, "credit", POST, 50),
            Movement(2, "credit", 0, 100),
            Movement(3, "debit", PENDING | POST, 5),
        ]
    )
    assert sums[1] == (0, 150, 0, 0)
    assert sums[2] == (0, 0, 20, 150)
    assert details(breaches) == ["transfers with flags 3 (not 0, PENDING, POST or VOID)"]


def test_two_resolutions_of_one_pending_are_reported() -> None:
    _, breaches = check_pending_resolution(
        [PENDING_40],
        [PendingState(40, "posted", 41)],
        [Resolution(41, POST, 40, 1, 2, 500), Resolution(42, VOID, 40, 1, 2, 500)],
    )
    assert "resolved 2 times (transfers 41, 42)" in details(breaches)


def test_resolution_rows_must_agree_with_their_transfers() -> None:
    cases = [
        ([PendingState(40, "pending", None)], [], []),
        ([], [], ["has no ledger_pending row"]),
        ([PendingState(40, "posted", 41)], [], ["is posted but no transfer posts or voids it"]),
        ([PendingState(40, "weird", None)], [], ["has unknown state 'weird'"]),
        (
            [PendingState(40, "voided", 9)],
            [Resolution(41, VOID, 40, 1, 2, 500)],
            ["names transfer 9 as resolving it; it was 41"],
        ),
        (
            [PendingState(40, "posted", 41)],
            [Resolution(41, POST, 40, 1, 3, 500)],
            ["transfer 41 moves 500 from 1 to 3; the pending moves 500 from 1 to 2"],
        ),
    ]
    for states, resolutions, expected in cases:
        checked, breaches = check_pending_resolution([PENDING_40], states, resolutions)
        assert checked == 1
        assert details(breaches) == expected


def test_posts_and_voids_must_name_a_pending_transfer() -> None:
    _, breaches = check_pending_resolution(
        [],
        [PendingState(77, "pending", None)],
        [Resolution(50, POST, None, 1, 2, 5), Resolution(51, VOID, 12, 1, 2, 5)],
    )
    assert details(breaches) == [
        "posts or voids without naming a pending transfer",
        "transfer 51 resolves it, but it is not a pending transfer",
        "has a ledger_pending row but is not a pending transfer",
    ]


def test_wallets_must_be_limited_and_never_negative() -> None:
    accounts = [
        OwnedAccount(Account(1, "CNY", DEBITS_LIMITED, 0, 0, 0, 10), "user", 5, "wallet"),
        OwnedAccount(Account(2, "CNY", DEBITS_LIMITED, 11, 0, 0, 10), "user", 6, "wallet"),
        OwnedAccount(Account(3, "CNY", 0, 0, 0, 0, 10), "merchant", 7, "wallet"),
        OwnedAccount(Account(4, "CNY", 0, 0, 99, 0, 0), "system", 0, "bank_clearing"),
    ]
    checked, breaches = check_no_overdraft(accounts)
    assert checked == 3  # the bank may go below zero
    assert details(breaches) == ["available is -1", "is not flagged DEBITS_LIMITED"]


def test_escrow_holds_what_open_packets_owe() -> None:
    escrow = OwnedAccount(Account(9, "CNY", 0, 0, 0, 0, 300), "system", 0, "redpacket_escrow")
    open_packet = Packet(1, "open", "CNY", 500, 3, 1, 200, 1, 200)
    assert check_escrow([escrow], [open_packet], "redpacket_escrow") == (1, [])
    finished_short = Packet(2, "finished", "CNY", 100, 2, 1, 60, 1, 60)
    _, breaches = check_escrow([escrow], [open_packet, finished_short], "redpacket_escrow")
    assert details(breaches) == ["is finished with 40 unpaid"]
    # open packets with no escrow account at all
    _, breaches = check_escrow([], [open_packet], "redpacket_escrow")
    assert details(breaches) == ["escrow holds 0; open packets still hold 300"]
    overpaid = Packet(3, "expired", "CNY", 100, 1, 2, 150, 2, 150)
    _, breaches = check_escrow([escrow], [open_packet, overpaid], "redpacket_escrow")
    assert details(breaches) == ["paid out 150 in 2 claims; it held 100 in 1 shares"]


def test_chat_transfers_follow_their_pending() -> None:
    ok = [
        ChatTransfer(1, "pending", 10, "pending", 10),
        ChatTransfer(2, "accepted", 10, "posted", 10),
        ChatTransfer(3, "declined", 10, "voided", 10),
        ChatTransfer(4, "returned", 10, "voided", 10),
    ]
    assert check_chat_transfers(ok) == (4, [])
    _, breaches = check_chat_transfers(
        [
            ChatTransfer(5, "returned", 10, "pending", 10),
            ChatTransfer(6, "pending", 10, None, None),
            ChatTransfer(7, "lost", 10, "pending", 10),
            ChatTransfer(8, "pending", 10, "pending", 11),
        ]
    )
    assert details(breaches) == [
        "is returned but its pending is pending",
        "names no pending ledger transfer",
        "has unknown state 'lost'",
        "is for 10 but its pending reserves 11",
    ]
