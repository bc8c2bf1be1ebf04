"""The ledger checker's rules: given plain facts read from the database, which invariants hold
and which are breached.

Each check takes rows (accounts, per-account transfer totals, pending transfers and what
resolved them, red packets, chat transfers) and returns the breaches it found; :func:`audit`
runs them all. Nothing here reads the database: ``store/ledger_audit.py`` gathers the facts in
one snapshot and ``services/ledger_check.py`` hands them over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wanglai.domain import ledger as rules
from wanglai.domain import redpacket as packet_rules
from wanglai.domain import transfers as transfer_rules
from wanglai.domain.ledger import Account

LIMITED_OWNERS = ("user", "merchant")
"""Owner kinds whose accounts may never go below zero."""

CHAT_TRANSFER_PENDING = {
    transfer_rules.PENDING: rules.OPEN,
    transfer_rules.ACCEPTED: rules.POSTED,
    transfer_rules.DECLINED: rules.VOIDED,
    transfer_rules.RETURNED: rules.VOIDED,
}
"""What a chat transfer's state says its pending ledger transfer must be."""

PACKET_STATES = (packet_rules.OPEN, packet_rules.FINISHED, packet_rules.EXPIRED)


@dataclass(frozen=True, slots=True)
class Breach:
    check: str
    subject: str
    """What is wrong: ``account 12``, ``currency CNY``, ``pending 40``, ``red packet 3``."""
    detail: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    title: str
    checked: int
    """How many things (currencies, accounts, pendings, packets…) the check looked at."""
    breaches: list[Breach]

    @property
    def ok(self) -> bool:
        return not self.breaches


@dataclass(frozen=True, slots=True)
class Audit:
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def breaches(self) -> list[Breach]:
        return [b for r in self.results for b in r.breaches]

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.name == name)


@dataclass(frozen=True, slots=True)
class OwnedAccount:
    account: Account
    owner_kind: str
    owner_id: int
    name: str


@dataclass(frozen=True, slots=True)
class Movement:
    """The total of an account's transfers on one side with one set of flags."""

    account_id: int
    side: str
    """``debit`` or ``credit``."""
    flags: int
    total: int


@dataclass(frozen=True, slots=True)
class PendingTransfer:
    id: int
    debit_id: int
    credit_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class PendingState:
    """A ``ledger_pending`` row."""

    transfer_id: int
    state: str
    resolved_by: int | None


@dataclass(frozen=True, slots=True)
class Resolution:
    """A transfer that posts or voids (or names) a pending transfer."""

    id: int
    flags: int
    pending_id: int | None
    debit_id: int
    credit_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class Packet:
    id: int
    state: str
    currency: str
    amount: int
    shares: int
    claimed_count: int
    claimed_amount: int
    claims_count: int
    """Rows in ``red_packet_claims`` for this packet."""
    claims_sum: int


