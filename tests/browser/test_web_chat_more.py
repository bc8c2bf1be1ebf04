"""The rest of the chat in chromium: edit, reply, typing, read state, no unread badge on an open
chat, infinite scroll back, search, @mentions and group management, a file, a block, devices,
a phone-sized screen and the keyboard. DOM contract only (``data-test`` and visible text)."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import FilePayload, Page, expect

from tests.e2e.conftest import Server, Users

from .conftest import Web, login
from .steps import (
    befriend,
    bounded,
    friends_in_their_chat,
    messages,
    open_conversation,
    open_direct_chat,
    sel,
    send_text,
    two_logged_in,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

HISTORY = 70

WATCH_UNREAD = """conv => {
  window.__badges = [];
  const row = `[data-test=conversation][data-conv-id="${conv}"] [data-test=unread]`;
  const check = () => {
    const badge = document.querySelector(row);
    if (badge && badge.textContent.trim()) window.__badges.push(badge.textContent.trim());
  };
  const watch = {subtree: true, childList: true, characterData: true};
  new MutationObserver(check).observe(document.body, watch);
}"""


async def message_action(page: Page, text: str, action: str) -> None:
    row = messages(page, text).last
    await row.hover()
    await row.locator(sel("message-actions")).click()
    await page.locator(sel(action)).click()


@bounded(90)
async def test_direct_chat_history_typing_read_edit_reply_search(
    web: Web, server: Server, users: Users
) -> None:
    alice_phone, bob_phone = users.phone(), users.phone()
    _, alice_id, bob_sdk, bob_id = await befriend(users, alice_phone, bob_phone)
    conv = await bob_sdk.open_direct(alice_id)
    for i in range(HISTORY):
        await bob_sdk.send(conv, f"history {i:02d}")
    alice, bob = await two_logged_in(web, server, alice_phone, bob_phone)

    # Infinite scroll back: the newest page first, then older pages up to the first message.
    await open_direct_chat(alice, bob_id)
    await expect(messages(alice, f"history {HISTORY - 1:02d}")).to_be_visible()
    first = messages(alice, "history 00")
    for _ in range(20):
        if await first.count():
            break
        await alice.locator(f"{sel('chat')} {sel('message')}").first.scroll_into_view_if_needed()
        await alice.mouse.wheel(0, -5000)
        await asyncio.sleep(0.2)
    await expect(first).to_have_count(1)
    seqs = await alice.locator(f"{sel('chat')} {sel('message')}").evaluate_all(
        "els => els.map(e => e.dataset.seq)"
    )
    assert len(seqs) == len(set(seqs)) == HISTORY, seqs
    await web.shot(alice, "alice-history-top")

    # Back at the bottom, the open chat shows no unread badge for what arrives meanwhile.
    await alice.locator(f"{sel('chat')} {sel('message')}").last.scroll_into_view_if_needed()
    badge = alice.locator(f"{sel('conversation')}[data-conv-id='{conv}'] {sel('unread')}")
    await expect(badge).to_have_count(0)  # read, now that the bottom is in view
    await alice.evaluate(WATCH_UNREAD, conv)

    # Read state: unread until Bob opens the chat, then read.
    await send_text(alice, "Before you look")
    await expect(messages(alice, "Before you look")).to_have_attribute("data-read", "false")
    await open_direct_chat(bob, alice_id)
    await expect(messages(alice, "Before you look")).to_have_attribute("data-read", "true")

    # Typing reaches the peer; the message then arrives live.
    await bob.locator(f"textarea{sel('composer')}").press_sequentially("Are you th")
    await expect(alice.locator(sel("typing"))).to_be_visible()
    await bob.locator(f"textarea{sel('composer')}").fill("")
    await send_text(bob, "Are you there?")
    await expect(messages(alice, "Are you there?")).to_have_attribute("data-mine", "false")
    await asyncio.sleep(0.6)  # past the read debounce: a badge would have shown by now
    assert await alice.evaluate("window.__badges") == [], "an unread badge on the open chat"
    await expect(badge).to_have_count(0)

    # Bob has the chat open at the bottom: what Alice sends now is read at once.
    await send_text(alice, "Yes, reading you")
    await expect(messages(alice, "Yes, reading you")).to_have_attribute("data-read", "true")

    # Edit: both sides see the new text, marked edited.
    await message_action(alice, "Yes, reading you", "action-edit")
    dialog = alice.locator(sel("dialog"))
    await dialog.locator("textarea").fill("Yes, reading you loud and clear")
    await dialog.locator(sel("confirm")).click()
    edited = messages(bob, "loud and clear")
    await expect(edited).to_have_attribute("data-edited", "true")
    await expect(messages(alice, "loud and clear")).to_have_attribute("data-edited", "true")

    # Reply: the quote shows on the other side.
    await message_action(bob, "loud and clear", "action-reply")
    await send_text(bob, "Great, replying to that")
    reply = messages(alice, "Great, replying to that")
    await expect(reply.locator(sel("reply-quote"))).to_contain_text("loud and clear")

    # Search finds an old message and opens it.
    search = alice.locator(f"input{sel('search')}")
    await search.fill("history 07")
    await search.press("Enter")
    result = alice.locator(sel("search-result")).filter(has_text="history 07")
    await expect(result).to_have_count(1)
    await result.click()
    await expect(messages(alice, "history 07")).to_be_in_viewport()
    await web.shot(alice, "alice-chat")
    await web.shot(bob, "bob-chat")
    web.check_console()


@bounded(90)
async def test_group_mention_invite_rename_admin_leave(
    web: Web, server: Server, users: Users
) -> None:
    alice_phone, bob_phone, carol_phone = users.phone(), users.phone(), users.phone()
    alice_sdk, alice_id, bob_sdk, bob_id = await befriend(users, alice_phone, bob_phone)
    carol_sdk = await users.login(carol_phone, device="browser-test-sdk")
    carol_id = (await carol_sdk.me()).id
    await alice_sdk.request_friend(carol_id)
    await carol_sdk.accept_friend((await carol_sdk.friend_requests())["incoming"][0]["id"])
    await bob_sdk.update_me(name="Bob")
    group = await alice_sdk.create_group("Weekend hike", [bob_id])
    conv = group["id"]
    alice, bob = await two_logged_in(web, server, alice_phone, bob_phone)
    await open_conversation(alice, "Weekend hike")
    await open_conversation(bob, "Weekend hike")

    # An @mention goes to the server as a mention, and shows on Bob's side.
    await alice.locator(f"textarea{sel('composer')}").fill("See you Saturday @Bob ")
    await alice.locator(f"button{sel('send')}").click()
    await expect(messages(bob, "See you Saturday")).to_be_visible()
    history = await bob_sdk.history(conv)
    mentioned = [m for m in history if m.kind == "text" and "Saturday" in m.body["text"]]
    assert mentioned and bob_id in mentioned[0].body.get("mentions", []), mentioned

    # Invite Carol, make Bob an admin, rename: both see the new title.
    await alice.locator(f"button{sel('group-info')}").click()
    dialog = alice.locator(sel("dialog"))
    await expect(dialog.locator(sel("group-member-row"))).to_have_count(2)
    await dialog.locator(sel("invite")).click()
    await dialog.locator(f"input{sel('group-member')}[value='{carol_id}']").check()
    await dialog.locator(sel("confirm")).click()
    await expect(dialog.locator(sel("group-member-row"))).to_have_count(3)
    bob_row = dialog.locator(f"{sel('group-member-row')}").filter(has_text="Bob")
    await bob_row.locator(sel("make-admin")).click()
    bob_row = dialog.locator(f"{sel('group-member-row')}").filter(has_text="Bob")
    await expect(bob_row.locator(sel("make-admin"))).to_have_count(0)  # the list came back
    await expect(bob_row).to_contain_text("admin")
    await dialog.locator(sel("rename")).click()
    await dialog.locator(f"input{sel('group-title')}").fill("Sunday hike")
    await dialog.locator(sel("confirm")).click()
    await expect(dialog.locator(sel("group-members"))).to_be_visible()
    await alice.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    for page in (alice, bob):
        row = page.locator(f"{sel('conversation')}[data-conv-id='{conv}']")
        await expect(row.locator(sel("conv-title"))).to_have_text("Sunday hike")

    # Bob leaves: the group leaves his list, Alice sees him go.
    await bob.locator(f"button{sel('group-info')}").click()
    await bob.locator(f"{sel('dialog')} {sel('leave')}").click()
    await expect(bob.locator(f"{sel('conversation')}[data-conv-id='{conv}']")).to_have_count(0)
    await expect(messages(alice, "left")).to_be_visible()
    group_now = await alice_sdk.group(conv)
    assert {m["user"] for m in group_now["members"]} == {alice_id, carol_id}
    await web.shot(alice, "alice-group")
    web.check_console()


@bounded(60)
async def test_a_file_arrives_and_a_block_refuses_messages(
    web: Web, server: Server, users: Users
) -> None:
    alice, bob, alice_id, _ = await friends_in_their_chat(web, server, users)

    await alice.locator(f"input[type=file]{sel('attach')}").set_input_files(
        files=[FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"bring water\n")]
    )
    theirs = bob.locator(f"{sel('message')}[data-mine='false']").filter(has_text="notes.txt")
    await expect(theirs).to_be_visible()
    await expect(theirs.locator(f"img{sel('message-image')}")).to_have_count(0)

    # Bob blocks Alice: her next message is refused with the server's code.
    await bob.locator(sel("nav-contacts")).click()
    await bob.locator(f"{sel('friend')}[data-user-id='{alice_id}'] {sel('block')}").click()
    await expect(bob.locator(f"{sel('blocked')}[data-user-id='{alice_id}']")).to_be_visible()
    composer = alice.locator(f"textarea{sel('composer')}")
    await composer.fill("Are you ignoring me?")
    await composer.press("Enter")
    error = alice.locator(sel("error"))
    await expect(error).to_be_visible()
    await expect(error).to_have_attribute("data-code", "peer_unreachable")
    await web.shot(alice, "alice-blocked")
    web.check_console()


@bounded(60)
async def test_devices_phone_layout_and_keyboard(web: Web, server: Server, users: Users) -> None:
    alice_phone, bob_phone = users.phone(), users.phone()
    _, alice_id, bob_sdk, bob_id = await befriend(users, alice_phone, bob_phone)
    conv = await bob_sdk.open_direct(alice_id)
    await bob_sdk.send(conv, "Hello from Bob")
    alice = await web.page_for("alice")
    other = await web.page_for("alice-phone")
    await login(alice, server, alice_phone)
    await other.set_viewport_size({"width": 390, "height": 844})
    await login(other, server, alice_phone)

    # Phone-sized: the list, then the chat in one column, the composer in view.
    await other.locator(sel("nav-chats")).click()
    row = other.locator(sel("conversation")).filter(has_text="Hello from Bob")
    await expect(row).to_be_in_viewport()
    await web.shot(other, "phone-list")
    await row.click()
    composer = other.locator(f"textarea{sel('composer')}")
    await expect(composer).to_be_in_viewport()
    await expect(row).not_to_be_in_viewport()
    await send_text(other, "Typed on the phone")
    await web.shot(other, "phone-chat")

    # Keyboard on the desktop page: Tab reaches the composer, Enter sends, Escape closes a dialog.
    await open_direct_chat(alice, bob_id)
    await alice.locator(f"button{sel('send-redpacket')}").focus()
    composer = alice.locator(f"textarea{sel('composer')}")
    for _ in range(15):
        if await composer.evaluate("el => el === document.activeElement"):
            break
        await alice.keyboard.press("Tab")
    await expect(composer).to_be_focused()
    await alice.keyboard.type("Sent with the keyboard")
    await alice.keyboard.press("Enter")
    await expect(messages(alice, "Sent with the keyboard")).to_have_attribute("data-mine", "true")
    await alice.locator(f"button{sel('send-redpacket')}").click()
    await expect(alice.locator(sel("dialog"))).to_be_visible()
    await alice.keyboard.press("Escape")
    await expect(alice.locator(sel("dialog"))).to_be_hidden()

    # Devices: the phone's login is listed; revoking it sends that page back to login.
    await alice.locator(sel("nav-settings")).click()
    devices = alice.locator(f"{sel('devices')} {sel('device')}")
    await expect(devices).to_have_count(3)  # this page, the phone, and the SDK's
    browsers = devices.filter(has_not_text="browser-test-sdk")
    await expect(browsers).to_have_count(2)
    await browsers.locator(sel("revoke")).click()
    await expect(devices).to_have_count(2)
    await expect(other.locator(sel("login"))).to_be_visible()
    await web.shot(alice, "alice-devices")
    web.check_console()


@bounded(60)
async def test_a_voice_message_is_recorded_and_heard(
    web: Web, server: Server, users: Users
) -> None:
    """Recorded in the browser (MediaRecorder on Chromium's fake microphone), uploaded, sent as
    a voice message, and playable on the other side."""
    alice, bob, _, _ = await friends_in_their_chat(web, server, users)
    record = alice.locator(f"button{sel('record-voice')}")
    await record.click()
    await expect(record).to_have_attribute("aria-pressed", "true")
    await asyncio.sleep(1.2)
    await record.click()  # stop: the recording is uploaded and sent
    await expect(record).to_have_attribute("aria-pressed", "false")
    voice = bob.locator(f"{sel('message')}[data-mine='false'] audio")
    await expect(voice).to_have_count(1)
    await bob.wait_for_function(
        "audio => audio.src.startsWith('blob:') || audio.src.includes('/v1/media/')",
        arg=await voice.element_handle(),
    )
    await expect(bob.locator(f"{sel('message')}[data-mine='false']")).to_contain_text("1 s")
    await web.shot(bob, "bob-voice")
    web.check_console()
