"""The stamp before a realtime item's payload, on a connection that asked for it in its
`join` (`stamped: true`): 8 bytes, the sender's estimate of the host's clock when it sent
the item, in milliseconds since the Unix epoch as a big-endian IEEE 754 double, then the
payload unchanged. The host's clock is the common reference because a sender's clock and a
receiver's differ: the `hello` carries the host's time (`time_ms`), written right after the
host's answer to the upgrade, and a client takes its offset to the host's clock as that time
minus its own clock when that answer arrived: an estimate that lags the host by the answer's
one-way trip and does not count how long opening the connection took.

A stamp is the sender's claim: a stamp in the future counts as now, and one that is not a
number counts as now too, so a lying stamp can only get its own item dropped sooner.

Its public names are exported by the package (`wire.ITEM_HEADER_BYTES`)."""

from __future__ import annotations

import struct
from typing import Final

ITEM_HEADER_BYTES: Final = 8
"""Bytes of the stamp before the payload of an item on a stamped connection."""

_STAMP: Final = struct.Struct(">d")

pack_stamp: Final = _STAMP.pack
"""`encode_stamp` as the bare packing call, for the host's read path: one call fewer per
item."""


def encode_stamp(host_ms: float) -> bytes:
    """The header for an item sent at `host_ms` (milliseconds of the host's clock)."""
    return _STAMP.pack(host_ms)


def read_stamp(data: bytes) -> float:
    """The stamp of a stamped item (at least `ITEM_HEADER_BYTES` long), as sent: it may be
    in the future or not a number; `stamped_age_ms` clamps it."""
    stamp: float = _STAMP.unpack_from(data)[0]
    return stamp


def stamped_age_ms(stamp: float, host_now_ms: float) -> float:
    """How old an item stamped `stamp` is at `host_now_ms`: never negative; a stamp in the
    future or not a number counts as now."""
    return host_now_ms - stamp if stamp < host_now_ms else 0.0


class ItemClock:
    """A client's estimate of the host's clock, to stamp the items it sends and to tell
    whether one it receives is within the age bound. Local times are the client's own
    monotonic clock in ms; `offset_ms`: the host's clock less it."""

    __slots__ = ("offset_ms", "max_age_ms")

    def __init__(self, host_ms: float, opened_ms: float, max_age_ms: float) -> None:
        self.offset_ms = host_ms - opened_ms
        self.max_age_ms = max_age_ms

    def stamp(self, payload: bytes, local_ms: float) -> bytes:
        """`payload` with the stamp of an item sent at `local_ms` before it."""
        return _STAMP.pack(local_ms + self.offset_ms) + payload

    def fresh(self, data: bytes, local_ms: float) -> bool:
        """Whether the stamped item `data`, received at `local_ms`, is within the age
        bound (False too when it is shorter than its stamp)."""
        return len(data) >= ITEM_HEADER_BYTES and stamped_age_ms(
            read_stamp(data), local_ms + self.offset_ms) <= self.max_age_ms
