"""The async client: REST calls, sends that survive reconnects, and the event iterator.

::

    async with Client("http://127.0.0.1:8080") as client:
        await client.request_code("+8613800138000")
        await client.login("+8613800138000", input("code: "), "laptop")
        async for event in client.events():
            print(event.seq, event.type, event.message)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec

from wanglai.client import frames
from wanglai.client.backoff import Backoff
from wanglai.client.connection import Connected, Connection
from wanglai.client.errors import ApiError, ClientError, Disconnected
from wanglai.client.heartbeat import AdaptiveHeartbeat
from wanglai.client.ordering import Cursor, Verdict
from wanglai.gateway.schemas import CodeSent, ConversationRef, ReadRequest
from wanglai.services.views import (
    ConversationView,
    DeviceView,
    EventView,
    MessageView,
    MeView,
    UserView,
)

T = TypeVar("T")
Json = dict[str, Any]
SYNC_PAGE = 1000
RETRYABLE = ("internal", "too_many_in_flight")
"""Refusals that a retry with the same client id may get past."""


class Client:
    """A Wanglai account seen from one device.

    ``cursor`` is where :meth:`events` starts: 0 replays the whole log, a saved :attr:`cursor`
    resumes, and ``None`` starts at the newest event when the socket opens (live only).
    Persisting :attr:`cursor` between runs is up to the caller.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        cursor: int | None = 0,
        backoff: Backoff | None = None,
        on_typing: Callable[[int, int], None] | None = None,
        inbox_limit: int = 10_000,
        heartbeat: AdaptiveHeartbeat | None = None,
        msgpack: bool = False,
        compact: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.msgpack = msgpack
        """Frames as MessagePack on the WebSocket (the ``wanglai.msgpack`` subprotocol)."""
        self.compact = compact
        """Texts as short arrays on the WebSocket (the ``wanglai.compact`` subprotocols): the
        fewest bytes per message, for phones on a metered network."""
        self.heartbeat = heartbeat
        """How the socket's ping interval adapts (by default: from the server's bounds, x1.5
        after each answered ping)."""
        self.token = token
        self.user_id: int | None = None
        self.device_id: int | None = None
        self.backoff = backoff or Backoff()
        self.on_typing = on_typing
        self.inbox_limit = inbox_limit
        """Live events held for the iterator; beyond it they are dropped and fetched by sync."""
        self._cursor = None if cursor is None else Cursor(cursor)
        self._cursor_sent = 0
        self._http: aiohttp.ClientSession | None = None
        self._conn: Connection | None = None
        self._iterating = False

    # ------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the WebSocket and release the HTTP session."""
        if self._conn is not None:
            await self._conn.stop()
            self._conn = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def cursor(self) -> int:
        """The seq of the last event :meth:`events` handed over (save it to resume later)."""
        return 0 if self._cursor is None else self._cursor.seq

    @property
    def connection(self) -> Connection | None:
        """The WebSocket (None until :meth:`connect` or :meth:`events` opens it)."""
        return self._conn

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    # ------------------------------------------------------------ REST

    async def _call(
        self,
        method: str,
        path: str,
        result: type[T] | None = None,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        key: str | None = None,
    ) -> T:
        headers = {}
        if key is not None:
            headers["Idempotency-Key"] = key
        if auth:
            if not self.token:
                raise ApiError("unauthenticated", "Log in first (login() or token=).", 401)
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = frames.encode(body)
            headers["Content-Type"] = "application/json"
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self._session().request(
                method, self.base_url + path, data=data, headers=headers, params=query
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Disconnected(f"{method} {path}: {exc}") from exc
        if status >= 400:
            raise _api_error(raw, status)
        if result is None:
            return None  # type: ignore[return-value]
        return msgspec.json.decode(raw, type=result)

    async def request_code(self, phone: str) -> CodeSent:
        """Ask for a login code by SMS."""
        return await self._call(
            "POST", "/v1/auth/code", CodeSent, body={"phone": phone}, auth=False
        )

    async def login(self, phone: str, code: str, device_name: str = "") -> frames.Login:
        """Log in with the code; the client keeps the token (see :attr:`token`)."""
        answer = await self._call(
            "POST",
            "/v1/auth/login",
            frames.Login,
            body={"phone": phone, "code": code, "device_name": device_name},
            auth=False,
        )
        self.token = answer.token
        self.user_id = answer.user.id
        self.device_id = answer.device_id
        return answer

    async def logout(self) -> None:
        await self._call("POST", "/v1/auth/logout")

    async def me(self) -> MeView:
        view = await self._call("GET", "/v1/me", MeView)
        self.user_id = view.id
        return view

    async def update_me(
        self, *, name: str | None = None, about: str | None = None, dm_policy: str | None = None
    ) -> MeView:
        changes = {"name": name, "about": about, "dm_policy": dm_policy}
        body = {k: v for k, v in changes.items() if v is not None}
        return await self._call("PATCH", "/v1/me", MeView, body=body)

    async def user(self, user_id: int) -> UserView:
        return await self._call("GET", f"/v1/users/{int(user_id)}", UserView)

    async def devices(self) -> list[DeviceView]:
        return await self._call("GET", "/v1/devices", list[DeviceView])

    async def revoke(self, device_id: int) -> None:
        """Log one of your devices out; its sockets close at once."""
        await self._call("DELETE", f"/v1/devices/{int(device_id)}")

    async def conversations(self) -> list[ConversationView]:
        return await self._call("GET", "/v1/conversations", list[ConversationView])

    async def conversation(self, conv: int) -> ConversationView:
        return await self._call("GET", f"/v1/conversations/{int(conv)}", ConversationView)

    async def open_direct(self, user_id: int) -> int:
        """The id of the direct conversation with ``user_id`` (created when needed)."""
        ref = await self._call(
            "POST", "/v1/conversations/direct", ConversationRef, body={"user_id": user_id}
        )
        return ref.id

    async def open_number(self, phone: str) -> int:
        """The id of the conversation with a phone number: the direct one if the number is on
        Wanglai, else an SMS thread (messages go out as SMS, replies come back)."""
        ref = await self._call(
            "POST", "/v1/conversations/direct", ConversationRef, body={"phone": phone}
        )
        return ref.id

    async def history(
        self, conv: int, before: int | None = None, limit: int = 50
    ) -> list[MessageView]:
        """Messages older than ``before`` (default: the newest), newest first."""
        return await self._call(
            "GET",
            f"/v1/conversations/{int(conv)}/messages",
            list[MessageView],
            params={"before": before, "limit": limit},
        )

    async def mark_read(self, conv: int, seq: int) -> int:
        """Move your read pointer to ``seq``; returns where it now is."""
        answer = await self._call(
            "POST", f"/v1/conversations/{int(conv)}/read", ReadRequest, body={"seq": seq}
        )
        return answer.seq

    async def typing(self, conv: int) -> None:
        if self._conn is not None and self._conn.connected:
            try:
                await self._conn.send_frame({"t": "typing", "conv": conv})
                return
            except Disconnected:
                pass
        await self._call("POST", f"/v1/conversations/{int(conv)}/typing")

    async def recall(self, conv: int, seq: int) -> MessageView:
        return await self._call(
            "POST", f"/v1/conversations/{int(conv)}/messages/{int(seq)}/recall", MessageView
        )

    async def edit(self, conv: int, seq: int, text: str) -> MessageView:
        return await self._call(
            "PATCH",
            f"/v1/conversations/{int(conv)}/messages/{int(seq)}",
            MessageView,
            body={"body": {"text": text}},
        )

    async def search(self, q: str, conv: int | None = None, limit: int = 20) -> list[MessageView]:
        return await self._call(
            "GET", "/v1/search", list[MessageView], params={"q": q, "conv": conv, "limit": limit}
        )

    async def sync(self, since: int, limit: int = SYNC_PAGE) -> frames.SyncPage:
        """One page of your event log after ``since`` (:meth:`events` pages for you)."""
        return await self._call(
            "GET", "/v1/sync", frames.SyncPage, params={"since": since, "limit": limit}
        )

    # ------------------------------------------------------------ contacts and groups
    # Their structs live in the services (which import the store), so these return decoded JSON.

    async def lookup(self, phone: str) -> UserView:
        """The user with this phone number."""
        return await self._call("POST", "/v1/contacts/lookup", UserView, body={"phone": phone})

    async def match_phonebook(self, phones: list[str]) -> Json:
        return await self._call("POST", "/v1/contacts/match", Json, body={"phones": phones})

    async def friends(self) -> list[Json]:
        return await self._call("GET", "/v1/friends", list[Json])

    async def friend_requests(self) -> Json:
        """Pending requests to and from you."""
        return await self._call("GET", "/v1/friends/requests", Json)

    async def request_friend(self, user_id: int, note: str = "") -> Json:
        body = {"user_id": user_id, "note": note}
        return await self._call("POST", "/v1/friends/requests", Json, body=body)

    async def accept_friend(self, request_id: int) -> Json:
        path = f"/v1/friends/requests/{int(request_id)}/accept"
        return await self._call("POST", path, Json)

    async def decline_friend(self, request_id: int) -> Json:
        path = f"/v1/friends/requests/{int(request_id)}/decline"
        return await self._call("POST", path, Json)

    async def remove_friend(self, user_id: int) -> None:
        await self._call("DELETE", f"/v1/friends/{int(user_id)}")

    async def block(self, user_id: int) -> Json:
        return await self._call("POST", "/v1/blocks", Json, body={"user_id": user_id})

    async def unblock(self, user_id: int) -> None:
        await self._call("DELETE", f"/v1/blocks/{int(user_id)}")

    # ------------------------------------------------------------ wallet

    async def _pay(self, path: str, body: Any = None, key: str | None = None) -> Json:
        """A money-moving POST under one idempotency key (made here unless given): if the
        connection drops before the answer, it is sent again with the same key, so the money
        moves at most once and the answer is the first one."""
        idem = key or uuid.uuid4().hex
        for attempt in range(3):
            try:
                return await self._call("POST", path, Json, body=body, key=idem)
            except Disconnected:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    async def wallet(self) -> Json:
        """Balance, available amount, limits and settings (amounts in fen)."""
        return await self._call("GET", "/v1/wallet", Json)

    async def statement(
        self, before: int | None = None, limit: int = 50, kind: str | None = None
    ) -> Json:
        params = {"before": before, "limit": limit, "kind": kind}
        return await self._call("GET", "/v1/wallet/statement", Json, params=params)

    async def set_pin(self, pin: str, current: str | None = None) -> Json:
        body = {"pin": pin, "current": current}
        return await self._call("PUT", "/v1/wallet/pin", Json, body=body)

    async def wallet_settings(
        self, strangers: bool | None = None, pin_free_limit: int | None = None
    ) -> Json:
        body = {"strangers": strangers, "pin_free_limit": pin_free_limit}
        return await self._call("PATCH", "/v1/wallet/settings", Json, body=body)

    async def transfer(
        self,
        to: int,
        amount: int,
        note: str = "",
        pin: str | None = None,
        key: str | None = None,
    ) -> Json:
        """Send ``amount`` fen to a person; it waits for them to accept (24 hours)."""
        body = {"to": to, "amount": amount, "note": note, "pin": pin}
        return await self._pay("/v1/wallet/transfers", body, key)

    async def transfer_info(self, transfer_id: int) -> Json:
        return await self._call("GET", f"/v1/wallet/transfers/{int(transfer_id)}", Json)

    async def accept_transfer(self, transfer_id: int, key: str | None = None) -> Json:
        return await self._pay(f"/v1/wallet/transfers/{int(transfer_id)}/accept", None, key)

    async def decline_transfer(self, transfer_id: int, key: str | None = None) -> Json:
        return await self._pay(f"/v1/wallet/transfers/{int(transfer_id)}/decline", None, key)

    async def send_red_packet(
        self,
        conv: int,
        amount: int,
        kind: str = "lucky",
        shares: int | None = None,
        greeting: str = "",
        pin: str | None = None,
        key: str | None = None,
    ) -> Json:
        body = {
            "conv": conv,
            "kind": kind,
            "amount": amount,
            "shares": shares,
            "greeting": greeting,
            "pin": pin,
        }
        return await self._pay("/v1/redpackets", body, key)

    async def claim_red_packet(self, packet_id: int) -> Json:
        """Your share (a second claim returns the first, with ``new`` false)."""
        return await self._call("POST", f"/v1/redpackets/{int(packet_id)}/claim", Json)

    async def red_packet(self, packet_id: int) -> Json:
        return await self._call("GET", f"/v1/redpackets/{int(packet_id)}", Json)

    async def top_up(
        self, amount: int, channel: str = "bank", card: str | None = None, key: str | None = None
    ) -> Json:
        """A funding order: ``pending`` until the bank or the operator confirms it."""
        body = {"channel": channel, "amount": amount, "card": card}
        return await self._pay("/v1/wallet/topups", body, key)

    async def withdraw(
        self, amount: int, account: str, pin: str | None = None, key: str | None = None
    ) -> Json:
        body = {"amount": amount, "account": account, "pin": pin}
        return await self._pay("/v1/wallet/withdrawals", body, key)

    async def funding_order(self, order_id: int) -> Json:
        return await self._call("GET", f"/v1/wallet/funding/{int(order_id)}", Json)

    async def pay(
        self, code: str, amount: int | None = None, pin: str | None = None, key: str | None = None
    ) -> Json:
        """Pay a merchant's payment code (its token or ``wanglai://pay/…`` URI)."""
        body = {"code": code, "amount": amount, "pin": pin}
        return await self._pay("/v1/pay", body, key)

    async def create_group(self, title: str, members: list[int]) -> Json:
        """A new group you own, with some of your friends; its ``id`` is a conversation id."""
        body = {"title": title, "members": members}
        return await self._call("POST", "/v1/groups", Json, body=body)

    async def group(self, conv: int) -> Json:
        return await self._call("GET", f"/v1/groups/{int(conv)}", Json)

    async def invite(self, conv: int, user_ids: list[int]) -> Json:
        path = f"/v1/groups/{int(conv)}/members"
        return await self._call("POST", path, Json, body={"user_ids": user_ids})

    async def leave(self, conv: int) -> None:
        await self._call("POST", f"/v1/groups/{int(conv)}/leave")

    async def mute(self, conv: int, muted: bool = True) -> Json:
        path = f"/v1/conversations/{int(conv)}/mute"
        return await self._call("PUT", path, Json, body={"muted": muted})

    # ------------------------------------------------------------ sending

    async def send(
        self,
        conv: int,
        text: str | None = None,
        *,
        kind: str = "text",
        body: dict[str, Any] | None = None,
        reply_to: int | None = None,
        client_id: str | None = None,
        retry_for: float = 30.0,
    ) -> MessageView:
        """Send a message; returns once the server has stored it durably.

        Goes over the WebSocket when it is connected (the answer is its ack), else over REST.
        A dropped connection or a transient refusal is retried with the same ``client_id`` until
        ``retry_for`` seconds, so the message is stored once however many tries it takes. Over the
        WebSocket the returned view carries ``body`` as sent (the server stores it normalised).
        """
        if body is None:
            if text is None:
                raise ValueError("send() needs text= or body=")
            body = {"text": text}
        elif text is not None:
            raise ValueError("send() takes text= or body=, not both")
        cid = client_id or uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        attempt = 0
        while True:
            try:
                return await self._send_once(conv, cid, kind, body, reply_to, deadline)
            except (Disconnected, ApiError) as exc:
                retryable = isinstance(exc, Disconnected) or (
                    exc.code in RETRYABLE or exc.status >= 500
                )
                wait = self.backoff.delay(attempt)
                if not retryable or loop.time() + wait >= deadline:
                    raise
            await asyncio.sleep(wait)
            attempt += 1

    async def _send_once(
        self,
        conv: int,
        cid: str,
        kind: str,
        body: dict[str, Any],
        reply_to: int | None,
        deadline: float,
    ) -> MessageView:
        conn = self._conn
        if conn is not None and conn.connected and conn.hello is not None:
            sender = conn.hello.user
            frame: dict[str, Any] = {"t": "send", "id": cid, "conv": conv, "kind": kind}
            frame["body"] = body
            if reply_to is not None:
                frame["reply_to"] = reply_to
            remaining = max(0.1, deadline - asyncio.get_running_loop().time())
            try:
                ack = await conn.request(cid, frame, remaining)
            except TimeoutError:
                raise Disconnected("No ack from the server in time.") from None
            return MessageView(
                conv=ack.conv,
                seq=ack.seq,
                sender=sender,
                client_id=cid,
                kind=kind,
                body=body,
                at=ack.at,
                reply_to=reply_to,
            )
        payload: dict[str, Any] = {"client_id": cid, "kind": kind, "body": body}
        if reply_to is not None:
            payload["reply_to"] = reply_to
        return await self._call(
            "POST", f"/v1/conversations/{int(conv)}/messages", MessageView, body=payload
        )

    # ------------------------------------------------------------ live events

    def ws_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/v1/ws", "", ""))

    def _connection(self) -> Connection:
        if not self.token:
            raise ApiError("unauthenticated", "Log in first (login() or token=).", 401)
        if self._conn is None:
            self._conn = Connection(
                self._session(),
                self.ws_url(),
                self.token,
                self.backoff,
                self.inbox_limit,
                self.on_typing,
                self.heartbeat,
                self.msgpack,
                self.compact,
            )
            self._conn.start()
        return self._conn

    async def connect(self, wait: float = 10.0) -> frames.Hello:
        """Open the WebSocket (kept open, and reopened, until :meth:`close`)."""
        hello = await self._connection().wait_connected(wait)
        self.user_id = hello.user
        self.device_id = hello.device
        return hello

    async def events(self) -> AsyncIterator[EventView]:
        """Every event of your log after :attr:`cursor`, in seq order, each exactly once.

        Catches up with ``/v1/sync`` (all pages), then follows the WebSocket. Whenever the socket
        drops (server restart, slow-consumer close, network) it reconnects with backoff and
        catches up from the cursor again; a gap in the live seqs also triggers a catch-up.
        Raises :class:`ApiError` only when reconnecting cannot help (the token was refused or
        this device was revoked: :class:`DeviceRevoked`), and :class:`Disconnected` once the
        client is closed. (The socket opens before the first sync, so nothing committed in
        between is missed; duplicates are dropped by seq.)
        """
        if self._iterating:
            raise RuntimeError("events() is already being iterated on this client")
        self._iterating = True
        try:
            conn = self._connection()
            if self._cursor is None:
                hello = await conn.wait_connected(3600.0)
                self._cursor = Cursor(hello.head)
            cursor = self._cursor
            behind = True
            while True:
                if conn.overflowed:
                    conn.overflowed = False
                    behind = True
                if behind:
                    async for event in self._catch_up(conn, cursor):
                        yield event
                    behind = False
                if not conn.has_items():
                    await self._report_cursor(conn)
                item = await conn.next_item()
                if isinstance(item, Connected):
                    behind = item.head > cursor.seq
                    continue
                verdict = cursor.offer(item.seq)
                if verdict is Verdict.DELIVER:
                    yield item
                elif verdict is Verdict.GAP:
                    behind = True
        finally:
            self._iterating = False

    async def _catch_up(self, conn: Connection, cursor: Cursor) -> AsyncIterator[EventView]:
        attempt = 0
        while True:
            if conn.fatal is not None:
                raise conn.fatal
            if self._conn is not conn:
                raise Disconnected("The client was closed.")
            try:
                page = await self.sync(cursor.seq)
            except Disconnected:
                await asyncio.sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            except ApiError as exc:
                if exc.status < 500:
                    raise
                await asyncio.sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            attempt = 0
            self._cursor_sent = max(self._cursor_sent, cursor.seq)
            for event in page.events:
                if cursor.advance(event.seq):
                    yield event
            if not page.more or not page.events:
                return

    async def _report_cursor(self, conn: Connection) -> None:
        """Tell the server how far this device got (when idle; it keeps the highest)."""
        seq = self.cursor
        if seq > self._cursor_sent and conn.connected:
            try:
                await conn.send_frame({"t": "cursor", "seq": seq})
                self._cursor_sent = seq
            except ClientError:
                pass


def _api_error(raw: bytes, status: int) -> ApiError:
    try:
        envelope = msgspec.json.decode(raw, type=frames.ErrorEnvelope)
    except msgspec.DecodeError:
        return ApiError(f"http_{status}", raw[:200].decode(errors="replace") or "", status)
    return ApiError(envelope.error.code, envelope.error.message, status)
