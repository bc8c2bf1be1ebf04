"""The wallet in chromium, with the bank SANDBOX (``wanglai sandbox bank``) running beside the
server: a top-up, a transfer card accepted in chat, and paying a merchant's dynamic code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import Server, Users
from tests.e2e.test_funding import SandboxProcess

from .conftest import Web
from .steps import PIN, befriend, bounded, open_direct_chat, sel, two_logged_in

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

BANK_SECRET = "browser-bank-secret"


@pytest.fixture
def server(tmp_path: Path, e2e_database_url: str) -> Iterator[Server]:
    """The server with a bank sandbox process beside it (top-ups by card settle through it)."""
    bank = SandboxProcess(["sandbox", "bank", "--secret", BANK_SECRET], tmp_path / "bank.log")
    srv = Server(tmp_path / "data", e2e_database_url)
    srv.env.update(WANGLAI_BANK_URL=bank.url, WANGLAI_BANK_SECRET=BANK_SECRET)
    try:
        bank.wait_ready()
        srv.start()
        yield srv
    finally:
        srv.stop()
        bank.stop()


async def balance_is(page: Page, text: str) -> None:
    await page.locator(sel("nav-wallet")).click()
    await expect(page.locator(sel("balance"))).to_contain_text(text)


@bounded(75)
async def test_top_up_transfer_card_and_merchant_code(
    web: Web, server: Server, users: Users
) -> None:
    alice_phone, bob_phone, shop_phone = users.phone(), users.phone(), users.phone()
    alice_sdk, alice_id, _, bob_id = await befriend(users, alice_phone, bob_phone)
    await asyncio.to_thread(server.credit, alice_phone, 10_000, "browser test")
    await alice_sdk.set_pin(PIN)
    shop = await users.login(shop_phone, device="browser-test-sdk")
    merchant = await shop._call("POST", "/v1/merchants", dict, body={"name": "Tea shop"})
    code: dict[str, Any] = await shop._call(
        "POST", f"/v1/merchants/{merchant['id']}/codes", dict, body={"amount": 1500}
    )
    alice, bob = await two_logged_in(web, server, alice_phone, bob_phone)

    # Top up ¥50 by bank card through the sandbox: the balance follows.
    await balance_is(alice, "100.00")
    await alice.locator(f"button{sel('topup')}").click()
    dialog = alice.locator(sel("dialog"))
    await dialog.locator(f"input{sel('amount')}").fill("50")
    await dialog.locator(f"button{sel('confirm')}").click()
    await expect(alice.locator(sel("balance"))).to_contain_text("150.00", timeout=15_000)
    await expect(alice.locator(sel("statement-row")).first).to_be_visible()
    if await dialog.is_visible():  # it stays open with the order's state while it was pending
        await expect(dialog.locator(sel("error"))).to_have_count(0)
        await alice.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    # A transfer card in chat, accepted by Bob: both balances move.
    await open_direct_chat(alice, bob_id)
    await open_direct_chat(bob, alice_id)
    await alice.locator(f"button{sel('send-transfer')}").click()
    await dialog.locator(f"input{sel('amount')}").fill("12.34")
    await dialog.locator(f"input{sel('pin')}").fill(PIN)
    await dialog.locator(f"button{sel('confirm')}").click()
    await expect(dialog).to_be_hidden()
    card = bob.locator(sel("transfer-card"))
    await expect(card).to_be_visible()
    await card.locator(sel("accept-transfer")).click()
    await expect(card).to_have_attribute("data-state", "accepted")
    await expect(alice.locator(sel("transfer-card"))).to_have_attribute("data-state", "accepted")
    await web.shot(bob, "bob-transfer")
    await balance_is(bob, "12.34")
    await balance_is(alice, "137.66")

    # Pay the merchant's dynamic code with its token.
    await alice.locator(f"button{sel('pay-code')}").click()
    await dialog.locator(f"input{sel('code-token')}").fill(code["token"])
    await dialog.locator(sel("lookup-code")).click()
    await expect(dialog.locator(sel("code-info"))).to_contain_text("15.00")
    await dialog.locator(f"input{sel('pin')}").fill(PIN)
    await dialog.locator(f"button{sel('confirm')}").click()
    await expect(alice.locator(sel("paid"))).to_contain_text("15.00")  # shown, then it closes
    await expect(alice.locator(sel("balance"))).to_contain_text("122.66")
    await web.shot(alice, "alice-wallet")
    web.check_console()
