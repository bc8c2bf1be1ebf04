"""Contacts: phone-book matching, friend requests, friends and blocks.

Each change lands in the event logs of the users who must see it, inside the same transaction;
the frames go out on the bus after it is committed. Events: ``friend.request`` (sender and
recipient), ``friend.accepted`` (both), ``friend.declined`` (both: the recipient's other devices
drop the request too), ``friend.removed`` (both), ``block.changed`` (the blocker only: nothing
tells the blocked user).
"""

from __future__ import annotations

import msgspec

from wanglai.bus.local import Bus
from wanglai.domain import contacts as rules
from wanglai.domain.clock import Clock
from wanglai.domain.errors import Invalid, NotFound
from wanglai.domain.phone import normalise
from wanglai.domain.ratelimit import check_window
from wanglai.services import frames
from wanglai.services.views import UserView, user_view
from wanglai.store import accounts
from wanglai.store import contacts as store
from wanglai.store.contacts import Change, Outcome
from wanglai.store.database import Database
from wanglai.store.events import Notice
from wanglai.store.sql import Row


class FriendRequestView(msgspec.Struct):
    id: int
    sender: UserView
    recipient: UserView
    note: str
    state: str
    """pending, accepted, declined or cancelled."""
    created_at: int
    updated_at: int


class FriendRequests(msgspec.Struct):
    incoming: list[FriendRequestView]
    outgoing: list[FriendRequestView]


class FriendView(msgspec.Struct):
    user: UserView
    since: int


class BlockView(msgspec.Struct):
    user: UserView
    since: int


class PhoneMatch(msgspec.Struct):
    phone: str
    """The number in E.164."""
    given: str
    """The entry as uploaded, to find it in the phone book it came from."""
    user: UserView


class PhonebookMatches(msgspec.Struct):
    matches: list[PhoneMatch]
    invalid: list[str]
    """Entries that are not valid phone numbers, as uploaded."""


def request_view(row: Row, sender: Row, recipient: Row) -> FriendRequestView:
    """From store.contacts.REQUEST_COLUMNS order and the two users' rows."""
    return FriendRequestView(
        id=int(row[0]),
        sender=user_view(sender),
        recipient=user_view(recipient),
        note=str(row[3]),
        state=str(row[4]),
        created_at=int(row[5]),
        updated_at=int(row[6]),
    )


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**62:
        raise Invalid("invalid_" + name, f"'{name}' must be a positive integer.")
    return value


def _announce(change: Change) -> list[Notice]:
    """What each user's log says about a change (see the module docstring)."""
    me, other = change.me, change.other
    view = {uid: user_view(row) for uid, row in change.users.items()}
    if change.what == "blocked" or change.what == "unblocked":
        data = {"user": view[other], "blocked": change.what == "blocked"}
        return [Notice([me], "block.changed", data)]
    if change.what == "removed":
        return [
            Notice([me], "friend.removed", {"user": view[other]}),
            Notice([other], "friend.removed", {"user": view[me]}),
        ]
    assert change.request is not None
    sender, recipient = int(change.request[1]), int(change.request[2])
    request = request_view(change.request, change.users[sender], change.users[recipient])
    if change.what == "requested":
        return [Notice([sender, recipient], "friend.request", {"request": request})]
    if change.what == "accepted":
        return [
            Notice([me], "friend.accepted", {"request": request, "user": view[other]}),
            Notice([other], "friend.accepted", {"request": request, "user": view[me]}),
        ]
    if change.what == "declined":
        return [Notice([sender, recipient], "friend.declined", {"request": request})]
    return []


