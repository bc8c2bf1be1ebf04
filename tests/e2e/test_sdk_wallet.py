"""The SDK's wallet calls against a real server: money in by an operator credit, a transfer
accepted, a retry under the same key, a red packet claimed, and refusals as ApiError codes."""

from __future__ import annotations

import pytest

from wanglai.client import ApiError

from .conftest import Server, Users


async def test_wallet_through_the_sdk(server: Server, users: Users) -> None:
    phone = users.phone()
    alice = await users.open_to_anyone(phone)
    bob = await users.open_to_anyone()
    bob_id = (await bob.me()).id
    server.credit(phone, 10_000, "sdk test")
    await alice.set_pin("135790")
    await bob.wallet_settings(strangers=True)

    sent = await alice.transfer(bob_id, 1_250, note="dinner", pin="135790", key="dinner-1")
    assert (sent["amount"], sent["state"]) == (1_250, "pending")
    again = await alice.transfer(bob_id, 1_250, note="dinner", pin="135790", key="dinner-1")
    assert again["id"] == sent["id"]  # the first answer, not a second transfer
    with pytest.raises(ApiError) as reused:
        await alice.transfer(bob_id, 999, pin="135790", key="dinner-1")
    assert reused.value.code == "idempotency_key_reused"
    accepted = await bob.accept_transfer(sent["id"])
    assert accepted["state"] == "accepted"
    assert (await bob.wallet())["balance"] == 1_250
    assert (await alice.wallet())["balance"] == 8_750

    conv = await alice.open_direct(bob_id)
    packet = await alice.send_red_packet(conv, 500, kind="single", pin="135790")
    claim = await bob.claim_red_packet(packet["id"])
    assert claim["new"] and claim["claim"]["amount"] == 500
    assert (await bob.wallet())["balance"] == 1_750

    with pytest.raises(ApiError) as broke:
        await alice.transfer(bob_id, 9_000, pin="135790")
    assert broke.value.code == "insufficient_funds"
    with pytest.raises(ApiError) as wrong:
        await alice.transfer(bob_id, 100, pin="000001")
    assert wrong.value.code == "wrong_pin"
    statement = await alice.statement(limit=10)
    assert [t["kind"] for t in statement["transfers"]][:1] == ["redpacket"]
    assert (await alice.wallet())["balance"] == 8_250
