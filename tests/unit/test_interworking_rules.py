"""SMS interworking rules: numbers that may be texted, keywords, texts, quota, fallbacks."""

from __future__ import annotations

import pytest

from wanglai.domain import interworking as rules
from wanglai.domain.errors import Forbidden, Invalid, RateLimited
from wanglai.domain.policy import PeerFacts, SendFacts, check_direct, check_send


@pytest.mark.parametrize(
    "number", ["+8613800138000", "+8619912345678", "+85291234567", "+14155550123"]
)
def test_mobile_numbers_may_be_texted(number: str) -> None:
    rules.check_sms_number(number)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+19005551234", "sms_number_blocked"),  # premium rate
        ("+864001234567", "sms_number_blocked"),  # shared cost
        ("+868001234567", "sms_number_blocked"),  # toll free, a blocked prefix
        ("+862161234567", "sms_number_not_mobile"),  # fixed line
    ],
)
def test_other_numbers_may_not(number: str, code: str) -> None:
    with pytest.raises(Invalid) as info:
        rules.check_sms_number(number)
    assert info.value.code == code


def test_blocked_prefixes_are_configurable() -> None:
    prefixes = rules.parse_prefixes(" +86170, ,+86171 ")
    assert prefixes == ("+86170", "+86171")
    with pytest.raises(Invalid):
        rules.check_sms_number("+8617012345678", prefixes)
    rules.check_sms_number("+8617012345678", ())
    with pytest.raises(ValueError):
        rules.parse_prefixes("86170")


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("STOP", "stop"),
        (" stop. ", "stop"),
        ("Stop All", "stop"),
        ("ＳＴＯＰ", "stop"),
        ("unsubscribe", "stop"),
        ("退订", "stop"),
        ("TD", "stop"),
        ("start", "start"),
        ("Start!", "start"),
        ("please stop texting me", None),
        ("stopping by later", None),
        ("", None),
        ("!!!", None),
        ("ok", None),
    ],
)
def test_keywords(text: str, word: str | None) -> None:
    assert rules.keyword(text) == word


def test_texts_say_who_and_how_to_answer() -> None:
    text = rules.chat_text("  Alice  ", "text", {"text": "see you\nat 7"})
    assert (
        text == "Alice on Wanglai: see you at 7\nReply to this number to answer; STOP to opt out."
    )
    assert rules.fallback_text("", "voice", {}).startswith("Someone on Wanglai: [voice message]\n")
    long = rules.describe("text", {"text": "x" * 1000})
    assert len(long) == rules.MAX_BODY and long.endswith("…")
    assert rules.describe("location", {"lat": 1.5, "lon": 2.25}) == "[location: 1.50000,2.25000]"
    assert rules.describe("file", {"name": "a.pdf"}) == "[file: a.pdf]"
    assert "START" in rules.confirmation(rules.STOP) and "STOP" in rules.confirmation(rules.START)


def test_quota_and_opt_out() -> None:
    plan = rules.SmsPlan(2)
    rules.check_sms(False, 1, plan)
    with pytest.raises(RateLimited) as over:
        rules.check_sms(False, 2, plan, 3600.0)
    assert over.value.retry_after == 3600.0  # until the quota starts again
    with pytest.raises(RateLimited):
        rules.check_sms(False, 0, None)
    with pytest.raises(Forbidden):
        rules.check_sms(True, 0, plan)


def test_fallback_outcome() -> None:
    plan = rules.SmsPlan(1, 60_000)
    assert rules.fallback_outcome(0, 3, False, False, 0, plan) is None
    assert rules.fallback_outcome(3, 3, False, False, 0, plan) == "received"
    assert rules.fallback_outcome(0, 3, True, False, 0, plan) == "recalled"
    assert rules.fallback_outcome(0, 3, False, True, 0, plan) == "sms_opted_out"
    assert rules.fallback_outcome(0, 3, False, False, 1, plan) == "sms_quota_exceeded"
    with pytest.raises(Invalid):
        rules.check_fallback("group")
    rules.check_fallback("direct")


def test_a_number_not_on_wanglai_is_reached_only_through_its_thread() -> None:
    stand_in = PeerFacts(False, False, False, "friends", placeholder=True)
    with pytest.raises(Exception) as info:
        check_direct(stand_in)  # transfers, red packets, opening by user id
    assert getattr(info.value, "code", "") == "user_not_found"
    check_send(SendFacts("direct", "member", stand_in, False))  # sending: the SMS rules apply
    thread = PeerFacts(False, False, False, "friends", sms_thread=True)
    check_direct(thread)  # a thread that began as SMS stays open after the number joins
    with pytest.raises(Forbidden):
        check_direct(PeerFacts(False, True, False, "friends", sms_thread=True))