class ContactService:
    def __init__(self, db: Database, clock: Clock, bus: Bus, region: str, phonebook_max: int):
        self.db = db
        self.clock = clock
        self.bus = bus
        self.region = region
        self.phonebook_max = phonebook_max
        self.policy = rules.PhonebookPolicy(max_numbers=phonebook_max)

    async def _publish(self, outcome: Outcome, now: int) -> None:
        envelopes = frames.notice_envelopes(outcome.sent, now)
        if envelopes:
            self.bus.publish(envelopes)

    def _request_of(self, outcome: Outcome) -> FriendRequestView:
        change = outcome.change
        assert change.request is not None
        sender, recipient = int(change.request[1]), int(change.request[2])
        return request_view(change.request, change.users[sender], change.users[recipient])

    async def _spend(self, bucket: str, limit: int, code: str, message: str) -> None:
        now = self.clock.now_ms()
        window = self.policy.window_ms

        def check(stamps: list[int]) -> None:
            check_window(stamps, limit, window, now, code, message)

        await self.db.write(store.spend_hit, bucket, now, window, check)

    # ------------------------------------------------------------ finding people

    async def match_phonebook(self, user_id: int, entries: list[str]) -> PhonebookMatches:
        """Which of these numbers belong to people on Wanglai that the caller may see."""
        book = rules.sort_phonebook(entries, self.region, self.policy)
        await self._spend(
            f"phonebook:{user_id}",
            self.policy.uploads_per_window,
            "phonebook_rate_limited",
            f"At most {self.policy.uploads_per_window} phone-book uploads an hour; try later.",
        )
        rows = await self.db.read(store.match_phones, user_id, list(book.numbers))
        matches = [
            PhoneMatch(phone=str(r[1]), given=book.numbers[str(r[1])], user=user_view(r))
            for r in rows
        ]
        matches.sort(key=lambda m: m.phone)
        return PhonebookMatches(matches=matches, invalid=book.invalid)

    async def count_lookup(self, user_id: int) -> None:
        """Count one number look-up of the user's hourly allowance (refused past it): whatever
        tells whether a number is on Wanglai spends from the same allowance."""
        await self._spend(
            f"lookup:{user_id}",
            self.policy.lookups_per_window,
            "lookup_rate_limited",
            f"At most {self.policy.lookups_per_window} number look-ups an hour; try later.",
        )

    async def lookup(self, user_id: int, raw_phone: str) -> UserView:
        """The user with this number, if they may be seen by the caller."""
        phone = normalise(raw_phone, self.region)
        await self._spend(
            f"lookup:{user_id}",
            self.policy.lookups_per_window,
            "lookup_rate_limited",
            f"At most {self.policy.lookups_per_window} number look-ups an hour; try later.",
        )
        rows = await self.db.read(store.match_phones, user_id, [phone])
        if not rows:
            raise NotFound("user_not_found", "Nobody on Wanglai has this number.")
        return user_view(rows[0])

    async def profile(self, viewer_id: int, user_id: int) -> UserView:
        """What ``viewer_id`` sees of ``user_id``: nothing if blocked by them (404, as if there
        were no such user), the phone number only if it is themself or a friend."""
        facts = await self.db.read(store.pair_facts, viewer_id, user_id)
        if not facts.exists or facts.blocked_by_them:
            raise NotFound("user_not_found", "No such user.")
        row = await self.db.read(accounts.user_by_id, user_id)
        if row is None:
            raise NotFound("user_not_found", "No such user.")
        view = user_view(row)
        if viewer_id != user_id and not facts.friends:
            view.phone = ""
        return view

    async def visible(self, viewer_id: int, user_id: int) -> bool:
        """Whether ``viewer_id`` may see ``user_id`` (who exists and has not blocked them)."""
        return await self.db.read(store.visible, viewer_id, user_id)

    # ------------------------------------------------------------ friend requests

    async def request(self, user_id: int, target: object, note: object = "") -> FriendRequestView:
        """Ask ``target`` to be friends. Asking again answers with the pending request; asking
        someone who already asked you makes you friends (the request comes back accepted)."""
        other = _positive(target, "user_id")
        rules.check_not_self(user_id, other, "cannot_befriend_self")
        text = rules.check_note(note)
        now = self.clock.now_ms()
        outcome = await self.db.write(
            store.send_request, user_id, other, text, now, rules.decide_request, _announce
        )
        await self._publish(outcome, now)
        return self._request_of(outcome)

    async def requests(self, user_id: int) -> FriendRequests:
        rows = await self.db.read(store.pending_requests, user_id)
        views = [request_view(r[:7], r[7:13], r[13:19]) for r in rows]
        return FriendRequests(
            incoming=[v for v in views if v.recipient.id == user_id],
            outgoing=[v for v in views if v.sender.id == user_id],
        )

    async def accept(self, user_id: int, request_id: int) -> FriendRequestView:
        return await self._answer(user_id, request_id, rules.ACCEPTED)

    async def decline(self, user_id: int, request_id: int) -> FriendRequestView:
        return await self._answer(user_id, request_id, rules.DECLINED)

    async def _answer(self, user_id: int, request_id: int, answer: str) -> FriendRequestView:
        if not 1 <= request_id <= 2**62:
            raise NotFound("friend_request_not_found", "No such friend request to you.")
        now = self.clock.now_ms()
        outcome = await self.db.write(
            store.answer_request,
            user_id,
            request_id,
            answer,
            now,
            lambda to_id, state: rules.decide_answer(user_id, to_id, state, answer),
            _announce,
        )
        await self._publish(outcome, now)
        return self._request_of(outcome)

    # ------------------------------------------------------------ friends

    async def friends(self, user_id: int) -> list[FriendView]:
        rows = await self.db.read(store.friends, user_id)
        return [FriendView(user=user_view(r), since=int(r[6])) for r in rows]

    async def remove_friend(self, user_id: int, friend_id: int) -> None:
        if not 1 <= friend_id <= 2**62 or friend_id == user_id:
            raise NotFound("friend_not_found", "This person is not your friend.")
        now = self.clock.now_ms()
        outcome = await self.db.write(store.remove_friend, user_id, friend_id, now, _announce)
        await self._publish(outcome, now)

    # ------------------------------------------------------------ blocks

    async def block(self, user_id: int, target: object) -> BlockView:
        other = _positive(target, "user_id")
        rules.check_not_self(user_id, other, "cannot_block_self")
        now = self.clock.now_ms()
        outcome = await self.db.write(store.block, user_id, other, now, _announce)
        await self._publish(outcome, now)
        assert outcome.change.since is not None
        return BlockView(user=user_view(outcome.change.users[other]), since=outcome.change.since)

    async def unblock(self, user_id: int, blocked_id: int) -> None:
        if not 1 <= blocked_id <= 2**62:
            raise NotFound("block_not_found", "You have not blocked this person.")
        now = self.clock.now_ms()
        outcome = await self.db.write(store.unblock, user_id, blocked_id, now, _announce)
        await self._publish(outcome, now)

    async def blocked(self, user_id: int) -> list[BlockView]:
        rows = await self.db.read(store.blocked, user_id)
        return [BlockView(user=user_view(r), since=int(r[6])) for r in rows]
