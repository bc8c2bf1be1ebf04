"""Settings, read once from the environment (``WANGLAI_*``) with defaults for a laptop."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wanglai.domain.usage import Sponsor

from wanglai.domain.interworking import DEFAULT_BLOCKED_PREFIXES, parse_prefixes

SMS_CHANNELS = ("console", "smpp")
"""``console`` writes SMS to ``sms.log``; ``smpp`` submits them to the operator's SMSC."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else int(raw)


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("data"))
    database_url: str = ""
    sms_channel: str = "console"
    default_region: str = "CN"
    code_pepper: bytes = b""
    max_devices: int = 6
    heartbeat_s: int = 60
    heartbeat_max_s: int = 600
    """The longest a client may stay silent between pings (clients lengthen their interval from
    ``heartbeat_s`` up to this while their network keeps the connection)."""
    """What the server asks clients for; a connection silent for 3x this long is closed."""
    send_buffer_bytes: int = 1 << 20
    """Bytes a connection may have unsent before it counts as a slow consumer and is closed."""
    max_body_bytes: int = 64 * 1024
    max_media_bytes: int = 20 * 1024 * 1024
    phonebook_max: int = 5000
    money_sweep_s: int = 30
    """How often expired money holds (unaccepted transfers, ...) are returned."""
    otp_sends_per_number: int = 3
    otp_sends_per_address: int = 10
    otp_sends_per_prefix: int = 30
    """Login-code limits (SMS-pumping defence); raise them only for load tests."""
    log_json: bool = False
    write_process: bool = False
    """SQLite: commit message batches in a second process (``store/write_process.py``)."""
    sqlite_cache_mb: int = 16
    """SQLite: the page cache of each of the server's connections, in MiB."""
    trust_proxy: bool = False
    """Take the client address from X-Forwarded-For (set it behind a reverse proxy only)."""
    merchant_fee_ppm: int = 6_000
    """The platform's fee on merchant payments, in parts per million (6000 = 0.6%)."""
    bank_url: str = "http://127.0.0.1:8091"
    """The bank gateway (by default the SANDBOX of ``wanglai sandbox bank``)."""
    bank_secret: str = "sandbox-bank-secret"
    operator_billing_url: str = "http://127.0.0.1:8092/carrier-billing/v0.4"
    """The operator's carrier-billing API (by default the SANDBOX of ``wanglai
    operator-sandbox``)."""
    operator_token_url: str = ""
    """Its OAuth2 token endpoint; defaults to ``/oauth2/token`` at the API's host."""
    operator_client_id: str = "wanglai"
    operator_client_secret: str = "sandbox-operator-secret"
    operator_sink_secret: str = "sandbox-sink-secret"
    """Signs the bearer token the operator shows when it posts a payment's notifications."""
    callback_base_url: str = ""
    """Where partners reach this server's callbacks; defaults to ``http://host:port``."""
    carrier_monthly_cap: int = 30_000
    """Top-ups charged to the phone bill, per user and China-time month, in fen (300.00)."""
    partner_timeout_s: float = 10.0
    reconcile_interval_s: float = 60.0
    reconcile_after_s: float = 300.0
    """Ask the partner about an order still pending (no callback) this long after it changed."""
    usage_flush_s: float = 60.0
    """How often usage counts (bytes, connects, heartbeats, pushes) are written to the database."""
    usage_sponsor_id: str = "wanglai"
    """sponsorIdentity in usage records: who pays for the zero-rated data (operator's name)."""
    usage_asp_id: str = "wanglai"
    """applicationServiceProviderIdentity in usage records: the app, as the operator names it."""
    usage_rating_group: int = 1
    """ratingGroup in usage records: the operator's rating group for this app's traffic."""
    usage_service_id: int = 1
    """serviceIdentifier in usage records."""
    sms_daily_quota: int = 20
    """Free SMS per user per day (China time): messages to numbers not on Wanglai, fallbacks."""
    sms_fallback_after_s: int = 600
    """A message sent with ``sms_fallback`` is texted when no device of the recipient received
    it this long after it was sent (0 turns the option off)."""
    sms_sweep_s: float = 15.0
    """How often due SMS fallbacks are looked for."""
    sms_blocked_prefixes: tuple[str, ...] = DEFAULT_BLOCKED_PREFIXES
    """E.164 prefixes no user may text (premium-rate, service numbers, short codes)."""
    smpp_host: str = "127.0.0.1"
    smpp_port: int = 2775
    smpp_system_id: str = ""
    smpp_password: str = ""
    smpp_system_type: str = ""
    smpp_source: str = ""
    """The platform's number or short code SMS are sent from (and phones reply to)."""
    smpp_source_ton: int = 0
    smpp_source_npi: int = 0
    smpp_window: int = 10
    """Submits outstanding on the SMPP session at once."""
    smpp_enquire_link_s: float = 30.0
    smpp_max_per_s: float = 0.0
    """A cap on submits per second to the SMSC (0: none)."""

    def __post_init__(self) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'wanglai.db'}"
        if self.sms_channel not in SMS_CHANNELS:
            raise ValueError(
                f"WANGLAI_SMS_CHANNEL={self.sms_channel!r}: choose one of {', '.join(SMS_CHANNELS)}"
            )
        if not self.usage_flush_s > 0:
            raise ValueError("WANGLAI_USAGE_FLUSH_S is a number of seconds above 0")
        if self.sms_daily_quota < 0 or self.sms_fallback_after_s < 0:
            raise ValueError("WANGLAI_SMS_DAILY_QUOTA and WANGLAI_SMS_FALLBACK_AFTER_S are >= 0")
        if self.sms_channel == "smpp" and not self.smpp_system_id:
            raise ValueError("WANGLAI_SMS_CHANNEL=smpp needs WANGLAI_SMPP_SYSTEM_ID and _PASSWORD")
        if not 1 <= self.smpp_window <= 1000:
            raise ValueError("WANGLAI_SMPP_WINDOW is 1 to 1000")
        if not 0 <= self.merchant_fee_ppm <= 1_000_000:
            raise ValueError("WANGLAI_MERCHANT_FEE_PPM is 0 to 1000000 (parts per million)")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "host": env.get("WANGLAI_HOST", "127.0.0.1"),
            "port": _int("WANGLAI_PORT", 8080),
            "data_dir": Path(env.get("WANGLAI_DATA_DIR", "data")),
            "database_url": env.get("WANGLAI_DATABASE_URL", ""),
            "sms_channel": env.get("WANGLAI_SMS_CHANNEL", "console"),
            "default_region": env.get("WANGLAI_DEFAULT_REGION", "CN"),
            "code_pepper": env.get("WANGLAI_CODE_PEPPER", "").encode(),
            "heartbeat_s": _int("WANGLAI_HEARTBEAT_S", 60),
            "heartbeat_max_s": _int("WANGLAI_HEARTBEAT_MAX_S", 600),
            "otp_sends_per_number": _int("WANGLAI_OTP_SENDS_PER_NUMBER", 3),
            "otp_sends_per_address": _int("WANGLAI_OTP_SENDS_PER_ADDRESS", 10),
            "otp_sends_per_prefix": _int("WANGLAI_OTP_SENDS_PER_PREFIX", 30),
            "log_json": env.get("WANGLAI_LOG_JSON", "") in ("1", "true"),
            "trust_proxy": env.get("WANGLAI_TRUST_PROXY", "") in ("1", "true"),
            "write_process": env.get("WANGLAI_WRITE_PROCESS", "1") in ("1", "true"),
            "sqlite_cache_mb": _int("WANGLAI_SQLITE_CACHE_MB", 16),
            "send_buffer_bytes": _int("WANGLAI_SEND_BUFFER_BYTES", 1 << 20),
            "max_devices": _int("WANGLAI_MAX_DEVICES", 6),
            "max_body_bytes": _int("WANGLAI_MAX_BODY_BYTES", 64 * 1024),
            "max_media_bytes": _int("WANGLAI_MAX_MEDIA_BYTES", 20 * 1024 * 1024),
            "phonebook_max": _int("WANGLAI_PHONEBOOK_MAX", 5000),
            "merchant_fee_ppm": _int("WANGLAI_MERCHANT_FEE_PPM", 6_000),
            "bank_url": env.get("WANGLAI_BANK_URL", "http://127.0.0.1:8091"),
            "bank_secret": env.get("WANGLAI_BANK_SECRET", "sandbox-bank-secret"),
            "operator_billing_url": env.get(
                "WANGLAI_OPERATOR_BILLING_URL", "http://127.0.0.1:8092/carrier-billing/v0.4"
            ),
            "operator_token_url": env.get("WANGLAI_OPERATOR_TOKEN_URL", ""),
            "operator_client_id": env.get("WANGLAI_OPERATOR_CLIENT_ID", "wanglai"),
            "operator_client_secret": env.get(
                "WANGLAI_OPERATOR_CLIENT_SECRET", "sandbox-operator-secret"
            ),
            "operator_sink_secret": env.get("WANGLAI_OPERATOR_SINK_SECRET", "sandbox-sink-secret"),
            "callback_base_url": env.get("WANGLAI_CALLBACK_BASE_URL", ""),
            "carrier_monthly_cap": _int("WANGLAI_CARRIER_MONTHLY_CAP", 30_000),
            "partner_timeout_s": float(env.get("WANGLAI_PARTNER_TIMEOUT_S") or 10.0),
            "reconcile_interval_s": float(env.get("WANGLAI_RECONCILE_INTERVAL_S") or 60.0),
            "reconcile_after_s": float(env.get("WANGLAI_RECONCILE_AFTER_S") or 300.0),
            "money_sweep_s": _int("WANGLAI_MONEY_SWEEP_S", 30),
            "usage_flush_s": float(env.get("WANGLAI_USAGE_FLUSH_S") or 60.0),
            "usage_sponsor_id": env.get("WANGLAI_USAGE_SPONSOR_ID", "wanglai"),
            "usage_asp_id": env.get("WANGLAI_USAGE_ASP_ID", "wanglai"),
            "usage_rating_group": _int("WANGLAI_USAGE_RATING_GROUP", 1),
            "usage_service_id": _int("WANGLAI_USAGE_SERVICE_ID", 1),
            "sms_daily_quota": _int("WANGLAI_SMS_DAILY_QUOTA", 20),
            "sms_fallback_after_s": _int("WANGLAI_SMS_FALLBACK_AFTER_S", 600),
            "sms_sweep_s": float(env.get("WANGLAI_SMS_SWEEP_S") or 15.0),
            "smpp_host": env.get("WANGLAI_SMPP_HOST", "127.0.0.1"),
            "smpp_port": _int("WANGLAI_SMPP_PORT", 2775),
            "smpp_system_id": env.get("WANGLAI_SMPP_SYSTEM_ID", ""),
            "smpp_password": env.get("WANGLAI_SMPP_PASSWORD", ""),
            "smpp_system_type": env.get("WANGLAI_SMPP_SYSTEM_TYPE", ""),
            "smpp_source": env.get("WANGLAI_SMPP_SOURCE", ""),
            "smpp_source_ton": _int("WANGLAI_SMPP_SOURCE_TON", 0),
            "smpp_source_npi": _int("WANGLAI_SMPP_SOURCE_NPI", 0),
            "smpp_window": _int("WANGLAI_SMPP_WINDOW", 10),
            "smpp_enquire_link_s": float(env.get("WANGLAI_SMPP_ENQUIRE_LINK_S") or 30.0),
            "smpp_max_per_s": float(env.get("WANGLAI_SMPP_MAX_PER_S") or 0.0),
        }
        if env.get("WANGLAI_SMS_BLOCKED_PREFIXES") is not None:
            values["sms_blocked_prefixes"] = parse_prefixes(env["WANGLAI_SMS_BLOCKED_PREFIXES"])
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def database_label(self) -> str:
        """The database URL without its password, for printing."""
        return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", self.database_url)

    @property
    def callback_base(self) -> str:
        """The base URL partners post their callbacks to."""
        return (self.callback_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def usage_sponsor(self) -> Sponsor:
        """The sponsor fields of every usage record."""
        from wanglai.domain.usage import Sponsor

        return Sponsor(
            self.usage_sponsor_id, self.usage_asp_id, self.usage_rating_group, self.usage_service_id
        )

    @property
    def sms_log(self) -> Path:
        return self.data_dir / "sms.log"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"
