"""The SMS channel interface and the development channel that writes each SMS to a file."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Protocol

from wanglai.domain.phone import mask

log = logging.getLogger("wanglai.sms")


class SmsChannel(Protocol):
    async def send(self, to: str, text: str) -> None:
        """Hand one SMS to the channel; raises when it cannot be accepted."""
        ...


class ConsoleChannel:
    """Writes every SMS to the log and appends it to ``sms.log`` so a developer can read codes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, to: str, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} to={to} {text}\n"
        await asyncio.to_thread(self._append, line)
        log.info("sms to %s: %s", mask(to), text)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
