"""SMS text rules: coding choice, part boundaries, headers, and reading texts back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanglai.domain import sms_text
from wanglai.domain.sms_text import GSM, UCS2, UDHI, Reassembler, Received


def test_gsm_characters_pick_gsm_and_anything_else_ucs2() -> None:
    assert sms_text.coding_for("Hello @£$¥ èé ÄÖÑÜ§¿ {[~]}|€\\^") == GSM
    assert sms_text.coding_for("naïve") == UCS2  # ï is not in GSM 03.38
    assert sms_text.coding_for("你好") == UCS2
    assert sms_text.coding_for("`") == UCS2  # the backtick is not in the table


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 80 + "a", 2),  # 161
        ("a" * 159 + "€", 2),  # 161 septets: the escape pushes it over
        ("你" * 70, 1),
        ("你" * 71, 2),
        ("你" * 134, 2),
        ("你" * 135, 3),
        ("👋" * 35, 1),  # 70 UTF-16 code units
        ("👋" * 35 + "a", 2),
    ],
)
def test_part_boundaries(text: str, parts: int) -> None:
    assert sms_text.count_parts(text) == parts
    assert len(sms_text.encode(text, 1)) == parts


def test_single_part_has_no_header() -> None:
    [part] = sms_text.encode("Hi {there}", 9)
    assert part.esm_class == 0 and part.data_coding == GSM
    assert part.short_message == b"Hi \x1b\x28there\x1b\x29"


def test_concatenated_parts_carry_the_header_and_153_septets() -> None:
    parts = sms_text.encode("a" * 200, ref=0x1A2)
    assert [p.short_message[:6] for p in parts] == [
        bytes([5, 0, 3, 0xA2, 2, 1]),
        bytes([5, 0, 3, 0xA2, 2, 2]),
    ]
    assert [len(p.short_message) - 6 for p in parts] == [153, 47]
    assert all(p.esm_class == UDHI for p in parts)


def test_an_extension_character_is_never_split_across_parts() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the euro would straddle septets 153/154
    first, second = sms_text.encode(text, 1)
    assert first.short_message[6:] == b"a" * 152
    assert second.short_message[6:8] == b"\x1b\x65"


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    text = "x" * 66 + "👋" + "y" * 10  # the emoji would straddle units 67/68
    first, second = sms_text.encode(text, 1)
    assert first.data_coding == UCS2
    assert first.short_message[6:].decode("utf-16-be") == "x" * 66
    assert second.short_message[6:].decode("utf-16-be") == "👋" + "y" * 10


def test_empty_and_endless_texts_are_refused() -> None:
    with pytest.raises(ValueError):
        sms_text.encode("", 0)
    with pytest.raises(ValueError):
        sms_text.encode("a" * (153 * 255 + 1), 0)


@given(st.text(min_size=1, max_size=600))
def test_parts_read_back_as_the_text(text: str) -> None:
    parts = sms_text.encode(text, 42)
    assembler = Reassembler()
    got = [
        assembler.add("+861", sms_text.decode(p.short_message, p.data_coding, p.esm_class))
        for p in parts
    ]
    assert got[-1] == text and all(g is None for g in got[:-1])
    # octets of short_message: GSM one septet per octet (160, or 6 + 153), UCS-2 140 either way
    room = 140 if parts[0].data_coding == UCS2 else (160 if len(parts) == 1 else 159)
    assert all(len(p.short_message) <= room for p in parts)


def test_decode_reads_16_bit_references_and_refuses_broken_headers() -> None:
    body = bytes([6, 8, 4, 0x12, 0x34, 3, 2]) + "hi".encode("utf-16-be")
    assert sms_text.decode(body, UCS2, UDHI) == Received("hi", 0x1234, 3, 2)
    with pytest.raises(ValueError):
        sms_text.decode(bytes([9, 0, 3]), GSM, UDHI)  # header longer than the message
    with pytest.raises(ValueError):
        sms_text.decode(bytes([5, 0, 3, 1, 2, 3]) + b"a", GSM, UDHI)  # part 3 of 2
    with pytest.raises(ValueError):
        sms_text.decode(b"\x00a\x00", UCS2, 0)  # odd length
    with pytest.raises(ValueError):
        sms_text.decode(b"\x01\x02", 0x04, 0)  # binary data


def test_reassembler_bounds_what_it_keeps() -> None:
    assembler = Reassembler(max_pending=2)
    for ref in range(5):
        assert assembler.add("+861", Received("a", ref, 2, 1)) is None
    assert assembler.add("+861", Received("b", 0, 2, 2)) is None  # ref 0 was dropped
    assert assembler.add("+861", Received("b", 4, 2, 2)) == "ab"
