"""SMS text rules: choosing GSM 03.38 7-bit or UCS-2, splitting long texts into concatenated
parts with a user data header, and reading texts (and their parts) back from a handset.

Pure: text in, payload bytes out. SMPP sends GSM 7-bit as one septet per octet (the SMSC packs
them for the air), with ``data_coding`` 0x00; UCS-2 is UTF-16 big-endian with ``data_coding``
0x08. Limits (3GPP TS 23.040): one part carries 160 septets or 70 UCS-2 code units; a part of
a concatenated message loses 6 octets to the header (IEI 0x00, 8-bit reference) and carries
153 septets or 67 code units. An extension-table character costs two septets (escape + char)
and is never split across parts; neither is a UTF-16 surrogate pair.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM = 0x00
"""data_coding: the SMSC's default alphabet (GSM 03.38)."""
LATIN1 = 0x03
UCS2 = 0x08
UDHI = 0x40
"""esm_class bit: short_message starts with a user data header."""

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
ESCAPE = 0x1B
EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D}
EXTENSION |= {"]": 0x3E, "|": 0x40, "€": 0x65}

_BASIC_CODE = {ch: i for i, ch in enumerate(BASIC) if i != ESCAPE}
_BASIC_CHAR = {i: ch for ch, i in _BASIC_CODE.items()}
_EXT_CHAR = {code: ch for ch, code in EXTENSION.items()}

SINGLE = {GSM: 160, UCS2: 70}
"""Units (septets or UTF-16 code units) in a message of one part."""
PER_PART = {GSM: 153, UCS2: 67}
"""Units in each part of a concatenated message."""
MAX_PARTS = 255


@dataclass(frozen=True)
class Part:
    """One submit_sm's worth: ``short_message`` (header included) and its flags."""

    short_message: bytes
    data_coding: int
    esm_class: int


def is_gsm(text: str) -> bool:
    """Whether every character is in the GSM 03.38 basic or extension table."""
    return all(ch in _BASIC_CODE or ch in EXTENSION for ch in text)


def coding_for(text: str) -> int:
    """GSM 7-bit when the text allows it, else UCS-2."""
    return GSM if is_gsm(text) else UCS2


def _units(text: str, coding: int) -> list[bytes]:
    """The text as indivisible units in the chosen coding: a septet (or escape + septet) per
    character for GSM, one or two UTF-16 code units (a surrogate pair) per character for UCS-2."""
    if coding == GSM:
        return [
            bytes([ESCAPE, EXTENSION[ch]]) if ch in EXTENSION else bytes([_BASIC_CODE[ch]])
            for ch in text
        ]
    return [ch.encode("utf-16-be") for ch in text]


def _unit_size(coding: int) -> int:
    return 1 if coding == GSM else 2  # octets per septet / per code unit


def _split(units: list[bytes], coding: int) -> list[bytes]:
    size = _unit_size(coding)
    total = sum(len(u) for u in units) // size
    if total <= SINGLE[coding]:
        return [b"".join(units)]
    limit = PER_PART[coding]
    parts: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for unit in units:
        n = len(unit) // size
        if used + n > limit:
            parts.append(b"".join(current))
            current, used = [], 0
        current.append(unit)
        used += n
    parts.append(b"".join(current))
    return parts


def count_parts(text: str) -> int:
    """How many SMS the text takes."""
    coding = coding_for(text)
    return len(_split(_units(text, coding), coding))


def udh(ref: int, total: int, seq: int) -> bytes:
    """The concatenation header: IEI 0x00 (8-bit reference), ``seq`` of ``total``, from 1."""
    return bytes([0x05, 0x00, 0x03, ref & 0xFF, total, seq])


def encode(text: str, ref: int) -> list[Part]:
    """The parts to submit for ``text``; ``ref`` (0..255) ties concatenated parts together.
    Raises ValueError for an empty text or one longer than 255 parts."""
    if not text:
        raise ValueError("an SMS needs a text")
    coding = coding_for(text)
    payloads = _split(_units(text, coding), coding)
    if len(payloads) == 1:
        return [Part(payloads[0], coding, 0)]
    if len(payloads) > MAX_PARTS:
        raise ValueError(f"a text of {len(payloads)} parts is longer than {MAX_PARTS}")
    total = len(payloads)
    return [
        Part(udh(ref, total, i + 1) + payload, coding, UDHI) for i, payload in enumerate(payloads)
    ]


@dataclass(frozen=True)
class Received:
    """A text from a handset, or one part of a concatenated one (``total`` > 1)."""

    text: str
    ref: int = 0
    total: int = 1
    seq: int = 1


def decode_gsm(data: bytes) -> str:
    """GSM 03.38 septets, one per octet; an unknown code or a dangling escape reads as '?'."""
    out: list[str] = []
    escaped = False
    for octet in data:
        code = octet & 0x7F
        if escaped:
            out.append(_EXT_CHAR.get(code, "?"))
            escaped = False
        elif code == ESCAPE:
            escaped = True
        else:
            out.append(_BASIC_CHAR.get(code, "?"))
    if escaped:
        out.append("?")
    return "".join(out)


def decode(short_message: bytes, data_coding: int, esm_class: int) -> Received:
    """Read a deliver_sm's text; raises ValueError for a malformed header or payload."""
    ref, total, seq = 0, 1, 1
    body = short_message
    if esm_class & UDHI:
        if not body or body[0] + 1 > len(body):
            raise ValueError("user data header longer than the message")
        header, body = body[1 : body[0] + 1], body[body[0] + 1 :]
        i = 0
        while i + 2 <= len(header):
            iei, length = header[i], header[i + 1]
            value = header[i + 2 : i + 2 + length]
            if len(value) != length:
                raise ValueError("truncated information element")
            if iei == 0x00 and length == 3:
                ref, total, seq = value[0], value[1], value[2]
            elif iei == 0x08 and length == 4:
                ref, total, seq = (value[0] << 8) | value[1], value[2], value[3]
            i += 2 + length
        if total < 1 or not 1 <= seq <= total:
            raise ValueError("concatenation header out of range")
    coding = data_coding & 0x0F if data_coding & 0xF0 == 0xF0 else data_coding
    if coding == UCS2:
        if len(body) % 2:
            raise ValueError("UCS-2 text of an odd number of octets")
        text = body.decode("utf-16-be", errors="replace")
    elif coding == LATIN1:
        text = body.decode("latin-1")
    elif coding in (GSM, 0x01):  # 0x01: IA5 / ASCII, a subset of the GSM table's letters
        text = decode_gsm(body) if coding == GSM else body.decode("ascii", errors="replace")
    else:
        raise ValueError(f"data_coding 0x{data_coding:02x} is not a text coding")
    return Received(text, ref, total, seq)


class Reassembler:
    """Collects parts of concatenated texts from handsets until every part has come.

    Keyed by (sender, reference, total); a text whose parts stop coming is dropped after
    ``max_pending`` newer texts started (oldest first), so memory stays bounded."""

    def __init__(self, max_pending: int = 1000) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple[str, int, int], dict[int, str]] = {}

    def add(self, sender: str, received: Received) -> str | None:
        """The whole text once this part completes it, else None."""
        if received.total == 1:
            return received.text
        key = (sender, received.ref, received.total)
        parts = self._pending.setdefault(key, {})
        parts[received.seq] = received.text
        if len(parts) == received.total:
            del self._pending[key]
            return "".join(parts[i] for i in range(1, received.total + 1))
        while len(self._pending) > self.max_pending:
            del self._pending[next(iter(self._pending))]
        return None
