"""The ledger check as a use case: read one snapshot of the ledger and audit it.

``wanglai admin ledger check`` prints what this returns; tests and the crash test call it
in-process on a running container's database.
"""

from __future__ import annotations

from wanglai.domain.ledger_audit import Audit, audit
from wanglai.store import ledger_audit
from wanglai.store.database import Database


async def check_ledger(db: Database) -> Audit:
    """Every ledger invariant over one consistent snapshot; ``.ok`` is False on any breach."""
    facts = await db.read(ledger_audit.facts)
    return audit(facts)
