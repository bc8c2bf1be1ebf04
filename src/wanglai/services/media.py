"""Media: a content-addressed local store with size and type limits. (Being written.)"""

from __future__ import annotations

from pathlib import Path

from wanglai.domain.clock import Clock
from wanglai.store.database import Database


class MediaService:
    def __init__(self, db: Database, clock: Clock, root: Path, max_bytes: int):
        self.db = db
        self.clock = clock
        self.root = root
        self.max_bytes = max_bytes
