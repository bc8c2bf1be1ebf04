"""Idempotency keys: what a key may be and what makes two requests the same."""

from __future__ import annotations

import pytest

from wanglai.domain import idempotency
from wanglai.domain.errors import Invalid


def test_printable_ascii_keys_pass() -> None:
    assert idempotency.check_key("k-1") == "k-1"
    assert idempotency.check_key("x" * 64) == "x" * 64


@pytest.mark.parametrize("key", [None, "", 42])
def test_a_missing_key_is_required(key: object) -> None:
    with pytest.raises(Invalid) as refused:
        idempotency.check_key(key)
    assert refused.value.code == "idempotency_key_required"


@pytest.mark.parametrize("key", ["x" * 65, "kéy", "a\nb", "tab\there"])
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(Invalid) as refused:
        idempotency.check_key(key)
    assert refused.value.code == "invalid_idempotency_key"


def test_fingerprints_tell_requests_apart() -> None:
    fp = idempotency.fingerprint
    assert fp("pay", 1, 100, {"a": 1, "b": 2}) == fp("pay", 1, 100, {"b": 2, "a": 1})
    assert fp("pay", 1, 100) != fp("pay", 1, 101)
    assert fp("pay", 1, 100) != fp("refund", 1, 100)
    assert len(fp("pay")) == 64


def test_reuse_is_a_conflict() -> None:
    assert idempotency.reused().code == "idempotency_key_reused"
    assert idempotency.reused().kind == "conflict"
