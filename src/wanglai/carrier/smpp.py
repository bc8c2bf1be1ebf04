"""The SMS channel to the operator's SMSC: an ESME session over SMPP 3.4 (bind_transceiver).

The PDU codec, the session, its window of outstanding requests and its enquire_link timer are
the ``smpp34`` library's (a Rust core with an asyncio API). This module adds what an outbox
needs around it: one session kept bound (reconnect with capped, jittered backoff; a liveness
check every ``enquire_link_s``), texts encoded per message (``domain/sms_text.py``), throttling
answers (ESME_RTHROTTLED 0x58, ESME_RMSGQFUL 0x14) turned into a pause for every submit and a
resubmit of the throttled one, an optional cap on submits per second, and deliver_sm sorted
into delivery receipts and texts from phones (concatenated parts reassembled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import smpp34

from wanglai.carrier.sms import Events, Inbound, Outgoing, Receipt, Refused, Unavailable
from wanglai.domain import sms_receipt, sms_text
from wanglai.domain.clock import Clock, SystemClock
from wanglai.domain.phone import mask, try_normalise

if TYPE_CHECKING:
    from wanglai.settings import Settings

log = logging.getLogger("wanglai.smpp")

ESME_RTHROTTLED = 0x58
ESME_RMSGQFUL = 0x14
THROTTLING = (ESME_RTHROTTLED, ESME_RMSGQFUL)
TRANSIENT = (0x08, 0x45, 0x64)
"""System error, submit failed, ESME_RX_T_APPN: try again later (everything else is final)."""
TON_INTERNATIONAL = 1
NPI_E164 = 1


@dataclass(frozen=True)
class SmppConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    source_addr: str = ""
    """The platform's number or short code that SMS come from (and phones reply to)."""
    source_ton: int = 0
    source_npi: int = 0
    window: int = 10
    """Submits outstanding (sent, not yet answered) on the session at once."""
    enquire_link_s: float = 30.0
    """How often the session's liveness is checked; a dead session is rebound."""
    max_per_s: float = 0.0
    """A cap on submits per second (0: none), for SMSCs that throttle above a contracted rate."""
    bind_wait_s: float = 10.0
    """How long a submit waits for a bound session before it is put back in the outbox."""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    throttle_min_s: float = 0.05
    throttle_max_s: float = 5.0
    registered_delivery: int = 1
    """Ask for a final delivery receipt."""
    response_timeout_s: float = 30.0
    """A submit unanswered this long is in doubt (tried again later)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SmppConfig:
        return cls(
            host=settings.smpp_host,
            port=settings.smpp_port,
            system_id=settings.smpp_system_id,
            password=settings.smpp_password,
            system_type=settings.smpp_system_type,
            source_addr=settings.smpp_source,
            source_ton=settings.smpp_source_ton,
            source_npi=settings.smpp_source_npi,
            window=settings.smpp_window,
            enquire_link_s=settings.smpp_enquire_link_s,
            max_per_s=settings.smpp_max_per_s,
        )


class SmppChannel:
    """One ESME session (bind_transceiver) to the SMSC, kept bound for the channel's life."""

    name = "smpp"

    def __init__(self, config: SmppConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.window = config.window
        self._events: Events | None = None
        self._smsc: Any = None
        self._bound = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self._reassembler = sms_text.Reassembler()
        self._pause_until = 0.0
        self._throttle_s = 0.0
        self._next_slot = 0.0
        self.binds = 0
        self.throttled = 0

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> SmppChannel:
        return cls(SmppConfig.from_settings(settings), clock)

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    async def start(self, events: Events) -> None:
        self._events = events
        self._keeper = asyncio.create_task(self._keep_bound(), name="smpp-session")

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None

    # ---------------------------------------------------------------- submitting

    async def submit(self, sms: Outgoing) -> Sequence[str]:
        try:
            parts = sms_text.encode(sms.text, ref=sms.id & 0xFF)
        except ValueError as exc:
            raise Refused("invalid_text") from exc
        dest = sms.msisdn.removeprefix("+")
        if not dest.isdigit():
            raise Refused("invalid_msisdn")
        ids: list[str] = []
        for part in parts:
            ids.append(await self._submit_part(sms, dest, part, sent_before=bool(ids)))
        return ids

    async def _submit_part(
        self, sms: Outgoing, dest: str, part: sms_text.Part, sent_before: bool
    ) -> str:
        while True:
            smsc = await self._session(in_doubt=sent_before)
            await self._pace()
            try:
                resp = await self._answer(
                    smsc.submit_sm(
                        destination_addr=dest,
                        short_message=part.short_message,
                        source_addr=self.config.source_addr,
                        source_addr_ton=self.config.source_ton,
                        source_addr_npi=self.config.source_npi,
                        dest_addr_ton=TON_INTERNATIONAL,
                        dest_addr_npi=NPI_E164,
                        esm_class=part.esm_class,
                        data_coding=part.data_coding,
                        registered_delivery=self.config.registered_delivery,
                    )
                )
            except (TimeoutError, smpp34.SmppError) as exc:
                # Written, or about to be, when the session went away: the SMSC may have it.
                log.warning("smpp: submit of sms %d lost its session: %s", sms.id, exc)
                self._lost(smsc)
                raise Unavailable("connection_lost", in_doubt=True) from exc
            status = resp.command_status
            if resp.is_success:
                self._throttle_s = max(0.0, self._throttle_s / 2 - self.config.throttle_min_s)
                return str(resp.message_id or f"none-{sms.id}-{len(part.short_message)}")
            if status in THROTTLING:
                self._throttled(status)
                continue
            code = f"smsc_0x{status:02x}"
            if status in TRANSIENT:
                raise Unavailable(code, in_doubt=sent_before)
            log.warning("smpp: sms %d to %s refused: %s", sms.id, mask(sms.msisdn), code)
            raise Refused(code)

    async def _answer(self, pending: Any) -> Any:
        return await asyncio.wait_for(pending, self.config.response_timeout_s)

    def _throttled(self, status: int) -> None:
        """Every submit pauses; the pause doubles while the SMSC keeps throttling."""
        self.throttled += 1
        cfg = self.config
        self._throttle_s = min(max(self._throttle_s * 2, cfg.throttle_min_s), cfg.throttle_max_s)
        loop = asyncio.get_running_loop()
        self._pause_until = max(self._pause_until, loop.time() + self._throttle_s)
        log.info("smpp: SMSC throttles (0x%02x); pausing %.2f s", status, self._throttle_s)

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._pause_until - loop.time()
        if self.config.max_per_s > 0:
            slot = max(self._next_slot, loop.time())
            self._next_slot = slot + 1.0 / self.config.max_per_s
            wait = max(wait, slot - loop.time())
        if wait > 0:
            await asyncio.sleep(wait)

    async def _session(self, in_doubt: bool) -> Any:
        if not self._bound.is_set():
            try:
                await asyncio.wait_for(self._bound.wait(), self.config.bind_wait_s)
            except TimeoutError:
                raise Unavailable("not_bound", in_doubt=in_doubt) from None
        return self._smsc

    def _lost(self, smsc: Any) -> None:
        if self._smsc is smsc:
            self._bound.clear()

    # ---------------------------------------------------------------- the session

    async def _keep_bound(self) -> None:
        delay = self.config.reconnect_min_s
        while True:
            client = self._client()
            try:
                smsc = await client.connect()
            except smpp34.SmppError as exc:
                log.warning(
                    "smpp: bind to %s:%d failed: %s", self.config.host, self.config.port, exc
                )
                await _stop(client)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.config.reconnect_max_s)
                continue
            delay = self.config.reconnect_min_s
            self.binds += 1
            log.info(
                "smpp: bound to %s:%d as %s",
                self.config.host,
                self.config.port,
                self.config.system_id,
            )
            self._smsc = smsc
            self._bound.set()
            try:
                await self._serve(client, smsc)
            finally:
                self._bound.clear()
                self._smsc = None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(smsc.unbind()), 1.0)
                await _stop(client)
            log.warning(
                "smpp: session to %s:%d ended; binding again", self.config.host, self.config.port
            )

    def _client(self) -> Any:
        cfg = self.config
        return smpp34.Client(
            host=cfg.host,
            port=cfg.port,
            system_id=cfg.system_id,
            password=cfg.password,
            bind_type="TRX",
            system_type=cfg.system_type,
            window_size=cfg.window,
            connect_timeout_ms=5000,
        )

    async def _serve(self, client: Any, smsc: Any) -> None:
        """Until the session ends: hand deliver_sm over, and check liveness periodically."""
        reader = asyncio.create_task(self._read(smsc), name="smpp-reader")
        try:
            while not reader.done():
                done, _ = await asyncio.wait({reader}, timeout=self.config.enquire_link_s)
                if not done and not await client.is_alive():
                    log.warning("smpp: session no longer answers")
                    break
        finally:
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _read(self, smsc: Any) -> None:
        while True:
            event = await smsc.next()
            if not isinstance(event, smpp34.DeliverSmEvent):
                return  # Disconnected
            try:
                self._deliver(event)
            except Exception:
                log.exception("smpp: deliver_sm could not be handled")

    def _deliver(self, event: Any) -> None:
        assert self._events is not None
        if sms_receipt.is_receipt(event.esm_class):
            tlvs = [(t.tag, t.value) for t in event.tlvs]
            try:
                info = sms_receipt.parse(event.short_message, tlvs)
            except sms_receipt.MalformedReceipt as exc:
                log.warning("smpp: malformed receipt acknowledged and ignored: %s", exc)
                return
            if info.final:
                error = info.state if info.delivered else f"{info.state} err:{info.error}"
                self._events.receipt(Receipt(info.message_id, info.delivered, error))
            return
        try:
            received = sms_text.decode(event.short_message, event.data_coding, event.esm_class)
        except ValueError as exc:
            log.warning("smpp: unreadable text from a phone ignored: %s", exc)
            return
        source = _e164(event.source_addr, event.source_addr_ton)
        text = self._reassembler.add(source, received)
        if text is not None:
            self._events.inbound(Inbound(source, event.destination_addr, text, self.clock.now_ms()))


def _e164(addr: str, ton: int) -> str:
    """A phone's address as E.164 when it reads as one (international, or digits that make a
    valid number with a plus), else as the SMSC gave it."""
    digits = addr.removeprefix("+")
    if digits.isdigit() and (ton == TON_INTERNATIONAL or ton == 0):
        return try_normalise("+" + digits) or addr
    return addr


async def _stop(client: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), 5.0)
