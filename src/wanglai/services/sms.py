"""Sending SMS through the outbox, and what comes back: delivery outcomes and texts from phones.

Every SMS is stored first (``store/sms.py``); the sender loop claims due rows, submits them
through the channel (a window of them at once), and records each answer in batched writes.
Receipts and texts from phones arrive from the channel; receipts are recorded in the same
ordered writes as the submits they answer. Handlers registered with ``on_inbound`` and
``on_outcome`` run on one dispatcher task, after the change they report is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wanglai.carrier.sms import Inbound, Outgoing, Receipt, Refused, SmsChannel, Unavailable
from wanglai.domain.clock import Clock
from wanglai.domain.phone import mask
from wanglai.store import sms as store
from wanglai.store.database import Database

log = logging.getLogger("wanglai.sms")

__all__ = ["Inbound", "Outcome", "SmsService"]


@dataclass(frozen=True)
class Outcome:
    """An SMS reached a final state."""

    outbox_id: int
    purpose: str
    ref: int | None
    msisdn: str
    state: str
    """'delivered', 'failed' or 'rejected'."""


InboundHandler = Callable[[Inbound], Awaitable[None]]
OutcomeHandler = Callable[[Outcome], Awaitable[None]]


class SmsService:
    """The outbox's sender and the SMS channel's events, owned by the Container."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        channel: SmsChannel,
        *,
        lease_s: float = 300.0,
        max_attempts: int = 10,
        code_wait_s: float = 5.0,
        poll_s: float = 1.0,
        receipt_grace_s: float = 10.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.channel = channel
        self.lease_ms = int(lease_s * 1000)
        self.max_attempts = max_attempts
        self.code_wait_s = code_wait_s
        self.poll_s = poll_s
        self.receipt_grace_s = receipt_grace_s
        self.batch = max(4 * channel.window, 32)
        self._inbound: list[InboundHandler] = []
        self._outcome: list[OutcomeHandler] = []
        self._wake = asyncio.Event()
        self._queue: asyncio.Queue[store.Claimed] = asyncio.Queue(self.batch)
        self._results: _Results = _Results()
        self._recorded = asyncio.Event()
        self._dispatch: asyncio.Queue[Inbound | Outcome] = asyncio.Queue()
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._attempted: OrderedDict[int, None] = OrderedDict()
        self._late: dict[str, float] = {}
        """Receipts not matched yet, by message id: when first seen (monotonic)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------- the interface

    async def send(
        self,
        msisdn: str,
        text: str,
        purpose: str,
        ref: int | None = None,
        sender_id: int | None = None,
    ) -> int:
        """Store one SMS and wake the sender; returns its outbox id. A login code waits (up to
        ``code_wait_s``) for its first submit attempt, so the caller answers once it is out;
        if that attempt fails, the outbox keeps trying."""
        sms_id = await self.db.write(
            store.enqueue, msisdn, text, purpose, self.clock.now_ms(), ref, sender_id
        )
        waiter = self._waiter(sms_id) if purpose == "code" and self._tasks else None
        self.wake()
        if waiter is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), self.code_wait_s)
            self._waiters.pop(sms_id, None)
        return sms_id

    def wake(self) -> None:
        """Tell the sender there is something new in the outbox (after the commit)."""
        self._wake.set()

    def on_inbound(self, handler: InboundHandler) -> None:
        """Texts from phones to the platform's number go to ``handler`` (every one registered)."""
        self._inbound.append(handler)

    def on_outcome(self, handler: OutcomeHandler) -> None:
        """Delivery receipts and final failures go to ``handler``."""
        self._outcome.append(handler)

    # ---------------------------------------------------------------- channel events

    def receipt(self, receipt: Receipt) -> None:
        self._results.receipts.append((receipt.smsc_id, receipt.delivered, receipt.error))
        self._recorded.set()

    def inbound(self, message: Inbound) -> None:
        self._dispatch.put_nowait(message)

    # ---------------------------------------------------------------- lifetime

    async def start(self) -> None:
        await self.channel.start(self)
        self._tasks = [
            asyncio.create_task(self._claimer(), name="sms-claimer"),
            asyncio.create_task(self._recorder(), name="sms-recorder"),
            asyncio.create_task(self._dispatcher(), name="sms-dispatcher"),
        ]
        self._workers = [
            asyncio.create_task(self._worker(), name=f"sms-worker-{i}")
            for i in range(self.channel.window)
        ]

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop claiming, give submits in flight ``grace_s`` to be answered, put back what was
        claimed but not submitted, record everything, then close the channel."""
        if not self._tasks:
            await self.channel.close()
            return
        claimer, recorder, dispatcher = self._tasks
        await _cancel(claimer)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            self._results.requeued.append((item.id, "shutdown"))
            self._queue.task_done()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace_s)
        for task in self._workers:
            await _cancel(task)
        await _cancel(recorder)
        await self._flush()
        with contextlib.suppress(TimeoutError):  # let handlers see what was just recorded
            await asyncio.wait_for(self._dispatch.join(), grace_s)
        await _cancel(dispatcher)
        self._tasks, self._workers = [], []
        await self.channel.close()

    # ---------------------------------------------------------------- the loops

    async def _claimer(self) -> None:
        while True:
            self._wake.clear()
            try:
                now = self.clock.now_ms()
                claimed = []
                if await self.db.read(store.has_due, now):
                    claimed = await self.db.write(store.claim, now, self.lease_ms, self.batch)
            except Exception:
                log.exception("sms: claiming from the outbox failed; will retry")
                claimed = []
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                continue
            for i, item in enumerate(claimed):
                try:
                    await self._queue.put(item)
                except asyncio.CancelledError:  # stopping: put back what no worker got
                    self._results.requeued.extend((c.id, "shutdown") for c in claimed[i:])
                    raise

    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._submit(item)
            finally:
                self._queue.task_done()

    async def _submit(self, item: store.Claimed) -> None:
        try:
            ids = await self.channel.submit(
                Outgoing(item.id, item.msisdn, item.text, item.attempts)
            )
        except Refused as refused:
            log.warning("sms %d to %s refused: %s", item.id, mask(item.msisdn), refused.code)
            self._results.finished.append((item.id, store.REJECTED, refused.code))
        except asyncio.CancelledError:
            self._results.requeued.append((item.id, "in_doubt"))
            self._recorded.set()
            raise
        except Exception as exc:
            reason = exc.reason if isinstance(exc, Unavailable) else type(exc).__name__
            in_doubt = not isinstance(exc, Unavailable) or exc.in_doubt
            if in_doubt and item.attempts >= self.max_attempts:
                self._results.finished.append((item.id, store.FAILED, f"attempts:{reason}"))
            else:
                self._results.requeued.append((item.id, "in_doubt" if in_doubt else reason))
            if not isinstance(exc, Unavailable):
                log.exception("sms %d: the channel failed", item.id)
            self._recorded.set()
            await asyncio.sleep(0.2)  # a channel that cannot take SMS now: do not spin
            return
        else:
            self._results.submitted.append((item.id, tuple(ids)))
        self._recorded.set()

    async def _recorder(self) -> None:
        while True:
            await self._recorded.wait()
            self._recorded.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._results = self._results, _Results()
        if batch.empty():
            return
        try:
            recorded = await self.db.write(
                store.record,
                batch.submitted,
                batch.requeued,
                batch.finished,
                batch.receipts,
                self.clock.now_ms(),
            )
        except Exception:
            log.exception("sms: recording %d answers failed; will retry", batch.size())
            self._results.merge(batch)
            await asyncio.sleep(0.5)
            self._recorded.set()
            return
        for sms_id, _ids in batch.submitted:
            self._attempted_now(sms_id)
        for sms_id, _why in batch.requeued:
            self._attempted_now(sms_id)
        for sms_id, _state, _error in batch.finished:
            self._attempted_now(sms_id)
        if batch.requeued:
            self.wake()
        for done in recorded.finished:
            self._dispatch.put_nowait(
                Outcome(done.id, done.purpose, done.ref, done.msisdn, done.state)
            )
        self._keep_unmatched(batch, recorded.unmatched)

    def _keep_unmatched(self, batch: _Results, unmatched: list[str]) -> None:
        """A receipt may overtake the record of its own submit (the SMSC answered both before
        the write): keep it for ``receipt_grace_s`` and try again with later writes."""
        now = time.monotonic()
        wanted = set(unmatched)
        retry = False
        for receipt in batch.receipts:
            if receipt[0] not in wanted:
                self._late.pop(receipt[0], None)
                continue
            first = self._late.setdefault(receipt[0], now)
            if now - first < self.receipt_grace_s:
                self._results.receipts.append(receipt)
                retry = True
            else:
                del self._late[receipt[0]]
                log.warning("sms: receipt for unknown message id %r ignored", receipt[0])
        if retry:
            asyncio.get_running_loop().call_later(0.2, self._recorded.set)

    async def _dispatcher(self) -> None:
        while True:
            item = await self._dispatch.get()
            handlers: list[Callable[[object], Awaitable[None]]]
            handlers = self._inbound if isinstance(item, Inbound) else self._outcome  # type: ignore[assignment]
            for handler in handlers:
                try:
                    await handler(item)
                except Exception:
                    log.exception("sms: handler %r failed on %r", handler, type(item).__name__)
            self._dispatch.task_done()

    # ---------------------------------------------------------------- waiting for a first try

    def _waiter(self, sms_id: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if sms_id in self._attempted:
            future.set_result(None)
        else:
            self._waiters[sms_id] = future
        return future

    def _attempted_now(self, sms_id: int) -> None:
        waiter = self._waiters.pop(sms_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._attempted[sms_id] = None
        while len(self._attempted) > 4096:
            self._attempted.popitem(last=False)


class _Results:
    """Answers gathered between two writes."""

    __slots__ = ("finished", "receipts", "requeued", "submitted")

    def __init__(self) -> None:
        self.submitted: list[tuple[int, tuple[str, ...]]] = []
        self.requeued: list[tuple[int, str]] = []
        self.finished: list[tuple[int, str, str]] = []
        self.receipts: list[tuple[str, bool, str]] = []

    def empty(self) -> bool:
        return not (self.submitted or self.requeued or self.finished or self.receipts)

    def size(self) -> int:
        return len(self.submitted) + len(self.requeued) + len(self.finished) + len(self.receipts)

    def merge(self, other: _Results) -> None:
        self.submitted[:0] = other.submitted
        self.requeued[:0] = other.requeued
        self.finished[:0] = other.finished
        self.receipts[:0] = other.receipts


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
