"""Steps the browser tests share: selectors by the DOM contract, logging people in, making
friends and money through the server, bounded test bodies."""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from PIL import Image
from playwright.async_api import Locator, Page, expect

from tests.e2e.conftest import Server, Users
from wanglai.client import Client

from .conftest import Web, login

P = ParamSpec("P")
R = TypeVar("R")

PIN = "135790"


def bounded(seconds: float) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Fail the test if its body takes longer than ``seconds``."""

    def wrap(test: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(test)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            async with asyncio.timeout(seconds):
                return await test(*args, **kwargs)

        return run

    return wrap


# --- helpers over the DOM contract -------------------------------------------------------------


def sel(name: str) -> str:
    return f"[data-test={name}]"


def messages(page: Page, text: str | None = None) -> Locator:
    found = page.locator(f"{sel('chat')} {sel('message')}")
    return found.filter(has_text=text) if text is not None else found


async def send_text(page: Page, text: str) -> None:
    composer = page.locator(f"textarea{sel('composer')}")
    await composer.fill(text)
    await composer.press("Enter")
    await expect(messages(page, text).last).to_have_attribute("data-mine", "true")


async def open_contacts(page: Page) -> None:
    await page.locator(sel("nav-contacts")).click()


async def open_direct_chat(page: Page, friend_id: int) -> None:
    """Contacts → the friend → message: the one-to-one chat opens."""
    await open_contacts(page)
    friend = page.locator(f"{sel('friend')}[data-user-id='{friend_id}']")
    await friend.locator(sel("message-friend")).click()
    await expect(page.locator(sel("chat"))).to_be_visible()


async def open_conversation(page: Page, has_text: str) -> None:
    """Chats → the conversation whose row shows ``has_text`` (title or last message)."""
    await page.locator(sel("nav-chats")).click()
    row = page.locator(sel("conversation")).filter(has_text=has_text)
    await row.first.click()
    await expect(page.locator(sel("chat"))).to_be_visible()


async def sdk_login(users: Users, phone: str) -> tuple[Client, int]:
    """The same person on another device, through the Python SDK."""
    client = await users.login(phone, device="browser-test-sdk")
    return client, (await client.me()).id


async def befriend(users: Users, phone_a: str, phone_b: str) -> tuple[Client, int, Client, int]:
    """Makes two people friends through the SDK (before their browsers log in)."""
    a, a_id = await sdk_login(users, phone_a)
    b, b_id = await sdk_login(users, phone_b)
    await a.request_friend(b_id)
    incoming = (await b.friend_requests())["incoming"]
    await b.accept_friend(incoming[0]["id"])
    return a, a_id, b, b_id


def png(width: int = 16, height: int = 12) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


async def two_logged_in(web: Web, server: Server, phone_a: str, phone_b: str) -> tuple[Page, Page]:
    alice = await web.page_for("alice")
    bob = await web.page_for("bob")
    await asyncio.gather(login(alice, server, phone_a), login(bob, server, phone_b))
    return alice, bob


async def friends_in_their_chat(
    web: Web, server: Server, users: Users
) -> tuple[Page, Page, int, int]:
    """Alice and Bob, friends, each logged in in a browser with their direct chat open: their
    pages and user ids."""
    alice_phone, bob_phone = users.phone(), users.phone()
    _, alice_id, _, bob_id = await befriend(users, alice_phone, bob_phone)
    alice, bob = await two_logged_in(web, server, alice_phone, bob_phone)
    await open_direct_chat(alice, bob_id)
    await open_direct_chat(bob, alice_id)
    return alice, bob, alice_id, bob_id
