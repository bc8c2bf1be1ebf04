"""Server-to-client WebSocket frames (RFC 6455 §5.2), built directly.

Frames from a server are never masked, so a text frame is a 2-, 4- or 10-byte header and the
payload. Building them here lets the hub put many frames into one ``transport.write``.
"""

from __future__ import annotations

import struct

_OP_TEXT_FIN = 0x81
_OP_BINARY_FIN = 0x82


def text_frame(payload: bytes) -> bytes:
    return _frame(_OP_TEXT_FIN, payload)


def binary_frame(payload: bytes) -> bytes:
    return _frame(_OP_BINARY_FIN, payload)


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", opcode, 126, n) + payload
    return struct.pack("!BBQ", opcode, 127, n) + payload
