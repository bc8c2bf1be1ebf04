"""Group conversations: create, invite, approve, leave, remove, roles, rename, announce, mute.
(Being written.)"""

from __future__ import annotations

from wanglai.bus.local import Bus
from wanglai.domain.clock import Clock
from wanglai.services.messaging import MessagingService
from wanglai.store.database import Database


class GroupService:
    def __init__(self, db: Database, clock: Clock, bus: Bus, messaging: MessagingService):
        self.db = db
        self.clock = clock
        self.bus = bus
        self.messaging = messaging
