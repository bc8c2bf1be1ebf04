"""Catching a device up: the events in a user's log after the device's cursor, in pages."""

from __future__ import annotations

import msgspec

from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid
from wanglai.domain.paging import check_limit
from wanglai.services.views import EventView, event_view
from wanglai.store import accounts, events
from wanglai.store.database import Database

MAX_PAGE = 5000


class SyncPage(msgspec.Struct):
    events: list[EventView]
    next: int
    """The cursor to ask with next time: the seq of the last event returned."""
    more: bool
    """True when more events follow: ask again right away with ``since=next``."""
    head: int
    """The newest seq in the user's log when this page was read."""


class SyncService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def since(self, user_id: int, after: int, limit: int = 1000) -> SyncPage:
        if after < 0:
            raise Invalid("invalid_since", "'since' is a cursor: 0 or a seq you were given.")
        check_limit(limit, MAX_PAGE)
        rows, head = await self.db.read(events.page, user_id, after, limit)
        views = [event_view(r) for r in rows]
        last = views[-1].seq if views else min(after, head)
        return SyncPage(events=views, next=last, more=last < head, head=head)

    async def head(self, user_id: int) -> int:
        return await self.db.read(events.head, user_id)

    async def save_cursor(self, device_id: int, cursor: int | None) -> None:
        await self.db.write(accounts.touch_device, device_id, self.clock.now_ms(), cursor)
