"""The SMS channel interface (what the outbox sender submits through) and the development
channel that writes each SMS to a file. The operator's SMSC is ``carrier/smpp.py``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wanglai.domain.phone import mask

log = logging.getLogger("wanglai.sms")


@dataclass(frozen=True)
class Outgoing:
    """One SMS from the outbox, to submit."""

    id: int
    msisdn: str
    """E.164, with the plus."""
    text: str
    attempts: int = 1
    """1 on the first try; more when it is being tried again."""


@dataclass(frozen=True)
class Inbound:
    """A text from a phone (MO) to the platform's number."""

    source: str
    """The sender, E.164."""
    dest: str
    """The platform's number or short code it was sent to."""
    text: str
    received_ms: int


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt for one submitted part, by the SMSC's message id."""

    smsc_id: str
    delivered: bool
    error: str
    """The final state (and error code) as the SMSC reported it, e.g. ``UNDELIV err:001``."""


class Refused(Exception):
    """The SMSC refused this SMS for good (bad number, bad text...): do not try again."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Unavailable(Exception):
    """The SMS could not be handed over now; try again later.

    ``in_doubt`` when it was written to the SMSC but its answer never came (the connection
    dropped): the SMSC may have it, so trying again may deliver it twice."""

    def __init__(self, reason: str, in_doubt: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.in_doubt = in_doubt


class Events(Protocol):
    """What a channel reports back to the SMS service."""

    def receipt(self, receipt: Receipt) -> None: ...

    def inbound(self, message: Inbound) -> None: ...


class SmsChannel(Protocol):
    name: str
    window: int
    """How many submits the sender may have waiting on this channel at once."""

    async def start(self, events: Events) -> None:
        """Begin (connect, bind); report receipts and inbound texts to ``events``."""
        ...

    async def close(self) -> None: ...

    async def submit(self, sms: Outgoing) -> Sequence[str]:
        """Hand one SMS over; returns the channel's message id of each part once accepted.
        Raises :class:`Refused` (never retry) or :class:`Unavailable` (retry later). Throttling
        by the far end is handled inside: the call just takes longer."""
        ...


class ConsoleChannel:
    """Writes every SMS to the log and appends it to ``sms.log`` so a developer can read codes."""

    name = "console"
    window = 4

    def __init__(self, path: Path) -> None:
        self.path = path

    async def start(self, events: Events) -> None:
        return None

    async def close(self) -> None:
        return None

    async def submit(self, sms: Outgoing) -> Sequence[str]:
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} to={sms.msisdn} {sms.text}\n"
        await asyncio.to_thread(self._append, line)
        log.info("sms to %s: %s", mask(sms.msisdn), sms.text)
        return (f"console-{sms.id}",)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
