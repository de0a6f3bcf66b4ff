"""WebSocket frames encoded once by the host and written as they are to many receivers.

aiohttp encodes a frame per `send_*` call; fanning one item out to many receivers instead
encodes it here once (RFC 6455: final, unmasked, uncompressed, as a server sends) and
writes the same bytes to each receiver's transport.
"""

from __future__ import annotations

import struct

__all__ = ["Frame", "encode_binary_frame", "encode_text_frame", "binary_frame",
           "payload_part", "text_frame_size", "COPY_LIMIT"]

Frame = tuple[bytes | memoryview, ...]
"""One encoded WebSocket frame, as buffers to write in order: a large payload is a view
of the item's bytes, not a copy."""

COPY_LIMIT = 8192
"""Payloads up to this size are copied behind their header (one buffer, one write);
larger ones are written as header and payload, which uvloop sends with one writev and no
copy."""

_OPCODE_TEXT = 0x1
_OPCODE_BINARY = 0x2
_FIN = 0x80


def _header(opcode: int, size: int) -> bytes:
    first = _FIN | opcode
    if size < 126:
        return struct.pack("!BB", first, size)
    if size < 65536:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


def encode_binary_frame(payload: bytes) -> bytes:
    """One binary frame carrying `payload`."""
    return _header(_OPCODE_BINARY, len(payload)) + payload


_pack_medium_header = struct.Struct("!BBH").pack
_pack_large_header = struct.Struct("!BBQ").pack
_SMALL_BINARY_HEADERS = tuple(bytes((_FIN | _OPCODE_BINARY, size)) for size in range(126))
"""The headers of binary frames under 126 bytes, made once: most realtime items are small,
and each costs this module one call instead of three."""


def binary_frame(payload: bytes | memoryview, prefix: bytes = b"") -> tuple[Frame, int]:
    """One binary frame carrying `prefix` then `payload`, as buffers to write in order (see
    `COPY_LIMIT`), and its size in bytes: what a fan-out hands every receiver, computed
    once per item. A large payload is written as it is (bytes or a view): never copied."""
    size = len(prefix) + len(payload)
    if size < 126:
        return (_SMALL_BINARY_HEADERS[size] + prefix + payload,), size + 2
    if size <= COPY_LIMIT:  # COPY_LIMIT < 65536: a 16-bit length
        return (_pack_medium_header(_FIN | _OPCODE_BINARY, 126, size) + prefix + payload,
                ), size + 4
    if size < 65536:
        header = _pack_medium_header(_FIN | _OPCODE_BINARY, 126, size)
    else:
        header = _pack_large_header(_FIN | _OPCODE_BINARY, 127, size)
    return (header + prefix, payload), len(header) + size


def payload_part(data: bytes, skip: int) -> bytes | memoryview:
    """`data` after its first `skip` bytes: a copy when it is small (cheaper to make and
    to write than a view), a view of `data` when it is larger than `COPY_LIMIT`."""
    return data[skip:] if len(data) - skip <= COPY_LIMIT else memoryview(data)[skip:]


def encode_text_frame(text: str) -> bytes:
    """One text frame carrying `text` as UTF-8."""
    data = text.encode()
    return _header(_OPCODE_TEXT, len(data)) + data


def text_frame_size(text: str) -> int:
    """Bytes of the frame that carries `text` (as aiohttp writes it without compression)."""
    size = len(text) if text.isascii() else len(text.encode())
    return size + (2 if size < 126 else 4 if size < 65536 else 10)
