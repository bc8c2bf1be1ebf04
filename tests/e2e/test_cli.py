"""``wanglai chat`` and ``wanglai admin`` as processes, against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from wanglai.client import ApiError, Client, EventView

from .conftest import Server, Users

WAIT_S = 30.0


def cli_env(server: Server, client_dir: Path) -> dict[str, str]:
    env = dict(server.env)
    env["WANGLAI_CLIENT_DIR"] = str(client_dir)
    env["COLUMNS"] = "200"
    return env


async def wanglai(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wanglai",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), WAIT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def next_message(events: Any) -> EventView:
    async with asyncio.timeout(WAIT_S):
        async for event in events:
            if event.type == "message":
                return event  # type: ignore[no-any-return]
    raise AssertionError("the event stream ended")


async def test_piped_chat_sends_a_message_the_other_client_receives(
    server: Server, users: Users, tmp_path: Path
) -> None:
    alice = await users.open_to_anyone()
    assert alice.user_id is not None
    await alice.connect()
    incoming = alice.events()
    bob_phone = users.phone()
    await alice.request_code(bob_phone)
    env = cli_env(server, tmp_path / "client")

    chat = [
        "chat",
        "--server",
        server.base_url,
        "--phone",
        bob_phone,
        "--code",
        server.code_for(bob_phone),
    ]
    rc, out, err = await wanglai(
        env, *chat, stdin=f"/dm {alice.user_id}\nhello from the terminal\n/quit\n"
    )
    assert rc == 0, err
    event = await next_message(incoming)
    assert event.message is not None and event.message.body == {"text": "hello from the terminal"}
    assert "Welcome to Wanglai" in out

    saved = tmp_path / "client" / f"127.0.0.1_{server.port}.json"
    session = json.loads(saved.read_text())
    assert session["phone"] == bob_phone and session["user_id"] == event.message.sender
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    # A second run reuses the saved session (no code), shows history and the unread count.
    as_bob = Client(server.base_url, session["token"])
    users.clients.append(as_bob)
    await as_bob.update_me(dm_policy="anyone")
    await alice.send(event.message.conv, "welcome, bob")
    rc, out, err = await wanglai(
        env,
        "chat",
        "--server",
        server.base_url,
        "--phone",
        bob_phone,
        stdin=f"/open {event.message.conv}\n",
    )
    assert rc == 0, err
    listing = out[: out.index("hello from the terminal")]
    assert re.search(rf"│ {event.message.conv}\s+│ [^│]+│ 1\s+│", listing), out
    assert "you: hello from the terminal" in out and ": welcome, bob" in out
    assert json.loads(saved.read_text())["token"] == session["token"]
    assert (await as_bob.conversation(event.message.conv)).unread == 0  # opening marked it read
    await incoming.aclose()


async def test_interactive_chat_follows_live_messages(
    server: Server, users: Users, tmp_path: Path
) -> None:
    alice = await users.open_to_anyone()
    bob = await users.open_to_anyone()
    assert alice.user_id is not None and bob.user_id is not None
    conv = await alice.open_direct(bob.user_id)
    bob_phone = (await bob.me()).phone
    await bob.request_code(bob_phone)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wanglai",
        "chat",
        "--server",
        server.base_url,
        "--phone",
        bob_phone,
        "--code",
        server.code_for(bob_phone),
        env=cli_env(server, tmp_path / "client"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    seen: list[str] = []

    async def read_until(needle: str) -> None:
        assert proc.stdout is not None
        async with asyncio.timeout(WAIT_S):
            while not any(needle in line for line in seen):
                line = await proc.stdout.readline()
                if not line:
                    raise AssertionError(f"chat ended before {needle!r}: {seen}")
                seen.append(line.decode())

    try:
        proc.stdin.write(f"/open {conv}\n".encode())
        await proc.stdin.drain()
        await read_until(f"(conversation {conv})")
        await alice.send(conv, "are you there?")
        await read_until(": are you there?")
        proc.stdin.write(b"yes, live\n/quit\n")
        await proc.stdin.drain()
        assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert [m.body["text"] for m in await alice.history(conv)] == ["yes, live", "are you there?"]
    bob_view = await bob.conversation(conv)
    assert (bob_view.read_seq, bob_view.unread) == (1, 0)  # read as it was shown


async def test_chat_with_a_wrong_code_fails_clearly(
    server: Server, users: Users, tmp_path: Path
) -> None:
    phone = users.phone()
    stranger = Client(server.base_url)
    users.clients.append(stranger)
    await stranger.request_code(phone)
    rc, out, _ = await wanglai(
        cli_env(server, tmp_path / "client"),
        "chat",
        "--server",
        server.base_url,
        "--phone",
        phone,
        "--code",
        "000000" if server.code_for(phone) != "000000" else "111111",
        stdin="/quit\n",
    )
    assert rc == 1 and "wrong_code" in out
    assert not (tmp_path / "client").exists() or not list((tmp_path / "client").iterdir())


async def test_admin_reports_counts_and_revokes_devices(
    server: Server, users: Users, tmp_path: Path
) -> None:
    env = cli_env(server, tmp_path / "client")
    rc, out, err = await wanglai(env, "admin", "stats", "--json")
    assert rc == 0, err
    assert json.loads(out) == {
        "users": 0,
        "active_devices": 0,
        "conversations": 0,
        "groups": 0,
        "messages": 0,
        "events": 0,
    }

    alice = await users.open_to_anyone()
    phone = users.phone()
    bob = await users.open_to_anyone(phone, "laptop")
    bob_phone = await users.login(phone, "phone")
    assert bob.user_id is not None and bob_phone.device_id is not None
    conv = await alice.open_direct(bob.user_id)
    for text in ("one", "two", "three"):
        await alice.send(conv, text)
    await bob.send(conv, "four")
    heads = (await alice.sync(0)).head + (await bob.sync(0)).head
    rc, out, err = await wanglai(env, "admin", "stats", "--json")
    assert rc == 0, err
    assert json.loads(out) == {
        "users": 2,
        "active_devices": 3,
        "conversations": 1,
        "groups": 0,
        "messages": 4,
        "events": heads,
    }
    assert heads >= 8

    rc, out, _ = await wanglai(env, "admin", "stats")
    assert rc == 0 and re.search(r"messages\s+│\s+4", out), out

    rc, out, _ = await wanglai(env, "admin", "users", "list", "--json", "--limit", "1")
    assert [u["id"] for u in json.loads(out)] == [alice.user_id]
    rc, out, _ = await wanglai(env, "admin", "users", "show", phone, "--json")
    shown = json.loads(out)
    assert (shown["id"], shown["conversations"]) == (bob.user_id, 1)
    assert sorted(d["name"] for d in shown["devices"]) == ["laptop", "phone"]
    rc, out, _ = await wanglai(env, "admin", "users", "show", str(bob.user_id))
    assert rc == 0 and phone in out and "laptop" in out

    rc, out, _ = await wanglai(env, "admin", "devices", "revoke", str(bob_phone.device_id))
    assert rc == 0 and f"Revoked device {bob_phone.device_id}" in out
    with pytest.raises(ApiError) as refused:
        await bob_phone.me()
    assert refused.value.status == 401
    assert (await bob.me()).id == bob.user_id
    rc, out, _ = await wanglai(env, "admin", "stats", "--json")
    assert json.loads(out)["active_devices"] == 2


async def test_admin_refuses_unknown_and_malformed_input(server: Server, tmp_path: Path) -> None:
    env = cli_env(server, tmp_path / "client")
    rc, out, _ = await wanglai(env, "admin", "users", "show", "+8613912345678")
    assert rc == 1 and "No user" in out
    rc, out, _ = await wanglai(env, "admin", "users", "show", "not-a-phone")
    assert rc == 1 and "not a phone number" in out
    rc, out, _ = await wanglai(env, "admin", "devices", "revoke", "424242")
    assert rc == 1 and "No live device 424242" in out
    rc, _, err = await wanglai(env, "admin", "devices", "revoke", "abc")
    assert rc == 2 and "Invalid value for 'device_id'" in err
    rc, out, _ = await wanglai(env, "admin", "stats", "--json")
    assert json.loads(out)["users"] == 0


def test_session_file_is_named_for_the_host(tmp_path: Path, monkeypatch: Any) -> None:
    from wanglai.cli.chat import session_file

    monkeypatch.setenv("WANGLAI_CLIENT_DIR", str(tmp_path))
    assert session_file("http://chat.example:8080") == tmp_path / "chat.example_8080.json"
    monkeypatch.delenv("WANGLAI_CLIENT_DIR")
    expected = Path(os.path.expanduser("~")) / ".config" / "wanglai" / "example.org.json"
    assert session_file("https://example.org") == expected


async def test_chat_logs_in_again_when_its_saved_device_was_revoked(
    server: Server, users: Users, tmp_path: Path
) -> None:
    env = cli_env(server, tmp_path / "client")
    phone = users.phone()
    helper = await users.login(phone, "helper")
    await helper.request_code(phone)
    chat = ["chat", "--server", server.base_url, "--phone", phone]
    rc, _, err = await wanglai(env, *chat, "--code", server.code_for(phone), stdin="/quit\n")
    assert rc == 0, err
    saved = tmp_path / "client" / f"127.0.0.1_{server.port}.json"
    first = json.loads(saved.read_text())
    await helper.revoke(first["device_id"])

    old_code = server.code_for(phone)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wanglai",
        *chat,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        for _ in range(int(WAIT_S * 20)):  # the chat asks for a new code by SMS
            if server.code_for(phone) != old_code:
                break
            await asyncio.sleep(0.05)
        proc.stdin.write(f"{server.code_for(phone)}\n/quit\n".encode())
        await proc.stdin.drain()
        out, err = await asyncio.wait_for(proc.communicate(), WAIT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    assert "Code sent to" in out.decode()
    second = json.loads(saved.read_text())
    assert second["device_id"] != first["device_id"] and second["token"] != first["token"]
    assert sorted(d.name for d in await helper.devices()) == ["helper", "wanglai chat"]
