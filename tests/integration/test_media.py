"""Media over HTTP on both databases: upload, dedupe, limits, types, who may fetch, and sends."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from wanglai.app import Container, make_app
from wanglai.bus.local import LocalBus
from wanglai.domain.clock import ManualClock
from wanglai.domain.errors import Invalid, NotFound
from wanglai.settings import Settings

from .conftest import Delivered, RecordingSms

LIMIT = 64 * 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"jpeg body" * 300
OGG = b"OggS\x00\x02" + b"voice" * 100


@dataclass
class User:
    id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Served:
    container: Container
    client: TestClient[Any, Any]
    sms: RecordingSms
    delivered: Delivered
    root: Path
    _next_phone: int = 13900139000

    async def user(self) -> User:
        """A new user who accepts direct messages from anyone (friendship has its own tests)."""
        self._next_phone += 1
        phone = f"+86{self._next_phone}"
        accounts = self.container.accounts
        await accounts.request_code(phone, "10.1.0.1")
        result = await accounts.login(phone, self.sms.last_code(phone), "test")
        response = await self.client.patch(
            "/v1/me",
            json={"dm_policy": "anyone"},
            headers={"Authorization": f"Bearer {result.token}"},
        )
        assert response.status == 200, await response.text()
        return User(result.user.id, result.token)

    async def upload(self, user: User, data: Any, content_type: str = "image/png") -> Any:
        response = await self.client.post(
            "/v1/media", data=data, headers={**user.auth, "Content-Type": content_type}
        )
        return response

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    sms = RecordingSms()
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, code_pepper=b"test-pepper", max_media_bytes=LIMIT
    )
    container = Container(settings, clock=ManualClock(), bus=LocalBus(), sms=sms)
    client: TestClient[Any, Any] = TestClient(TestServer(make_app(container)))
    await client.start_server()
    delivered = Delivered()
    container.bus.subscribe(delivered)
    try:
        yield Served(container, client, sms, delivered, settings.media_dir)
    finally:
        await client.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def error_code(response: Any) -> str:
    return str((await response.json())["error"]["code"])


async def test_upload_then_download_round_trip(served: Served) -> None:
    alice = await served.user()
    response = await served.upload(alice, PNG)
    assert response.status == 201
    digest = sha(PNG)
    assert await response.json() == {"hash": digest, "size": len(PNG), "mime": "image/png"}
    assert served.files() == [served.root / digest[:2] / digest[2:4] / digest]
    got = await served.client.get(f"/v1/media/{digest}", headers=alice.auth)
    assert got.status == 200
    assert await got.read() == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert got.headers["ETag"] == f'"{digest}"'
    again = await served.client.get(
        f"/v1/media/{digest}", headers={**alice.auth, "If-None-Match": f'"{digest}"'}
    )
    assert again.status == 304 and again.headers["ETag"] == f'"{digest}"'
    assert await again.read() == b""
    # a browser's <img src> cannot send headers: the token may be a query parameter
    by_query = await served.client.get(f"/v1/media/{digest}?token={alice.token}")
    assert by_query.status == 200 and await by_query.read() == PNG


async def test_same_bytes_are_stored_once(served: Served) -> None:
    alice, bob = await served.user(), await served.user()
    first = await (await served.upload(alice, PNG)).json()
    second = await (await served.upload(alice, PNG)).json()
    # streamed in small pieces (chunked, no Content-Length), by someone else: same blob
    chunks = [PNG[i : i + 1000] for i in range(0, len(PNG), 1000)]

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    response = await served.upload(bob, stream())
    assert response.status == 201
    third = await response.json()
    assert first == second == third
    assert len(served.files()) == 1  # no second copy, no temporary file left behind
    # the second uploader may fetch (and send) it like the first
    got = await served.client.get(f"/v1/media/{first['hash']}", headers=bob.auth)
    assert got.status == 200 and await got.read() == PNG


async def test_size_limit_is_enforced_while_streaming(served: Served) -> None:
    alice = await served.user()
    exact = b"x" * LIMIT
    ok = await served.upload(alice, exact, "application/octet-stream")
    assert ok.status == 201
    served_files = served.files()
    too_big = b"y" * (LIMIT + 1)
    # announced by Content-Length: refused before reading
    response = await served.upload(alice, too_big, "application/octet-stream")
    assert response.status == 413 and await error_code(response) == "media_too_large"

    # no Content-Length (chunked): refused once the stream passes the limit
    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(too_big), 8192):
            yield too_big[i : i + 8192]

    response = await served.upload(alice, stream(), "application/octet-stream")
    assert response.status == 413 and await error_code(response) == "media_too_large"
    assert served.files() == served_files  # nothing else on disk, not even a temporary file
    missing = await served.client.get(f"/v1/media/{sha(too_big)}", headers=alice.auth)
    assert missing.status == 404


async def test_declared_type_must_match_the_bytes(served: Served) -> None:
    alice = await served.user()
    cases = [
        (PNG, "image/jpeg", 400, "media_type_mismatch"),
        (JPEG, "image/png", 400, "media_type_mismatch"),
        (b"not really audio" * 100, "audio/ogg", 400, "media_type_mismatch"),
        (b"<script>alert(1)</script>", "text/html", 400, "media_type_not_allowed"),
        (b"", "image/png", 400, "empty_media"),
    ]
    for data, declared, status, code in cases:
        response = await served.upload(alice, data, declared)
        assert response.status == status, (declared, await response.text())
        assert await error_code(response) == code
        if data:
            got = await served.client.get(f"/v1/media/{sha(data)}", headers=alice.auth)
            assert got.status == 404
    assert served.files() == []
    # parameters on the Content-Type are fine, and the same bytes as a plain file are accepted
    response = await served.upload(alice, b"hello", "text/plain; charset=utf-8")
    assert (await response.json())["mime"] == "text/plain"
    response = await served.upload(alice, PNG, "application/octet-stream")
    assert response.status == 201


async def test_bad_or_unknown_hash_is_not_found(served: Served) -> None:
    alice = await served.user()
    digest = (await (await served.upload(alice, PNG)).json())["hash"]
    for path in (
        "not-a-hash",
        digest.upper(),
        digest[:-1],
        digest + "0",
        sha(b"never uploaded"),
        "..%2F..%2Fwanglai.db",
    ):
        response = await served.client.get(f"/v1/media/{path}", headers=alice.auth)
        assert response.status == 404, path
        assert await error_code(response) in ("media_not_found", "route_not_found")
    anonymous = await served.client.get(f"/v1/media/{digest}")
    assert anonymous.status == 401
    response = await served.client.post(
        "/v1/media", data=PNG, headers={"Content-Type": "image/png"}
    )
    assert response.status == 401
    assert served.files() == [served.root / digest[:2] / digest[2:4] / digest]


async def test_other_users_media_is_not_found(served: Served) -> None:
    alice, eve = await served.user(), await served.user()
    digest = (await (await served.upload(alice, PNG)).json())["hash"]
    response = await served.client.get(f"/v1/media/{digest}", headers=eve.auth)
    assert response.status == 404 and await error_code(response) == "media_not_found"
    # and she cannot send it either: knowing a hash is not having the file
    conv = await served.container.messaging.open_direct(eve.id, alice.id)
    with pytest.raises(NotFound) as info:
        await served.container.messaging.send(eve.id, conv, "e1", "image", {"media": digest})
    assert info.value.code == "media_not_found"


async def test_members_of_the_conversation_can_fetch_what_was_sent(served: Served) -> None:
    alice, bob, carol, eve = [await served.user() for _ in range(4)]
    m = served.container.messaging
    digest = (await (await served.upload(alice, PNG)).json())["hash"]
    conv = await m.open_direct(alice.id, bob.id)
    before = await served.client.get(f"/v1/media/{digest}", headers=bob.auth)
    assert before.status == 404  # not sent yet
    response = await served.client.post(
        f"/v1/conversations/{conv}/messages",
        json={"client_id": "p1", "kind": "image", "body": {"media": digest, "width": 8}},
        headers=alice.auth,
    )
    assert response.status == 201, await response.text()
    got = await served.client.get(f"/v1/media/{digest}", headers=bob.auth)
    assert got.status == 200 and await got.read() == PNG
    outsider = await served.client.get(f"/v1/media/{digest}", headers=eve.auth)
    assert outsider.status == 404
    # Bob may forward what he can see; then Carol can fetch it too
    conv2 = await m.open_direct(bob.id, carol.id)
    await m.send(bob.id, conv2, "f1", "file", {"media": digest, "name": "picture.png"})
    got = await served.client.get(f"/v1/media/{digest}", headers=carol.auth)
    assert got.status == 200


async def test_messages_with_unusable_media_are_refused_and_not_stored(served: Served) -> None:
    alice, bob = await served.user(), await served.user()
    m = served.container.messaging
    conv = await m.open_direct(alice.id, bob.id)
    voice = (await (await served.upload(alice, OGG, "audio/ogg")).json())["hash"]
    unknown = sha(b"nobody uploaded this")
    with pytest.raises(NotFound) as info:
        await m.send(alice.id, conv, "c1", "image", {"media": unknown})
    assert info.value.code == "media_not_found"
    response = await served.client.post(
        f"/v1/conversations/{conv}/messages",
        json={"client_id": "c2", "kind": "file", "body": {"media": unknown, "name": "a.pdf"}},
        headers=alice.auth,
    )
    assert response.status == 404 and await error_code(response) == "media_not_found"
    with pytest.raises(Invalid) as bad_kind:
        await m.send(alice.id, conv, "c3", "image", {"media": voice})
    assert bad_kind.value.code == "media_kind_mismatch"
    assert await m.history(alice.id, conv, None, 50) == []
    assert (await served.container.sync.since(bob.id, 0)).events == []
    assert served.delivered.for_user(bob.id) == []
    # the same media, in the kind it fits, goes through
    sent = await m.send(alice.id, conv, "c4", "voice", {"media": voice, "duration_ms": 1500})
    assert sent.body == {"media": voice, "duration_ms": 1500}


async def test_partial_files_left_by_a_crash_are_removed(served: Served) -> None:
    alice = await served.user()
    tmp = served.root / "tmp"
    tmp.mkdir(parents=True)
    stale, fresh = tmp / "crashed.part", tmp / "in-progress.part"
    stale.write_bytes(b"half an upload")
    fresh.write_bytes(b"still arriving")
    long_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (long_ago, long_ago))
    assert (await served.upload(alice, PNG)).status == 201
    assert not stale.exists() and fresh.exists()


async def test_members_who_join_later_do_not_see_earlier_media(served: Served) -> None:
    alice, bob, carol = [await served.user() for _ in range(3)]
    groups = served.container.groups
    for friend in (bob, carol):
        request = await served.container.contacts.request(alice.id, friend.id)
        await served.container.contacts.accept(friend.id, request.id)
    group = await groups.create(alice.id, "trip", [bob.id])
    digest = (await (await served.upload(alice, PNG)).json())["hash"]
    m = served.container.messaging
    await m.send(alice.id, group.id, "g1", "image", {"media": digest})
    await groups.invite(alice.id, group.id, [carol.id])
    early = await served.client.get(f"/v1/media/{digest}", headers=carol.auth)
    assert early.status == 404, "a later member saw media sent before they joined"
    assert (await served.client.get(f"/v1/media/{digest}", headers=bob.auth)).status == 200
    await m.send(alice.id, group.id, "g2", "image", {"media": digest})
    again = await served.client.get(f"/v1/media/{digest}", headers=carol.auth)
    assert again.status == 200
