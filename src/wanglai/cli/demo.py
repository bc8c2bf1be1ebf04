"""``wanglai demo``: seed a few people, friendships, a group and some history to try things on."""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wanglai.settings import Settings

PEOPLE = (
    ("+8613800000001", "Alice", "Tea, hiking and terrible puns."),
    ("+8613800000002", "Bob", "Ask me about bikes."),
    ("+8613800000003", "Carol", "Hangzhou · photography"),
    ("+8613800000004", "Dave", "New here. Messages from anyone welcome."),
)
FRIENDS = ((0, 1), (0, 2), (1, 2))
CHAT = (
    (0, "Bob, are we still on for Saturday?"),
    (1, "Yes! 8am at the north gate of the West Lake trail."),
    (0, "Perfect, I'll bring tea 🍵"),
    (1, "明天见！"),
)
DEMO_FUNDS = 50_000
"""500.00 for each demo person."""
DEMO_PIN = "135790"

GROUP_CHAT = (
    (0, "Welcome to the hike group. Route: Longjing village → Nine Creeks."),
    (2, "I'll bring the camera."),
    (1, "Weather says sunny, 18°C."),
)


def demo() -> None:
    """Seed demo users, friendships, a group and history, then print how to log in as each."""
    settings = Settings.from_env()
    created = asyncio.run(_seed(settings))
    console = Console()
    if not created:
        console.print("[yellow]The demo data is already there; nothing was added.[/yellow]")
    table = Table(title="Demo accounts")
    for column in ("name", "phone", "about"):
        table.add_column(column)
    for phone, name, about in PEOPLE:
        table.add_row(name, phone, about)
    console.print(table)
    console.print(
        f"Each has 500.00 in the wallet (payment PIN {DEMO_PIN}).\n"
        "Log in as any of them: start the server (`make run`), then\n"
        f"  wanglai chat --server http://{settings.host}:{settings.port} --phone +8613800000001\n"
        f'or use the API: POST /v1/auth/code {{"phone": ...}}; the code is written to '
        f"{settings.sms_log}."
    )


async def _seed(settings: Settings) -> bool:
    from wanglai.app import Container
    from wanglai.services.accounts import Session
    from wanglai.store import accounts

    container = Container(settings)
    await container.start()
    try:
        now = container.clock.now_ms()
        ids: list[int] = []
        fresh = False
        for phone, name, _about in PEOPLE:
            row, created = await container.db.write(accounts.ensure_user, phone, name, now)
            fresh = fresh or created
            ids.append(int(row[0]))
        if not fresh:
            return False
        for (_phone, name, about), user_id in zip(PEOPLE, ids, strict=True):
            session = Session(user_id, 0)
            await container.accounts.update_profile(session, name=name, about=about)
        await container.accounts.update_profile(Session(ids[3], 0), dm_policy="anyone")
        for a, b in FRIENDS:
            request = await container.contacts.request(ids[a], ids[b], "Hi, it's me!")
            await container.contacts.accept(ids[b], request.id)
        messaging = container.messaging
        conv = await messaging.open_direct(ids[0], ids[1])
        for i, (who, text) in enumerate(CHAT):
            await messaging.send(ids[who], conv, f"demo-d{i}", "text", {"text": text})
        group = await container.groups.create(ids[0], "Weekend hike 🥾", [ids[1], ids[2]])
        for i, (who, text) in enumerate(GROUP_CHAT):
            await messaging.send(ids[who], group.id, f"demo-g{i}", "text", {"text": text})
        stranger = await messaging.open_direct(ids[2], ids[3])
        await messaging.send(
            ids[2], stranger, "demo-s0", "text", {"text": "Hi Dave, welcome to Wanglai!"}
        )
        await _seed_wallets(container, ids, group.id)
        return True
    finally:
        await container.close()


async def _seed_wallets(container: Any, ids: list[int], group: int) -> None:
    """Money to try the wallet with: an operator credit of 500.00 each (an ``adjustment``
    transfer, as a correction would be), payments up to 200.00 without a PIN (the PIN is
    135790), a transfer from Alice that Bob accepted and a lucky red packet in the group."""
    from wanglai.services.wallet_admin import WalletAdmin

    wallet = container.wallet
    operator = WalletAdmin(wallet)
    for user_id in ids:
        await operator.credit(user_id, DEMO_FUNDS, "demo")
        await wallet.set_pin(user_id, DEMO_PIN)
        await wallet.update_settings(user_id, None, 20_000)
    sent = await container.transfers.send(
        ids[0], ids[1], 8_800, note="Tea money 🍵", key="demo-transfer"
    )
    await container.transfers.accept(ids[1], sent.id, "demo-accept")
    await container.redpackets.send(
        ids[0], "demo-packet", group, "lucky", 1_000, 3, "Happy hiking!"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
