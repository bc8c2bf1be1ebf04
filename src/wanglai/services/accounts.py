"""Accounts and devices: login by one-time code, device sessions, profiles."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wanglai.bus.local import Bus, Envelope
from wanglai.domain import otp, secret
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid, NotFound, Unauthorized
from wanglai.domain.phone import normalise, prefix
from wanglai.domain.policy import DM_POLICIES
from wanglai.services.sms import SmsService
from wanglai.services.views import DeviceView, MeView, me_view
from wanglai.store import accounts
from wanglai.store.database import Database

log = logging.getLogger("wanglai.accounts")


@dataclass(frozen=True)
class Session:
    user_id: int
    device_id: int


@dataclass(frozen=True)
class LoginResult:
    token: str
    user: MeView
    device_id: int
    new_user: bool


class AccountService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        sms: SmsService,
        bus: Bus,
        pepper: bytes,
        region: str = "CN",
        max_devices: int = 6,
        policy: otp.OtpPolicy | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sms = sms
        self.bus = bus
        self.pepper = pepper
        self.region = region
        self.max_devices = max_devices
        self.policy = policy or otp.OtpPolicy()

    def phone(self, raw: str) -> str:
        return normalise(raw, self.region)

    async def request_code(self, raw_phone: str, address: str) -> int:
        """Send a login code to the number; returns seconds the code stays valid."""
        phone = self.phone(raw_phone)
        now = self.clock.now_ms()
        buckets = [f"otp:n:{phone}", f"otp:a:{address}"[:80], f"otp:p:{prefix(phone)}"]
        widest = max(self.policy.window_ms, self.policy.address_window_ms)
        newest = max(
            self.policy.sends_per_number,
            self.policy.sends_per_address,
            self.policy.sends_per_prefix,
        )

        def check(seen: dict[str, list[int]]) -> None:
            history = otp.SendHistory(*(seen[b] for b in buckets))
            otp.check_send(self.policy, history, now)

        code = secret.new_code(self.policy.digits)
        await self.db.write(
            accounts.issue_code,
            phone,
            secret.hash_code(code, phone, self.pepper),
            now + self.policy.ttl_ms,
            buckets,
            now,
            widest,
            newest,
            check,
        )
        minutes = self.policy.ttl_ms // 60_000
        text = f"Your Wanglai code is {code}. It expires in {minutes} minutes."
        await self.sms.send(phone, text, "code")
        return self.policy.ttl_ms // 1000

    async def login(self, raw_phone: str, code: str, device_name: str) -> LoginResult:
        phone = self.phone(raw_phone)
        if not otp.looks_like_code(self.policy, code):
            raise Invalid("invalid_code_format", f"The code has {self.policy.digits} digits.")
        if not isinstance(device_name, str) or len(device_name) > 64:
            raise Invalid("invalid_device_name", "Device name is a string of at most 64 chars.")
        now = self.clock.now_ms()
        token = secret.new_token()
        outcome = await self.db.write(
            accounts.redeem_code,
            phone,
            secret.hash_code(code, phone, self.pepper),
            lambda pending: otp.check_attempt(self.policy, pending, now),
            secret.hash_token(token),
            device_name,
            now,
            self.max_devices,
        )
        if outcome is None:
            raise Unauthorized("wrong_code", "That code is not right; check the SMS and retry.")
        user_row, created, device_id, evicted = outcome
        user = me_view(user_row)
        if evicted:
            self.bus.publish([Envelope(user.id, b"", d) for d in evicted])
        log.info("login user=%s device=%s new=%s", user.id, device_id, created)
        return LoginResult(token, user, device_id, created)

    async def authenticate(self, token: str | None) -> Session:
        if not token:
            raise Unauthorized("unauthenticated", "Log in and send 'Authorization: Bearer TOKEN'.")
        row = await self.db.read_point(accounts.device_by_token, secret.hash_token(token))
        if row is None:
            raise Unauthorized("invalid_token", "This session has ended; log in again.")
        return Session(user_id=int(row[1]), device_id=int(row[0]))

    async def devices(self, session: Session) -> list[DeviceView]:
        rows = await self.db.read(accounts.active_devices, session.user_id)
        return [
            DeviceView(int(r[0]), str(r[2]), int(r[3]), int(r[4]), int(r[0]) == session.device_id)
            for r in rows
        ]

    async def revoke(self, session: Session, device_id: int) -> None:
        changed = await self.db.write(
            accounts.revoke_device, session.user_id, device_id, self.clock.now_ms()
        )
        if not changed:
            raise NotFound("device_not_found", "No such device of yours.")
        self.bus.publish([Envelope(session.user_id, b"", device_id)])

    async def me(self, session: Session) -> MeView:
        row = await self.db.read(accounts.user_by_id, session.user_id)
        if row is None:
            raise Unauthorized("invalid_token", "This account no longer exists.")
        return me_view(row)

    async def update_profile(
        self,
        session: Session,
        name: str | None = None,
        about: str | None = None,
        dm_policy: str | None = None,
    ) -> MeView:
        if name is not None and (not isinstance(name, str) or len(name) > 64):
            raise Invalid("invalid_name", "Display name is at most 64 characters.")
        if about is not None and (not isinstance(about, str) or len(about) > 280):
            raise Invalid("invalid_about", "About text is at most 280 characters.")
        if dm_policy is not None and dm_policy not in DM_POLICIES:
            raise Invalid("invalid_dm_policy", "dm_policy is 'friends' or 'anyone'.")
        row = await self.db.write(accounts.update_profile, session.user_id, name, about, dm_policy)
        if row is None:
            raise NotFound("user_not_found", "No such user.")
        return me_view(row)
