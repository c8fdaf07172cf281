"""Server-to-client WebSocket frames, encoded once and written as they are to every socket.

A server's frames are not masked (RFC 6455 §5.1), so one message's frame is the same bytes for
every socket that gets it: the live hub encodes a message once per audience and hands the
bytes to each socket's transport, instead of framing (and awaiting) it once per socket.
Kept: with aiohttp's own send path (a task per socket) the last of 5,000 sockets waits twice as long.
"""

from __future__ import annotations

import struct

FIN_TEXT = 0x81  # FIN bit + opcode 1 (text); no RSV bits: never compressed


def text_frame(payload: bytes) -> bytes:
    """One unfragmented text frame carrying `payload` (UTF-8)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", FIN_TEXT, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", FIN_TEXT, 127, size)
    return header + payload
