"""The stamp before a realtime item's payload, on a connection that asked for it in its
`join` (`stamped: true`): 8 bytes, the sender's estimate of the host's clock when it sent
the item, in milliseconds since the Unix epoch as a big-endian IEEE 754 double, then the
payload unchanged. The host's clock is the common reference because a sender's clock and a
receiver's differ: the `hello` carries the host's time (`time_ms`), read after the client
dialled and before the client read the hello, so the client's offset to the host's clock
lies between that time less its own clock at each of those two moments. A client stamps by
the higher bound and ages by the lower one (`ItemClock`): its estimates can only make items
look younger than they are, by at most how long the connection took to open, never older;
each `joined` carries the host's time again, which narrows the bounds to the quickest
exchange so far.
(One estimate in between, such as the moment the socket opened, is exact only for a client
that was idle then: a busy one would stamp its items too early by as long as it was busy,
and have every one dropped once that is over the age bound.)

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
    monotonic clock in ms. The host's clock less it lies between `receive_offset_ms` and
    `send_offset_ms`: items are stamped by the higher bound and aged by the lower one, so
    that neither estimate drops an item that is within the bound."""

    __slots__ = ("send_offset_ms", "receive_offset_ms", "max_age_ms")

    def __init__(self, host_ms: float, dialled_ms: float, heard_ms: float,
                 max_age_ms: float) -> None:
        """`host_ms`: the hello's time; `dialled_ms`, `heard_ms`: the client's clock when
        it began to open the connection and when it read the hello."""
        self.send_offset_ms = host_ms - dialled_ms
        self.receive_offset_ms = host_ms - heard_ms
        self.max_age_ms = max_age_ms

    def narrow(self, host_ms: float, asked_ms: float, heard_ms: float) -> None:
        """Narrow the bounds by another reading of the host's clock (`host_ms`, in a
        `joined`), taken after the client's clock showed `asked_ms` and before it showed
        `heard_ms`: a client busy while its link opened learns the clock closely once it
        is idle. A reading that contradicts the bounds means that a clock jumped (a
        suspended machine whose monotonic clock stood still): it replaces them. Between
        readings the bounds hold as long as both clocks run at the same rate; they are
        read again at each join and each new link, not on a timer."""
        highest, lowest = host_ms - asked_ms, host_ms - heard_ms  # this reading's bounds
        send = min(self.send_offset_ms, highest)
        receive = max(self.receive_offset_ms, lowest)
        self.send_offset_ms, self.receive_offset_ms = (
            (highest, lowest) if receive > send else (send, receive))

    def stamp(self, payload: bytes, local_ms: float) -> bytes:
        """`payload` with the stamp of an item sent at `local_ms` before it."""
        return _STAMP.pack(local_ms + self.send_offset_ms) + payload

    def fresh(self, data: bytes, local_ms: float) -> bool:
        """Whether the stamped item `data`, received at `local_ms`, is within the age
        bound (False too when it is shorter than its stamp)."""
        return len(data) >= ITEM_HEADER_BYTES and stamped_age_ms(
            read_stamp(data), local_ms + self.receive_offset_ms) <= self.max_age_ms
