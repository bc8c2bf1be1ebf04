"""Contacts: phone-book matching, friend requests, friends, blocks. (Being written.)"""

from __future__ import annotations

from wanglai.bus.local import Bus
from wanglai.domain.clock import Clock
from wanglai.store.database import Database


class ContactService:
    def __init__(self, db: Database, clock: Clock, bus: Bus, region: str, phonebook_max: int):
        self.db = db
        self.clock = clock
        self.bus = bus
        self.region = region
        self.phonebook_max = phonebook_max
