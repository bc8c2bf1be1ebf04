from __future__ import annotations

import pytest

from wanglai.domain import otp, secret
from wanglai.domain.errors import Gone, Invalid, RateLimited

POLICY = otp.OtpPolicy()
MIN = 60_000


def history(
    number: list[int] | None = None,
    address: list[int] | None = None,
    prefix: list[int] | None = None,
) -> otp.SendHistory:
    return otp.SendHistory(number or [], address or [], prefix or [])


def test_three_sends_per_number_per_ten_minutes() -> None:
    now = 100 * MIN
    otp.check_send(POLICY, history([now - 2 * MIN, now - MIN]), now)
    with pytest.raises(RateLimited) as info:
        otp.check_send(POLICY, history([now - 3 * MIN, now - 2 * MIN, now - MIN]), now)
    assert info.value.code == "otp_number_limit"
    # the oldest of the three leaves the window 7 minutes from now
    assert info.value.retry_after == pytest.approx(7 * 60)
    otp.check_send(POLICY, history([now - 11 * MIN, now - 2 * MIN, now - MIN]), now)


def test_address_and_prefix_limits() -> None:
    now = 100 * MIN
    with pytest.raises(RateLimited) as info:
        otp.check_send(POLICY, history(address=[now - i * MIN for i in range(1, 11)]), now)
    assert info.value.code == "otp_address_limit"
    with pytest.raises(RateLimited) as info:
        otp.check_send(POLICY, history(prefix=[now - 1000 * i for i in range(1, 31)]), now)
    assert info.value.code == "otp_prefix_limit"


def test_attempt_rules() -> None:
    now = 10 * MIN
    code = otp.PendingCode(b"x", expires_ms=now + 1, tries=0)
    otp.check_attempt(POLICY, code, now)
    with pytest.raises(Invalid):
        otp.check_attempt(POLICY, None, now)
    with pytest.raises(Gone):
        otp.check_attempt(POLICY, otp.PendingCode(b"x", now, 0), now)
    with pytest.raises(RateLimited):
        otp.check_attempt(POLICY, otp.PendingCode(b"x", now + MIN, 5), now)


def test_codes_and_hashes() -> None:
    codes = {secret.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150
    a = secret.hash_code("123456", "+8613800138000", b"pepper")
    assert a != secret.hash_code("123456", "+8613800138001", b"pepper")
    assert a != secret.hash_code("123456", "+8613800138000", b"other")
    assert secret.same(a, secret.hash_code("123456", "+8613800138000", b"pepper"))
    assert otp.looks_like_code(POLICY, "012345")
    assert not otp.looks_like_code(POLICY, "12345")
    assert not otp.looks_like_code(POLICY, "12345a")
    assert not otp.looks_like_code(POLICY, 123456)
