"""``wanglai chat``: a terminal client on the SDK — log in with a code, list, read and send live.

Input is read line by line from stdin, so it can be piped:
``printf '/open 1\\nhello\\n/quit\\n' | wanglai chat --phone +8613800138000``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from wanglai.client import ApiError, Client, ClientError, ConversationView, EventView, MessageView

HELP = (
    "/list  conversations · /open CONV  read one (then type to send) · /dm USER_ID  direct chat\n"
    "/history [N]  the last N of the open one · /me  your account · /quit"
)


def client_dir() -> Path:
    """Where sessions are kept: ``$WANGLAI_CLIENT_DIR`` or ``~/.config/wanglai``."""
    configured = os.environ.get("WANGLAI_CLIENT_DIR")
    return Path(configured) if configured else Path.home() / ".config" / "wanglai"


def session_file(server: str) -> Path:
    host = urlsplit(server).netloc or server
    return client_dir() / f"{host.replace(':', '_')}.json"


def load_session(server: str, phone: str) -> str | None:
    path = session_file(server)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(saved, dict) and saved.get("phone") == phone:
        token = saved.get("token")
        return token if isinstance(token, str) else None
    return None


def save_session(server: str, phone: str, client: Client) -> Path:
    path = session_file(server)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "phone": phone,
        "token": client.token,
        "user_id": client.user_id,
        "device_id": client.device_id,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return path


def _read_lines(queue: asyncio.Queue[str | None], loop: asyncio.AbstractEventLoop) -> None:
    """Feed stdin lines to the event loop (a daemon thread: it never holds up exit)."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r\n"))
    loop.call_soon_threadsafe(queue.put_nowait, None)


class Chat:
    def __init__(self, client: Client, console: Console) -> None:
        self.client = client
        self.console = console
        self.open: int | None = None
        self.names: dict[int, str] = {}
        self.titles: dict[int, str] = {}

    async def name(self, user_id: int) -> str:
        if user_id == 0:
            return "system"
        if user_id not in self.names:
            try:
                user = await self.client.user(user_id)
                self.names[user_id] = user.name or user.phone or f"user {user_id}"
            except ClientError:
                self.names[user_id] = f"user {user_id}"
        return self.names[user_id]

    async def title(self, conv: ConversationView) -> str:
        if conv.title:
            return conv.title
        return await self.name(conv.peer) if conv.peer is not None else f"conversation {conv.id}"

    async def render(self, message: MessageView) -> Text:
        who = "you" if message.sender == self.client.user_id else await self.name(message.sender)
        line = Text(f"#{message.seq} ", style="dim")
        line.append(who, style="bold cyan" if who == "you" else "bold green")
        line.append(": ")
        if message.recalled:
            line.append("(recalled)", style="italic dim")
        elif message.kind == "text":
            line.append(str(message.body.get("text", "")))
        else:
            line.append(f"[{message.kind}] {json.dumps(message.body, ensure_ascii=False)}")
        if message.edited_at is not None:
            line.append(" (edited)", style="dim")
        return line

    async def list(self) -> None:
        table = Table(title="Conversations", show_lines=False)
        for column in ("id", "with", "unread", "last message"):
            table.add_column(column)
        for conv in await self.client.conversations():
            title = await self.title(conv)
            self.titles[conv.id] = title
            last = Text("")
            if conv.last is not None:
                last = await self.render(conv.last)
            unread = str(conv.unread) if conv.unread else ""
            table.add_row(str(conv.id), title, unread, last)
        if table.row_count:
            self.console.print(table)
        else:
            self.console.print("No conversations yet: /dm USER_ID starts one.")

    async def show(self, conv: int, limit: int = 20, before: int | None = None) -> None:
        messages = await self.client.history(conv, before, limit)
        for message in reversed(messages):
            self.console.print(await self.render(message))
        if messages and before is None:
            await self.client.mark_read(conv, messages[0].seq)

    async def open_conv(self, conv: int) -> None:
        view = await self.client.conversation(conv)
        self.open = conv
        self.titles[conv] = await self.title(view)
        self.console.rule(f"{self.titles[conv]} (conversation {conv})")
        await self.show(conv)

    async def on_event(self, event: EventView) -> None:
        message = event.message
        if message is None:
            if event.type not in ("read",):
                self.console.print(Text(f"· {event.type} {event.data or ''}", style="dim"))
            return
        if event.conv == self.open:
            line = await self.render(message)
            if event.type == "message.edit":
                line.append(" ✎", style="dim")
            if event.type == "message" and message.sender != self.client.user_id:
                with contextlib.suppress(ClientError):
                    await self.client.mark_read(message.conv, message.seq)
            self.console.print(line)
        elif event.type == "message" and message.sender != self.client.user_id:
            who = await self.name(message.sender)
            where = self.titles.get(message.conv, f"conversation {message.conv}")
            self.console.print(
                Text(f"» new message from {who} in {where} (/open {message.conv})", style="yellow")
            )

    async def follow(self) -> None:
        try:
            async for event in self.client.events():
                try:
                    await self.on_event(event)
                except ClientError as exc:
                    self.console.print(Text(f"! {exc}", style="red"))
        except ApiError as exc:
            self.console.print(Text(f"! disconnected: {exc.message}", style="red"))

    async def command(self, line: str) -> bool:
        """Handle one input line; False means quit."""
        text = line.strip()
        if not text:
            return True
        if not text.startswith("/") or text.startswith("//"):
            if self.open is None:
                self.console.print("Open a conversation first: /list, then /open CONV.")
                return True
            await self.client.send(self.open, text[1:] if text.startswith("//") else text)
            return True
        word, _, arg = text.partition(" ")
        arg = arg.strip()
        if word in ("/quit", "/exit", "/q"):
            return False
        if word == "/help":
            self.console.print(HELP)
        elif word == "/list":
            await self.list()
        elif word == "/me":
            me = await self.client.me()
            self.console.print(f"you are {me.name or me.phone} (user {me.id}, {me.phone})")
        elif word == "/history":
            if self.open is None:
                self.console.print("Open a conversation first: /open CONV.")
            else:
                await self.show(self.open, min(200, int(arg)) if arg.isdigit() else 50)
        elif word in ("/open", "/dm"):
            if not arg.isdigit():
                self.console.print(f"Usage: {word} {'USER_ID' if word == '/dm' else 'CONV'}")
                return True
            conv = int(arg) if word == "/open" else await self.client.open_direct(int(arg))
            await self.open_conv(conv)
        else:
            self.console.print(f"Unknown command {word}. {HELP}")
        return True


