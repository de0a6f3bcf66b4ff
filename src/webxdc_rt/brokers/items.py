"""Realtime items as bytes between host processes, with no I/O.

An item crosses a networked broker as one binary message: a compact header naming where it
came from, then its stamp and payload exactly as the sender sent them (no JSON, no base64):

    format (1 byte, 2) | origin length n (1 byte, 1..64) | origin (n ASCII letters and
    digits) | sender (8 bytes, big-endian) | stamp (8 bytes, `wire.items`) | payload

`origin` names the host process (`Broker.node_id`), `sender` the connection there, so that
the process that published an item can recognise its own items (it delivers those to its
own connections directly) and nobody else ever takes them for theirs.

What arrives from the broker is checked like anything from the network: a message that is
too short, of another format, with an origin that is not letters and digits, without a
whole stamp, or with a payload over the realtime limit decodes to `None`, to be dropped and
counted by the caller.
"""

from __future__ import annotations

import struct

from ..core.fanout import Published
from ..core.frames import payload_part
from ..core.wire import ITEM_HEADER_BYTES

__all__ = ["FORMAT", "MAX_ORIGIN_BYTES", "origin_prefix", "encode_header", "decode_item"]

FORMAT = 2
"""The version of the layout above (1: without the stamp); any other first byte is
refused."""
MAX_ORIGIN_BYTES = 64
"""Longest origin name a message may carry."""

_SENDER = struct.Struct(">Q")
_new_tuple = tuple.__new__


def origin_prefix(origin: str) -> bytes:
    """The bytes every message published by `origin` starts with (format, length, name).
    ValueError if `origin` is empty, longer than `MAX_ORIGIN_BYTES` or not ASCII letters
    and digits."""
    raw = origin.encode("ascii", "replace")
    if not 0 < len(raw) <= MAX_ORIGIN_BYTES or not raw.isalnum():
        raise ValueError(f"an origin must be 1 to {MAX_ORIGIN_BYTES} ASCII letters and "
                         f"digits, got {origin!r}")
    return bytes((FORMAT, len(raw))) + raw


def encode_header(prefix: bytes, sender: int, stamp: bytes) -> bytes:
    """The header of an item from connection `sender` of the process whose
    `origin_prefix` is `prefix`, up to its `stamp`; the payload follows it unchanged."""
    return prefix + _SENDER.pack(sender) + stamp


def decode_item(data: bytes, max_payload_bytes: int) -> Published | None:
    """The item `data` carries, or None when it is not a well-formed item within
    `max_payload_bytes`."""
    if len(data) < 2 + 1 + _SENDER.size or data[0] != FORMAT:
        return None
    length = data[1]
    end = 2 + length
    if not 0 < length <= MAX_ORIGIN_BYTES or len(data) < end + _SENDER.size:
        return None
    origin = data[2:end]
    if not origin.isalnum() or not origin.isascii():
        return None
    # The payload follows the item's stamp (`wire.items`), which the limit does not count.
    if not ITEM_HEADER_BYTES <= len(data) - end - _SENDER.size <= (max_payload_bytes
                                                                    + ITEM_HEADER_BYTES):
        return None
    sender = _SENDER.unpack_from(data, end)[0]
    stamp_at = end + _SENDER.size
    return _new_tuple(Published, (origin.decode("ascii"), sender,
                                  data[stamp_at:stamp_at + ITEM_HEADER_BYTES],
                                  payload_part(data, stamp_at + ITEM_HEADER_BYTES)))
