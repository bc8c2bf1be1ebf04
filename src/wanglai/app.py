"""The one container: builds every component once from ``Settings`` and owns their lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from wanglai.bus.local import Bus, LocalBus
from wanglai.carrier.sms import ConsoleChannel, SmsChannel
from wanglai.domain.clock import Clock, SystemClock
from wanglai.domain.interworking import SmsPlan
from wanglai.domain.otp import OtpPolicy
from wanglai.gateway.endpoint import APP_KEY, Router
from wanglai.gateway.errors import error_middleware, error_response
from wanglai.gateway.hub import Hub
from wanglai.gateway.metrics import Metrics
from wanglai.services.accounts import AccountService
from wanglai.services.contacts import ContactService
from wanglai.services.funding import FundingService
from wanglai.services.groups import GroupService
from wanglai.services.interworking import InterworkingService
from wanglai.services.media import MediaService
from wanglai.services.merchants import MerchantService
from wanglai.services.messaging import MessagingService
from wanglai.services.redpackets import RedPacketService
from wanglai.services.sms import SmsService
from wanglai.services.sync import SyncService
from wanglai.services.transfers import TransferService
from wanglai.services.usage import UsageService
from wanglai.services.wallet import WalletService
from wanglai.settings import Settings
from wanglai.store import messages, migrate
from wanglai.store.database import Database, connect

log = logging.getLogger("wanglai")

# The newest migration; a test checks it against the version files. Knowing it lets a server
# whose SQLite database is current start without importing Alembic.
SCHEMA_HEAD = migrate.HEAD


class Container:
    """Every service, built once. Tests build one with a ManualClock and a temp database."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        bus: Bus | None = None,
        sms: SmsChannel | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db: Database = connect(
            settings.database_url, settings.write_process, settings.sqlite_cache_mb
        )
        self.bus: Bus = bus or LocalBus()
        self.sms_channel: SmsChannel = sms or _sms_channel(settings, self.clock)
        self.sms = SmsService(self.db, self.clock, self.sms_channel)
        self.metrics = Metrics()
        self.hub = Hub(self.metrics, settings.send_buffer_bytes)
        pepper = settings.code_pepper or _pepper(settings.data_dir)
        self.accounts = AccountService(
            self.db,
            self.clock,
            self.sms,
            self.bus,
            pepper,
            settings.default_region,
            settings.max_devices,
            OtpPolicy(
                sends_per_number=settings.otp_sends_per_number,
                sends_per_address=settings.otp_sends_per_address,
                sends_per_prefix=settings.otp_sends_per_prefix,
            ),
        )
        self.media = MediaService(self.db, self.clock, settings.media_dir, settings.max_media_bytes)
        sms_plan = SmsPlan(settings.sms_daily_quota, settings.sms_fallback_after_s * 1000)
        self.messaging = MessagingService(
            self.db,
            self.clock,
            self.bus,
            media_check=self.media.check_attachable,
            sms_plan=sms_plan,
            sms_wake=self.sms.wake,
        )
        self.sync = SyncService(self.db, self.clock)
        self.contacts = ContactService(
            self.db, self.clock, self.bus, settings.default_region, settings.phonebook_max
        )
        self.groups = GroupService(self.db, self.clock, self.bus, self.messaging)
        self.wallet = WalletService(self.db, self.clock, self.bus)
        self.redpackets = RedPacketService(self.db, self.clock, self.wallet, self.messaging)
        self.merchants = MerchantService(
            self.db, self.clock, self.wallet, settings.merchant_fee_ppm
        )
        self.funding = FundingService(self.db, self.clock, self.wallet, settings)
        self.transfers = TransferService(self.db, self.clock, self.wallet, self.messaging)
        self.usage = UsageService(self.db, self.clock, settings.usage_sponsor)
        self.interworking = InterworkingService(
            self.db,
            self.clock,
            self.bus,
            self.sms,
            self.messaging,
            sms_plan,
            settings.default_region,
            settings.sms_blocked_prefixes,
            self.contacts.count_lookup,
        )
        self.interworking.attach()

    async def start(self) -> None:
        await asyncio.to_thread(migrate.upgrade, self.settings.database_url, SCHEMA_HEAD)
        await self.db.start()
        self.db.on_batch(self.metrics.observe_batch)
        await self.wallet.start()
        await self.funding.start()
        await self.sms.start()
        await self.bus.start()
        self.bus.subscribe(self.hub.deliver)

    async def close(self) -> None:
        await self.hub.close_all()
        await flush_usage(self)
        await self.funding.close()
        await self.sms.close()
        await self.bus.close()
        await self.db.close()