@dataclass(frozen=True, slots=True)
class ChatTransfer:
    id: int
    state: str
    amount: int
    pending_state: str | None
    """The state of the ``ledger_pending`` row it names (None: no such row)."""
    pending_amount: int | None


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the checker reads, from one snapshot of the database."""

    accounts: list[OwnedAccount]
    movements: list[Movement]
    pendings: list[PendingTransfer]
    pending_states: list[PendingState]
    resolutions: list[Resolution]
    packets: list[Packet] = field(default_factory=list)
    chat_transfers: list[ChatTransfer] = field(default_factory=list)
    escrow_name: str = "redpacket_escrow"


# ---------------------------------------------------------------- the checks

CURRENCY_SUMS = "currency_sums"
ACCOUNT_SUMS = "account_sums"
NO_OVERDRAFT = "no_overdraft"
PENDING_RESOLUTION = "pending_resolution"
ESCROW = "redpacket_escrow"
CHAT_TRANSFERS = "chat_transfers"

TITLES = {
    CURRENCY_SUMS: "each currency sums to zero; pending debits = pending credits",
    ACCOUNT_SUMS: "each account's sums = those recomputed from its transfers",
    NO_OVERDRAFT: "no user or merchant account below zero (balance, available)",
    PENDING_RESOLUTION: "every pending transfer open or resolved exactly once",
    ESCROW: "red-packet escrow = what open packets still hold; claims add up",
    CHAT_TRANSFERS: "chat transfers agree with their pending transfers",
}


def check_currency_sums(accounts: Iterable[Account]) -> tuple[int, list[Breach]]:
    """Double entry: per currency, posted balances sum to zero and pending debits equal
    pending credits."""
    posted: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    currencies: set[str] = set()
    for a in accounts:
        currencies.add(a.currency)
        posted[a.currency] += a.balance
        pending[a.currency] += a.debits_pending - a.credits_pending
    breaches: list[Breach] = []
    for currency in sorted(currencies):
        if posted[currency]:
            breaches.append(
                Breach(
                    CURRENCY_SUMS,
                    f"currency {currency}",
                    f"posted balances sum to {posted[currency]}, not 0",
                )
            )
        if pending[currency]:
            breaches.append(
                Breach(
                    CURRENCY_SUMS,
                    f"currency {currency}",
                    f"pending debits exceed pending credits by {pending[currency]}",
                )
            )
    return len(currencies), breaches


Sums = tuple[int, int, int, int]
"""debits_pending, debits_posted, credits_pending, credits_posted."""


def recompute(movements: Iterable[Movement]) -> tuple[dict[int, Sums], list[Breach]]:
    """Each account's four sums as its transfers make them: a pending transfer reserves on both
    sides, a post moves the reservation into the posted sums, a void releases it, and a plain
    transfer adds to the posted sums. Transfers with flags the ledger never writes are breaches."""
    sums: dict[int, list[int]] = {}
    breaches: list[Breach] = []
    for m in movements:
        s = sums.setdefault(m.account_id, [0, 0, 0, 0])
        pending_i, posted_i = (0, 1) if m.side == "debit" else (2, 3)
        if m.flags == 0:
            s[posted_i] += m.total
        elif m.flags == rules.PENDING:
            s[pending_i] += m.total
        elif m.flags == rules.POST:
            s[pending_i] -= m.total
            s[posted_i] += m.total
        elif m.flags == rules.VOID:
            s[pending_i] -= m.total
        else:
            breaches.append(
                Breach(
                    ACCOUNT_SUMS,
                    f"account {m.account_id}",
                    f"transfers with flags {m.flags} (not 0, PENDING, POST or VOID)",
                )
            )
    return {k: (v[0], v[1], v[2], v[3]) for k, v in sums.items()}, breaches


def check_account_sums(
    accounts: Sequence[Account], movements: Iterable[Movement]
) -> tuple[int, list[Breach]]:
    expected, breaches = recompute(movements)
    known = {a.id for a in accounts}
    names = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
    for a in accounts:
        stored = (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
        want = expected.get(a.id, (0, 0, 0, 0))
        for name, have, should in zip(names, stored, want, strict=True):
            if have != should:
                breaches.append(
                    Breach(
                        ACCOUNT_SUMS,
                        f"account {a.id}",
                        f"{name} is {have}; its transfers make it {should}",
                    )
                )
    for account_id in sorted(set(expected) - known):
        breaches.append(
            Breach(ACCOUNT_SUMS, f"account {account_id}", "transfers name an account that is gone")
        )
    return len(accounts), breaches


def check_no_overdraft(accounts: Iterable[OwnedAccount]) -> tuple[int, list[Breach]]:
    """User and merchant accounts (and any account flagged DEBITS_LIMITED) never go below zero,
    counting what pending debits reserve."""
    checked = 0
    breaches: list[Breach] = []
    for owned in accounts:
        a = owned.account
        if owned.owner_kind not in LIMITED_OWNERS and not a.flags & rules.DEBITS_LIMITED:
            continue
        checked += 1
        subject = f"account {a.id} ({owned.owner_kind} {owned.owner_id})"
        if a.balance < 0:
            breaches.append(Breach(NO_OVERDRAFT, subject, f"balance is {a.balance}"))
        elif a.available < 0:
            breaches.append(Breach(NO_OVERDRAFT, subject, f"available is {a.available}"))
        if owned.owner_kind in LIMITED_OWNERS and not a.flags & rules.DEBITS_LIMITED:
            breaches.append(Breach(NO_OVERDRAFT, subject, "is not flagged DEBITS_LIMITED"))
    return checked, breaches


def check_pending_resolution(
    pendings: Sequence[PendingTransfer],
    states: Iterable[PendingState],
    resolutions: Iterable[Resolution],
) -> tuple[int, list[Breach]]:
    """Every pending transfer has one ``ledger_pending`` row; it is open with nothing resolving
    it, or posted/voided by exactly one transfer of that kind, the one the row names; every
    post or void names a pending transfer and moves exactly its accounts and amount."""
    breaches: list[Breach] = []

    def breach(pending_id: int | None, detail: str, subject: str = "") -> None:
        breaches.append(Breach(PENDING_RESOLUTION, subject or f"pending {pending_id}", detail))

    by_id = {p.id: p for p in pendings}
    state_of = {s.transfer_id: s for s in states}
    resolved_by: dict[int, list[Resolution]] = {}
    for r in resolutions:
        if r.flags not in (rules.POST, rules.VOID):
            breach(
                r.pending_id,
                f"transfer {r.id} names it but has flags {r.flags}",
                f"transfer {r.id}",
            )
            continue
        if r.pending_id is None:
            breach(None, "posts or voids without naming a pending transfer", f"transfer {r.id}")
            continue
        resolved_by.setdefault(r.pending_id, []).append(r)
        pending = by_id.get(r.pending_id)
        if pending is None:
            breach(r.pending_id, f"transfer {r.id} resolves it, but it is not a pending transfer")
        elif (r.debit_id, r.credit_id, r.amount) != (
            pending.debit_id,
            pending.credit_id,
            pending.amount,
        ):
            breach(
                r.pending_id,
                f"transfer {r.id} moves {r.amount} from {r.debit_id} to {r.credit_id};"
                f" the pending moves {pending.amount} from {pending.debit_id}"
                f" to {pending.credit_id}",
            )
    for tid in sorted(set(state_of) - set(by_id)):
        breach(tid, "has a ledger_pending row but is not a pending transfer")
    for p in pendings:
        row = state_of.get(p.id)
        found = resolved_by.get(p.id, [])
        if len(found) > 1:
            ids = ", ".join(str(r.id) for r in found)
            breach(p.id, f"resolved {len(found)} times (transfers {ids})")
        if row is None:
            breach(p.id, "has no ledger_pending row")
            continue
        if row.state == rules.OPEN:
            if found:
                breach(p.id, f"is open, yet transfer {found[0].id} resolved it")
            continue
        if row.state not in (rules.POSTED, rules.VOIDED):
            breach(p.id, f"has unknown state {row.state!r}")
            continue
        if not found:
            breach(p.id, f"is {row.state} but no transfer posts or voids it")
            continue
        r = found[0]
        did = rules.POSTED if r.flags == rules.POST else rules.VOIDED
        if did != row.state:
            breach(p.id, f"is {row.state} but transfer {r.id} {did} it")
        if row.resolved_by != r.id:
            breach(p.id, f"names transfer {row.resolved_by} as resolving it; it was {r.id}")
    return len(pendings), breaches


def check_escrow(
    accounts: Iterable[OwnedAccount], packets: Sequence[Packet], escrow_name: str
) -> tuple[int, list[Breach]]:
    """Per currency, the red-packet escrow account holds exactly what open packets have not paid
    out; each packet's claims add up to what it records as claimed, never more than it holds."""
    breaches: list[Breach] = []
    escrow: dict[str, int] = {}
    for owned in accounts:
        if owned.owner_kind == "system" and owned.name == escrow_name:
            escrow[owned.account.currency] = owned.account.balance
    owed: Counter[str] = Counter()
    for p in packets:
        subject = f"red packet {p.id}"
        if p.state == packet_rules.OPEN:
            owed[p.currency] += p.amount - p.claimed_amount
        elif p.state not in PACKET_STATES:
            breaches.append(Breach(ESCROW, subject, f"has unknown state {p.state!r}"))
        if p.claims_sum != p.claimed_amount or p.claims_count != p.claimed_count:
            breaches.append(
                Breach(
                    ESCROW,
                    subject,
                    f"records {p.claimed_count} claims of {p.claimed_amount};"
                    f" its claim rows are {p.claims_count} of {p.claims_sum}",
                )
            )
        if p.claimed_amount > p.amount or p.claimed_count > p.shares:
            breaches.append(
                Breach(
                    ESCROW,
                    subject,
                    f"paid out {p.claimed_amount} in {p.claimed_count} claims;"
                    f" it held {p.amount} in {p.shares} shares",
                )
            )
        if p.state == packet_rules.FINISHED and (
            p.claimed_amount != p.amount or p.claimed_count != p.shares
        ):
            breaches.append(
                Breach(ESCROW, subject, f"is finished with {p.amount - p.claimed_amount} unpaid")
            )
    for currency in sorted(set(escrow) | set(owed)):
        held = escrow.get(currency, 0)
        if held != owed[currency]:
            breaches.append(
                Breach(
                    ESCROW,
                    f"currency {currency}",
                    f"escrow holds {held}; open packets still hold {owed[currency]}",
                )
            )
    return len(packets), breaches


