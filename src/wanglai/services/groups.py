"""Group conversations: create, invite, approve, leave, remove, roles, rename, announce, mute.

The rules are in ``domain/groups.py``; each change is one transaction in ``store/groups.py`` that
also appends its system notice. Once it is committed, this service pushes the notices and data
events to the members' sockets.
"""

from __future__ import annotations

import msgspec

from wanglai.bus.local import Bus, Envelope
from wanglai.domain import groups as rules
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid, NotFound
from wanglai.services import frames
from wanglai.services.messaging import MessagingService
from wanglai.store import conversations
from wanglai.store import groups as store
from wanglai.store.database import Database
from wanglai.store.sql import Row


class MemberView(msgspec.Struct):
    user: int
    name: str
    role: str
    joined_at: int


class GroupView(msgspec.Struct):
    id: int
    title: str
    announcement: str
    owner: int | None
    approval_required: bool
    seq: int
    created_at: int
    role: str
    """Your role in the group."""
    muted: bool
    """Whether you muted the group."""
    members: list[MemberView]


class JoinRequestView(msgspec.Struct):
    id: int
    conv: int
    user: int
    inviter: int
    state: str
    at: int


class InviteResult(msgspec.Struct):
    added: list[int]
    """Users who are now members."""
    requested: list[JoinRequestView]
    """Join requests waiting for an admin (the group requires approval)."""


class MuteState(msgspec.Struct):
    muted: bool


def _request_view(row: Row) -> JoinRequestView:
    rid, conv, user, inviter, state, created = row[:6]
    return JoinRequestView(int(rid), int(conv), int(user), int(inviter), str(state), int(created))


def _group_view(found: tuple[Row, Row, list[Row]]) -> GroupView:
    conv, me, rows = found
    return GroupView(
        id=int(conv[0]),
        title=str(conv[2]),
        announcement=str(conv[3]),
        owner=None if conv[4] is None else int(conv[4]),
        approval_required=bool(conv[5]),
        seq=int(conv[6]),
        created_at=int(conv[7]),
        role=str(me[0]),
        muted=bool(me[1]),
        members=[MemberView(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows],
    )


def _user_id(value: object) -> int:
    [uid] = rules.clean_user_ids([value], required=True)
    return uid


class GroupService:
    def __init__(self, db: Database, clock: Clock, bus: Bus, messaging: MessagingService):
        self.db = db
        self.clock = clock
        self.bus = bus
        self.messaging = messaging

    async def _publish(self, outcome: store.Outcome, at: int) -> None:
        """Push what a committed change appended: notices first, then data events."""
        for appended in outcome.notices:
            self.messaging.publish("message", appended)
        envelopes: list[Envelope] = []
        for event in outcome.events:
            out = frames.data_event_frames(
                event.kind, event.data, event.conv_id, event.deliveries, at
            )
            envelopes.extend(Envelope(uid, frame) for uid, frame in out)
        if envelopes:
            self.bus.publish(envelopes)

    async def get(self, user_id: int, conv_id: int) -> GroupView:
        """The group with its members; only for members."""
        found = await self.db.read(store.details, conv_id, user_id)
        if found is None:
            raise NotFound("group_not_found", "No such group.")
        return _group_view(found)

    async def create(self, user_id: int, title: object, members: list[int]) -> GroupView:
        """A new group owned by the caller, with some of the caller's friends."""
        clean = rules.clean_title(title)
        invitees = rules.clean_user_ids(members, required=False)
        now = self.clock.now_ms()
        outcome = await self.db.write(store.create, user_id, clean, invitees, now)
        await self._publish(outcome, now)
        return await self.get(user_id, int(outcome.value))

    async def update(
        self,
        user_id: int,
        conv_id: int,
        title: object = None,
        announcement: object = None,
        approval_required: bool | None = None,
    ) -> GroupView:
        """Rename, set the announcement or the approval rule (owner and admins)."""
        if title is None and announcement is None and approval_required is None:
            raise Invalid(
                "nothing_to_change", "Send a title, an announcement or approval_required."
            )
        if approval_required is not None and not isinstance(approval_required, bool):
            raise Invalid("invalid_approval_required", "'approval_required' is true or false.")
        clean_title = None if title is None else rules.clean_title(title)
        clean_text = None if announcement is None else rules.clean_announcement(announcement)
        now = self.clock.now_ms()
        outcome = await self.db.write(
            store.update,
            conv_id,
            user_id,
            clean_title,
            clean_text,
            approval_required,
            now,
        )
        await self._publish(outcome, now)
        return await self.get(user_id, conv_id)

    async def invite(self, user_id: int, conv_id: int, user_ids: list[int]) -> InviteResult:
        """Add friends to the group; where approval is required and the caller is no admin,
        join requests are made for the admins instead."""
        invitees = rules.clean_user_ids(user_ids, required=True)
        now = self.clock.now_ms()
        outcome = await self.db.write(store.invite, conv_id, user_id, invitees, now)
        await self._publish(outcome, now)
        added, requested = outcome.value
        return InviteResult(added=list(added), requested=[_request_view(r) for r in requested])

    async def requests(self, user_id: int, conv_id: int) -> list[JoinRequestView]:
        rows = await self.db.read(store.pending_requests, conv_id, user_id)
        return [_request_view(r) for r in rows]

    async def decide(
        self, user_id: int, conv_id: int, request_id: int, approve: bool
    ) -> JoinRequestView:
        now = self.clock.now_ms()
        outcome = await self.db.write(store.decide, conv_id, user_id, request_id, approve, now)
        await self._publish(outcome, now)
        return _request_view(outcome.value)

    async def leave(self, user_id: int, conv_id: int) -> None:
        now = self.clock.now_ms()
        outcome = await self.db.write(store.leave, conv_id, user_id, now)
        await self._publish(outcome, now)

    async def remove(self, user_id: int, conv_id: int, target_id: int) -> GroupView:
        now = self.clock.now_ms()
        outcome = await self.db.write(store.remove, conv_id, user_id, target_id, now)
        await self._publish(outcome, now)
        return await self.get(user_id, conv_id)

    async def set_admin(self, user_id: int, conv_id: int, target_id: int, admin: bool) -> GroupView:
        now = self.clock.now_ms()
        outcome = await self.db.write(store.set_admin, conv_id, user_id, target_id, admin, now)
        await self._publish(outcome, now)
        return await self.get(user_id, conv_id)

    async def transfer(self, user_id: int, conv_id: int, target_id: object) -> GroupView:
        target = _user_id(target_id)
        now = self.clock.now_ms()
        outcome = await self.db.write(store.transfer, conv_id, user_id, target, now)
        await self._publish(outcome, now)
        return await self.get(user_id, conv_id)

    async def mute(self, user_id: int, conv_id: int, muted: bool) -> MuteState:
        """Mute or unmute any conversation you are in (direct or group), for you alone."""
        if not isinstance(muted, bool):
            raise Invalid("invalid_muted", "'muted' is true or false.")
        now = self.clock.now_ms()
        deliveries = await self.db.write(conversations.set_muted, conv_id, user_id, muted, now)
        if deliveries is None:
            raise NotFound("conversation_not_found", "No such conversation.")
        data = {"conv": conv_id, "change": "muted", "muted": muted}
        out = frames.data_event_frames(store.UPDATED, data, conv_id, deliveries, now)
        self.bus.publish([Envelope(uid, frame) for uid, frame in out])
        return MuteState(muted)