def _sms_channel(settings: Settings, clock: Clock) -> SmsChannel:
    """The SMS channel ``WANGLAI_SMS_CHANNEL`` names."""
    if settings.sms_channel == "smpp":
        from wanglai.carrier.smpp import SmppChannel

        return SmppChannel.from_settings(settings, clock)
    return ConsoleChannel(settings.sms_log)


def _pepper(data_dir: Path) -> bytes:
    """A per-installation secret for hashing login codes, made on first start."""
    import secrets

    path = data_dir / "code_pepper"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def routers() -> list[Router]:
    from wanglai.gateway import (
        routes_accounts,
        routes_contacts,
        routes_funding,
        routes_groups,
        routes_interworking,
        routes_media,
        routes_merchants,
        routes_messaging,
        routes_redpackets,
        routes_wallet,
    )

    return [
        routes_accounts.router,
        routes_contacts.router,
        routes_messaging.router,
        routes_groups.router,
        routes_media.router,
        routes_redpackets.router,
        routes_merchants.router,
        routes_funding.router,
        routes_wallet.router,
        routes_interworking.router,
    ]


def make_app(container: Container) -> web.Application:
    from wanglai.gateway import openapi, routes_ops, web_client, ws
    from wanglai.gateway.observe import metrics_middleware

    # The REST API is a sub-application with the error and metrics middlewares. The WebSocket
    # route sits on the root application without them: a middleware's frame would stay on every
    # open socket's stack for the socket's whole life (measured: 0.8 kB per idle connection).
    limit = container.settings.max_media_bytes + 4096
    app = web.Application(client_max_size=limit)
    app[APP_KEY] = container
    app.router.add_get("/v1/ws", ws.websocket)
    api = web.Application(middlewares=[metrics_middleware, error_middleware], client_max_size=limit)
    api[APP_KEY] = container
    for router in routers():
        router.install(api, container, prefix="/v1")
    app.add_subapp("/v1", api)
    routes_ops.install(app, container)
    openapi.install(app, routers())
    web_client.install(app)
    app.router.add_route("*", "/{tail:.*}", _not_found)

    async def lifespan(_app: web.Application) -> AsyncIterator[None]:
        await container.start()
        loops = [
            asyncio.create_task(_sweep_idle(container), name="idle-sweeper"),
            asyncio.create_task(_sweep_money(container), name="money-sweeper"),
            asyncio.create_task(_reconcile_funding(container), name="funding-reconciler"),
            asyncio.create_task(_flush_usage(container), name="usage-flusher"),
            asyncio.create_task(_sweep_sms_fallbacks(container), name="sms-fallback-sweeper"),
        ]
        if container.db.dialect == "sqlite":
            loops.append(asyncio.create_task(_index_search(container), name="search-indexer"))
        yield
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await container.close()

    async def close_sockets(_app: web.Application) -> None:
        # aiohttp waits for open handlers (up to 60 s) before running cleanup_ctx: close the
        # WebSockets (1001) on shutdown so that a SIGTERM stops the server at once.
        await container.hub.close_all()

    app.cleanup_ctx.append(lifespan)
    app.on_shutdown.append(close_sockets)
    return app


async def _not_found(request: web.Request) -> web.Response:
    return error_response("route_not_found", f"No endpoint {request.path}.", 404)


async def _sweep_idle(container: Container) -> None:
    """Close connections that stopped pinging; one loop for all, no timer per connection.

    A client may stretch its pings up to ``heartbeat_max_s`` apart, so a connection is idle
    only when silent for longer than that plus one ``heartbeat_s`` of grace."""
    interval = container.settings.heartbeat_s
    limit = max(interval, container.settings.heartbeat_max_s) + interval
    while True:
        await asyncio.sleep(interval)
        closed = container.hub.close_idle(limit)
        if closed:
            log.info("closed %d idle connections", closed)


async def _reconcile_funding(container: Container) -> None:
    """Settle funding orders whose partner callback is overdue, by asking the partner."""
    while True:
        await asyncio.sleep(container.settings.reconcile_interval_s)
        try:
            settled = await container.funding.reconcile()
            if settled:
                log.info("reconciled %d funding orders", settled)
        except Exception:
            log.exception("funding reconciliation failed; will retry")