def check_chat_transfers(transfers: Sequence[ChatTransfer]) -> tuple[int, list[Breach]]:
    """An open chat transfer's pending ledger transfer is open; an accepted one's is posted; a
    declined or returned one's is voided; and it reserves the transfer's amount."""
    breaches: list[Breach] = []
    for t in transfers:
        subject = f"chat transfer {t.id}"
        want = CHAT_TRANSFER_PENDING.get(t.state)
        if want is None:
            breaches.append(Breach(CHAT_TRANSFERS, subject, f"has unknown state {t.state!r}"))
        elif t.pending_state is None:
            breaches.append(Breach(CHAT_TRANSFERS, subject, "names no pending ledger transfer"))
        elif t.pending_state != want:
            breaches.append(
                Breach(
                    CHAT_TRANSFERS, subject, f"is {t.state} but its pending is {t.pending_state}"
                )
            )
        if t.pending_amount is not None and t.pending_amount != t.amount:
            breaches.append(
                Breach(
                    CHAT_TRANSFERS,
                    subject,
                    f"is for {t.amount} but its pending reserves {t.pending_amount}",
                )
            )
    return len(transfers), breaches


def audit(facts: Facts) -> Audit:
    """Run every check over one snapshot's facts."""
    accounts = [o.account for o in facts.accounts]
    outcomes = {
        CURRENCY_SUMS: check_currency_sums(accounts),
        ACCOUNT_SUMS: check_account_sums(accounts, facts.movements),
        NO_OVERDRAFT: check_no_overdraft(facts.accounts),
        PENDING_RESOLUTION: check_pending_resolution(
            facts.pendings, facts.pending_states, facts.resolutions
        ),
        ESCROW: check_escrow(facts.accounts, facts.packets, facts.escrow_name),
        CHAT_TRANSFERS: check_chat_transfers(facts.chat_transfers),
    }
    return Audit(
        [
            CheckResult(name, TITLES[name], checked, breaches)
            for name, (checked, breaches) in outcomes.items()
        ]
    )
