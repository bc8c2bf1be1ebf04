"""Delivery of frames to whichever process holds a user's sockets.

The interface is small so that NATS can stand behind it when several processes serve together:
``publish`` a batch of envelopes, and every subscriber (one per process: its connection hub)
receives them. The in-process bus hands them over directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol


class Envelope(NamedTuple):
    """A frame for every socket of ``user_id``; with ``close_device`` set, close that device.

    ``skip_device`` is left out: the device that sent a message gets its own copy merged with
    the acknowledgement, straight from the connection that carried the send.
    """

    user_id: int
    frame: bytes
    close_device: int = 0
    skip_device: int = 0


Handler = Callable[[Sequence[Envelope]], None]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def subscribe(self, handler: Handler) -> None: ...

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Hand envelopes over for delivery; never waits (a networked bus buffers and flushes
        on a task of its own), so a committed change is pushed without a scheduling hop."""
        ...


class LocalBus:
    """Everything in one process: publish calls the subscribers directly."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        for handler in self._handlers:
            handler(envelopes)