async def _login(client: Client, server: str, phone: str, code: str | None, device: str) -> None:
    token = load_session(server, phone)
    if token is not None:
        client.token = token
        try:
            await client.me()
            return
        except ApiError as exc:
            if exc.status != 401:
                raise
            client.token = None
    if code is None:
        sent = await client.request_code(phone)
        code = typer.prompt(f"Code sent to {sent.phone} (by {sent.channel})").strip()
    answer = await client.login(phone, code, device)
    save_session(server, phone, client)
    if answer.new_user:
        typer.echo(f"Welcome to Wanglai! You are user {answer.user.id}.")


async def run(server: str, phone: str, code: str | None, device: str, console: Console) -> int:
    client = Client(server, cursor=None)
    try:
        try:
            await _login(client, server, phone, code, device)
            await client.connect()
        except ClientError as exc:
            console.print(Text(f"! {exc}", style="red"))
            return 1
        chat = Chat(client, console)
        me = await client.me()
        console.print(f"Logged in as {me.name or me.phone} (user {me.id}).\n{HELP}")
        await chat.list()
        follower = asyncio.create_task(chat.follow(), name="chat-follow")
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=_read_lines, args=(lines, loop), daemon=True).start()
        try:
            while (line := await lines.get()) is not None:
                try:
                    if not await chat.command(line):
                        break
                except ClientError as exc:
                    console.print(Text(f"! {exc}", style="red"))
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        return 0
    finally:
        await client.close()


def chat(
    server: str = typer.Option("http://127.0.0.1:8080", help="The server's base URL"),
    phone: str = typer.Option(..., help="Your phone number, e.g. +8613800138000"),
    code: str = typer.Option(None, help="A login code you already received (else one is sent)"),
    device: str = typer.Option("wanglai chat", help="This device's name in your device list"),
) -> None:
    """Chat in the terminal: log in with a code, list conversations, read and send live."""
    raise typer.Exit(asyncio.run(run(server, phone, code, device, Console(highlight=False))))
