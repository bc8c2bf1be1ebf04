"""The web client in chromium against a real server, through the DOM contract only
(``data-test`` attributes and visible text): login, friends, chats live both ways, a group, an
image, a recall, a red packet, and a server restart the page comes back from."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import FilePayload, Page, expect

from tests.e2e.conftest import Server, Users

from .conftest import Web, login
from .steps import (
    PIN,
    befriend,
    bounded,
    friends_in_their_chat,
    messages,
    open_contacts,
    open_conversation,
    open_direct_chat,
    png,
    sel,
    send_text,
    two_logged_in,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


# --- the tests ---------------------------------------------------------------------------------


@bounded(30)
async def test_the_page_loads_on_the_login_screen(web: Web) -> None:
    page = await web.page_for("visitor")
    await page.goto("/")
    await expect(page.locator(sel("login"))).to_be_visible()
    await expect(page.locator(f"input{sel('phone')}")).to_be_visible()
    await expect(page.locator(f"button{sel('send-code')}")).to_be_visible()
    await expect(page.locator(sel("code-hint"))).to_contain_text("data/sms.log")
    await expect(page.locator(sel("app"))).to_be_hidden()
    await web.shot(page, "login")
    web.check_console()


@bounded(60)
async def test_two_people_become_friends_and_chat_live(
    web: Web, server: Server, users: Users
) -> None:
    alice_phone, bob_phone = users.phone(), users.phone()
    alice, bob = await two_logged_in(web, server, alice_phone, bob_phone)
    await expect(alice.locator(sel("me"))).to_contain_text(alice_phone[-4:])

    # Alice finds Bob by his number and asks; Bob accepts the request that arrives live.
    await open_contacts(alice)
    await alice.locator(f"input{sel('contact-phone')}").fill(bob_phone)
    await alice.locator(f"button{sel('find-contact')}").click()
    result = alice.locator(sel("contact-result"))
    await expect(result).to_be_visible()
    await result.locator(sel("add-friend")).click()

    await open_contacts(bob)
    request = bob.locator(sel("friend-request"))
    await expect(request).to_be_visible()
    await request.locator(sel("accept-request")).click()
    await expect(bob.locator(sel("friend"))).to_have_count(1)

    # Alice sees the new friend and writes; Bob's list shows the chat, he opens it and answers.
    friend = alice.locator(sel("friend"))
    await expect(friend).to_have_count(1)
    await friend.locator(sel("message-friend")).click()
    await expect(alice.locator(sel("chat"))).to_be_visible()
    await send_text(alice, "Hello Bob, it's Alice")

    await bob.locator(sel("nav-chats")).click()
    row = bob.locator(sel("conversation")).filter(has_text="Hello Bob, it's Alice")
    await expect(row.locator(sel("conv-last"))).to_contain_text("Hello Bob, it's Alice")
    await row.click()
    await expect(messages(bob, "Hello Bob, it's Alice")).to_have_attribute("data-mine", "false")
    await send_text(bob, "Hi Alice!")

    await expect(messages(alice, "Hi Alice!")).to_have_attribute("data-mine", "false")
    await send_text(alice, "Second line, live")
    await expect(messages(bob, "Second line, live")).to_have_attribute("data-mine", "false")
    await web.shot(alice, "alice-chat")
    await web.shot(bob, "bob-chat")
    web.check_console()


@bounded(60)
async def test_a_group_is_created_and_chatted_in(web: Web, server: Server, users: Users) -> None:
    alice_phone, bob_phone = users.phone(), users.phone()
    _, _, _, bob_id = await befriend(users, alice_phone, bob_phone)
    alice, bob = await two_logged_in(web, server, alice_phone, bob_phone)

    await alice.locator(sel("nav-chats")).click()
    new_group = alice.locator(f"button{sel('new-group')}")
    if not await new_group.is_visible():
        await open_contacts(alice)
    await new_group.click()
    await alice.locator(f"input{sel('group-title')}").fill("Hotpot club")
    await alice.locator(f"input{sel('group-member')}[value='{bob_id}']").check()
    await alice.locator(f"button{sel('create-group')}").click()
    await expect(alice.locator(sel("chat"))).to_be_visible()
    await send_text(alice, "Welcome to the hotpot club")

    await open_conversation(bob, "Hotpot club")
    await expect(messages(bob, "Welcome to the hotpot club")).to_be_visible()
    await send_text(bob, "Thanks, count me in")
    await expect(messages(alice, "Thanks, count me in")).to_have_attribute("data-mine", "false")
    await web.shot(bob, "bob-group")
    web.check_console()


@bounded(60)
async def test_an_image_reaches_the_other_side(web: Web, server: Server, users: Users) -> None:
    alice, bob, _, _ = await friends_in_their_chat(web, server, users)

    await alice.locator(f"input[type=file]{sel('attach')}").set_input_files(
        files=[FilePayload(name="red.png", mimeType="image/png", buffer=png(16, 12))]
    )
    mine = alice.locator(f"{sel('message')}[data-mine='true'] img{sel('message-image')}")
    await expect(mine).to_be_visible()

    theirs = bob.locator(f"{sel('message')}[data-mine='false'] img{sel('message-image')}")
    await expect(theirs).to_be_visible()
    # the picture itself arrived (decoded at its size), not just a broken-image box
    await bob.wait_for_function(
        "img => img.complete && img.naturalWidth === 16 && img.naturalHeight === 12",
        arg=await theirs.element_handle(),
    )
    await web.shot(bob, "bob-image")
    web.check_console()


@bounded(60)
async def test_a_recalled_message_is_recalled_on_both_sides(
    web: Web, server: Server, users: Users
) -> None:
    alice, bob, _, _ = await friends_in_their_chat(web, server, users)

    await send_text(alice, "Oops, wrong chat")
    await expect(messages(bob, "Oops, wrong chat")).to_be_visible()
    mine = messages(alice, "Oops, wrong chat")
    seq = await mine.get_attribute("data-seq")
    assert seq

    await mine.hover()
    await mine.locator(sel("message-actions")).click()
    await alice.locator(sel("action-recall")).click()
    dialog = alice.locator(sel("dialog"))
    confirm = dialog.locator(sel("confirm"))
    recalled = alice.locator(f"{sel('message')}[data-seq='{seq}'][data-recalled='true']")
    await expect(recalled.or_(confirm)).to_be_visible()
    if await confirm.is_visible():
        await confirm.click()
    await expect(recalled).to_be_visible()
    await expect(
        bob.locator(f"{sel('message')}[data-seq='{seq}'][data-recalled='true']")
    ).to_be_visible()
    await expect(messages(bob, "Oops, wrong chat")).to_have_count(0)
    await web.shot(bob, "bob-recalled")
    web.check_console()


async def fill_if_editable(page: Page, selector: str, value: str) -> None:
    field = page.locator(selector)
    if await field.is_visible() and await field.is_editable():
        await field.fill(value)


@bounded(60)
async def test_a_red_packet_is_sent_and_opened(web: Web, server: Server, users: Users) -> None:
    alice_phone, bob_phone = users.phone(), users.phone()
    alice_sdk, alice_id, _, bob_id = await befriend(users, alice_phone, bob_phone)
    await asyncio.to_thread(server.credit, alice_phone, 10_000, "browser test")
    await alice_sdk.set_pin(PIN)
    alice, bob = await two_logged_in(web, server, alice_phone, bob_phone)
    await open_direct_chat(alice, bob_id)
    await open_direct_chat(bob, alice_id)

    await alice.locator(f"button{sel('send-redpacket')}").click()
    dialog = alice.locator(sel("dialog"))
    await expect(dialog).to_be_visible()
    await dialog.locator(f"input{sel('amount')}").fill("8.88")
    await fill_if_editable(alice, f"{sel('dialog')} input{sel('shares')}", "1")
    await dialog.locator(f"input{sel('pin')}").fill(PIN)
    await dialog.locator(f"button{sel('confirm')}").click()
    await expect(alice.locator(sel("redpacket-card"))).to_be_visible()

    card = bob.locator(sel("redpacket-card"))
    await expect(card).to_be_visible()
    await card.locator(sel("open-redpacket")).click()
    claims = bob.locator(sel("redpacket-claims"))
    await expect(claims).to_be_visible()
    await expect(claims).to_contain_text("8.88")
    await web.shot(bob, "bob-redpacket")

    await bob.locator(sel("nav-wallet")).click()
    await expect(bob.locator(sel("balance"))).to_contain_text("8.88")
    await alice.locator(sel("nav-wallet")).click()
    await expect(alice.locator(sel("balance"))).to_contain_text("91.12")
    web.check_console()


@bounded(60)
async def test_the_page_comes_back_after_a_server_restart(
    web: Web, server: Server, users: Users
) -> None:
    alice_phone, bob_phone = users.phone(), users.phone()
    _, _, bob_sdk, bob_id = await befriend(users, alice_phone, bob_phone)
    conv = await bob_sdk.open_direct((await bob_sdk.lookup(alice_phone)).id)
    alice = await web.page_for("alice")
    await login(alice, server, alice_phone)
    await open_direct_chat(alice, bob_id)
    await bob_sdk.send(conv, "Before the restart")
    await expect(messages(alice, "Before the restart")).to_be_visible()

    # While the server is down the browser logs its failed connections: expected here.
    web.allow_console(r"WebSocket|ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED|Failed to load")
    connection = alice.locator(sel("connection"))
    await asyncio.to_thread(server.stop)
    await expect(connection).not_to_have_attribute("data-state", "online")
    # The page stays cut off until Bob has written: the message is one it missed.
    await alice.context.set_offline(True)
    await asyncio.to_thread(server.start)
    await bob_sdk.send(conv, "Sent while you were away")
    await alice.context.set_offline(False)

    await expect(connection).to_have_attribute("data-state", "online", timeout=20_000)
    await expect(messages(alice, "Sent while you were away")).to_have_count(1)
    await expect(messages(alice, "Before the restart")).to_have_count(1)
    await web.shot(alice, "alice-back")
    web.check_console()