async def _sweep_money(container: Container) -> None:
    """Return what waited too long (transfers not accepted within 24 hours, red packets not
    fully claimed within 24 hours); one loop for
    every money use case's expiry, on the injected clock."""
    sweeps = [container.transfers.expire, container.redpackets.expire]
    while True:
        for sweep in sweeps:
            try:
                await sweep()
            except Exception:
                log.exception("money sweep %s failed; will retry", sweep.__qualname__)
        await asyncio.sleep(container.settings.money_sweep_s)


async def flush_usage(container: Container) -> int:
    """Collect the open WebSockets' counts and write every usage sum to the database."""
    from wanglai.gateway import metering

    metering.harvest(container.hub, container.usage)
    return await container.usage.flush()


async def _flush_usage(container: Container, margin_ms: int = 10) -> None:
    """Flush usage every ``usage_flush_s`` and just before each China-time midnight, so that a
    WebSocket's bytes are counted for the day they crossed (HTTP exchanges are counted for the
    moment they end)."""
    from wanglai.domain.usage import ms_to_next_day

    interval_ms = int(container.settings.usage_flush_s * 1000)
    while True:
        wait_ms = interval_ms
        to_midnight = ms_to_next_day(container.clock.now_ms())
        if to_midnight > 2 * margin_ms:
            wait_ms = min(wait_ms, to_midnight - margin_ms)
        await asyncio.sleep(wait_ms / 1000)
        try:
            await flush_usage(container)
        except Exception:
            log.exception("usage flush failed; the sums are kept for the next one")


async def _sweep_sms_fallbacks(container: Container) -> None:
    """Text the messages whose sender asked for SMS fallback and that no device of their
    recipient received in time."""
    while True:
        try:
            while await container.interworking.sweep() >= 200:
                pass
        except Exception:
            log.exception("sms fallback sweep failed; will retry")
        await asyncio.sleep(container.settings.sms_sweep_s)


def _where_codes_go(settings: Settings) -> str:
    if settings.sms_channel == "smpp":
        return f"the code goes by SMS through the SMSC at {settings.smpp_host}:{settings.smpp_port}"
    return f"the code is written to {settings.sms_log}"


async def _index_search(container: Container, interval_s: float = 0.1) -> None:
    """Keep SQLite's search index caught up, in bulk; search covers the unindexed tail itself."""
    while True:
        try:
            while await container.db.write(messages.index_search, 20_000) == 20_000:
                pass
        except Exception:
            log.exception("search indexing failed; will retry")
        await asyncio.sleep(interval_s)


def serve(settings: Settings, migration: migrate.Apart | None = None) -> None:
    """Run the server until SIGINT/SIGTERM; prints where it listens once it accepts connections."""
    started = time.perf_counter()
    _limit_malloc_arenas()
    # before the container starts, so that its own check finds nothing to do
    (migration or migrate.begin_apart(settings.database_url, SCHEMA_HEAD)).wait()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_serve(settings, started))


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and
    memory freed in one arena is not reused by another. The server's threads (SQLite writer,
    readers, checkpoints) then hold memory the event loop's thread cannot use."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections. The server allocates a few objects per frame, and
    the collector's default thresholds then run a full pass over every live object (every
    connection's state included) often enough to show in profiles as pauses. Objects made at
    start-up are frozen out of collection, and young generations are collected less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(5_000, 10, 10)


async def _serve(settings: Settings, started: float) -> None:
    import signal

    container = Container(settings)
    from wanglai.gateway.metering import MeteredRunner

    runner = MeteredRunner(make_app(container), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=4096, reuse_address=True)
    await site.start()
    _tune_gc()
    ms = (time.perf_counter() - started) * 1000
    base = f"http://{settings.host}:{settings.port}"
    print(
        f"wanglai ready in {ms:.0f} ms on {base}\n"
        f"  API docs   {base}/docs   (OpenAPI: {base}/openapi.json)\n"
        f"  WebSocket  ws://{settings.host}:{settings.port}/v1/ws\n"
        f"  metrics    {base}/metrics\n"
        f"  database   {settings.database_label}\n"
        f'  log in     POST {base}/v1/auth/code with {{"phone": "+8613800138000"}};'
        f" {_where_codes_go(settings)}, or run `wanglai chat`",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
