"""Reading delivery receipts: the text form, the TLV form, and what is refused."""

from __future__ import annotations

import pytest

from wanglai.domain import sms_receipt
from wanglai.domain.sms_receipt import MalformedReceipt, ReceiptInfo

TEXT = (
    b"id:0123abc sub:001 dlvrd:001 submit date:2611281200 done date:2611281201"
    b" stat:DELIVRD err:000 text:Hello"
)


def test_text_receipt() -> None:
    info = sms_receipt.parse(TEXT)
    assert info == ReceiptInfo("0123abc", "DELIVRD", "000")
    assert info.final and info.delivered


def test_tlvs_win_over_the_text() -> None:
    tlvs = [(0x001E, b"real-id\x00"), (0x0427, bytes([5]))]
    info = sms_receipt.parse(TEXT, tlvs)
    assert (info.message_id, info.state, info.delivered) == ("real-id", "UNDELIV", False)


def test_tlvs_alone_are_enough() -> None:
    info = sms_receipt.parse(b"", [(0x001E, b"x1\x00"), (0x0427, bytes([2]))])
    assert info.message_id == "x1" and info.delivered


@pytest.mark.parametrize("state", ["EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN"])
def test_final_failures(state: str) -> None:
    info = sms_receipt.parse(b"id:9 stat:" + state.encode() + b" err:042")
    assert info.final and not info.delivered and info.error == "042"


@pytest.mark.parametrize("state", ["ENROUTE", "ACCEPTD"])
def test_intermediate_states_are_not_final(state: str) -> None:
    assert not sms_receipt.parse(b"id:9 stat:" + state.encode()).final


@pytest.mark.parametrize(
    "text",
    [
        b"sub:001 stat:DELIVRD",  # no id
        b"id:9 sub:001",  # no state
        b"id:9 stat:PERHAPS",  # unknown state
        b"\x00\xff\xfe",
        b"id:" + b"9" * 65 + b" stat:DELIVRD",  # longer than any stored id
    ],
)
def test_malformed_receipts_are_refused(text: bytes) -> None:
    with pytest.raises(MalformedReceipt):
        sms_receipt.parse(text)


def test_receipt_bits_of_esm_class() -> None:
    assert sms_receipt.is_receipt(0x04)
    assert sms_receipt.is_receipt(0x44)  # with a header indicator
    assert not sms_receipt.is_receipt(0x00)
    assert not sms_receipt.is_receipt(0x40)
