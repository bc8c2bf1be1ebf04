"""Reading SMPP delivery receipts: which submitted message, and did it reach the phone.

A receipt is a deliver_sm whose esm_class marks it as one (0x04, SMSC delivery receipt).
The message id and state come from the TLVs ``receipted_message_id`` (0x001E) and
``message_state`` (0x0427) when present, else from the text of SMPP 3.4 Appendix B:
``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

RECEIPT_BITS = 0x3C
"""esm_class message-type bits; 0x04 is an SMSC delivery receipt, 0x20 an intermediate
notification (not final: ignored like ACCEPTD/ENROUTE)."""
SMSC_RECEIPT = 0x04
INTERMEDIATE = 0x20

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427

DELIVERED = "DELIVRD"
FINAL_STATES = {"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN"}
PENDING_STATES = {"ENROUTE", "ACCEPTD", "SCHEDULED"}
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}

_ID = re.compile(r"(?:^|\s)id:(\S+)", re.IGNORECASE)
_STAT = re.compile(r"(?:^|\s)stat:(\w+)", re.IGNORECASE)
_ERR = re.compile(r"(?:^|\s)err:(\w+)", re.IGNORECASE)


class MalformedReceipt(ValueError):
    """A receipt that says too little (no message id, no or an unknown state)."""


@dataclass(frozen=True)
class ReceiptInfo:
    message_id: str
    state: str
    """The SMPP state word, e.g. DELIVRD, UNDELIV."""
    error: str
    """The network error code from ``err:``, or ''."""

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def delivered(self) -> bool:
        return self.state == DELIVERED


def is_receipt(esm_class: int) -> bool:
    return esm_class & RECEIPT_BITS in (SMSC_RECEIPT, INTERMEDIATE)


def parse(short_message: bytes, tlvs: Iterable[tuple[int, bytes]] = ()) -> ReceiptInfo:
    """The receipt's message id and state; raises MalformedReceipt when either is missing."""
    text = short_message.decode("latin-1")
    message_id = ""
    state = ""
    for tag, value in tlvs:
        if tag == TLV_RECEIPTED_MESSAGE_ID:
            message_id = value.split(b"\x00", 1)[0].decode("latin-1").strip()
        elif tag == TLV_MESSAGE_STATE and len(value) == 1:
            state = MESSAGE_STATES.get(value[0], "")
    if not message_id:
        found = _ID.search(text)
        message_id = found.group(1) if found else ""
    if not state:
        found = _STAT.search(text)
        state = found.group(1).upper() if found else ""
    if not message_id or len(message_id) > 64:
        raise MalformedReceipt(f"no message id in receipt {text[:80]!r}")
    if state not in FINAL_STATES and state not in PENDING_STATES:
        raise MalformedReceipt(f"unknown state {state!r} in receipt {text[:80]!r}")
    err = _ERR.search(text)
    return ReceiptInfo(message_id, state, err.group(1) if err else "")
