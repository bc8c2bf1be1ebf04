"""Server-to-client WebSocket frames (RFC 6455 §5.2), built directly.

Frames from a server are never masked, so a text frame is a 2-, 4- or 10-byte header and the
payload. Building them here lets the hub put many frames into one ``transport.write``.
"""

from __future__ import annotations

import struct

_OP_TEXT_FIN = 0x81


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((_OP_TEXT_FIN, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _OP_TEXT_FIN, 126, n) + payload
    return struct.pack("!BBQ", _OP_TEXT_FIN, 127, n) + payload
