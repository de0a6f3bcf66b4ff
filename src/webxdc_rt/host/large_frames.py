"""Large binary frames read with one copy of their payload instead of aiohttp's four.

aiohttp's WebSocket reader copies a frame's payload several times on its way to a message:
a slice of each read it spans, a join of those slices, a bytearray to unmask them in, and
bytes of that bytearray. A 128,000-byte realtime item costs the host more in those copies
than in everything else it does for the item. `LargeFrames` stands in front of aiohttp's
reader as the connection's parser: it follows the frame boundaries of what arrives, copies
the payload of each large, final, masked binary frame once into a bytearray of its size,
unmasks it there and queues it as aiohttp's reader would (a `BINARY` message whose data is
that bytearray, owned by nobody else). Every other frame (text, control, fragmented,
small, unmasked, oversize or malformed) goes to aiohttp's reader as it came, with all of
its checks and answers; so does everything once a fragmented message or an error was seen.

Order is kept: what precedes a large frame is handed to aiohttp's reader before the frame
is queued, and while aiohttp's reader holds back unparsed bytes (its queue is full), large
frames go to it too, behind them. Following the frame boundaries means walking every
header in Python; a connection that sends only small frames stops being walked after
`QUIET_FRAMES` of them (the connection then hands its reads to aiohttp's reader alone), so
it pays for a few frames, not for every one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import WSMessage, WSMsgType, web

websocket_mask: Callable[[bytes, bytearray], None] | None
try:  # aiohttp's compiled unmasking, where this aiohttp has it where 3.11 and later do
    from aiohttp._websocket.helpers import websocket_mask
except ImportError:  # pragma: no cover - older aiohttp: its reader reads every frame
    websocket_mask = None

__all__ = ["LARGE_FRAME_BYTES", "MAX_PIECES", "NEWEST_CHECKED_AIOHTTP", "QUIET_FRAMES",
           "FrameParser", "LargeFrames", "large_frames_for"]

NEWEST_CHECKED_AIOHTTP = (3, 14)
"""The newest aiohttp release series whose reader `LargeFrames` was checked against: what
it reads of aiohttp's internals (the queue, its `_stalled_reader`, the frame limit) means
what it relies on in 3.11 to 3.14 (3.10 has no `websocket_mask`: its reader reads every
frame). A later series may hold bytes back some other way, which would put large frames
ahead of what came before them: there aiohttp's reader reads every frame."""

LARGE_FRAME_BYTES = 8192
"""Frames with a payload of at least this many bytes are read here: below it the copies
saved cost less than reading the frame in Python instead of aiohttp's compiled reader."""

QUIET_FRAMES = 16
"""Small frames in a row after which a connection's reads are no longer walked
(`LargeFrames.walking`): walking their headers in Python costs about as much per frame as
aiohttp's whole reading of a small frame, and pays only where large frames come."""

MAX_PIECES = 256
"""Reads a large frame is kept in before they are joined: a frame trickling in one byte
per read holds a bounded number of objects."""

_FINAL_BINARY = 0x82
"""First byte of a final binary frame with no reserved bits set."""
_MASKED = 0x80
_FINAL = 0x80
_BINARY = WSMsgType.BINARY
_new_tuple = tuple.__new__


class FrameParser(Protocol):
    """What aiohttp's connection feeds the bytes of an upgraded connection to."""

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        """Parse `data`; (True, rest) when the connection is to be closed."""

    def feed_eof(self) -> None:
        """The peer closed its side."""


class LargeFrames:
    """A connection's frame parser: large final binary frames are read here, the rest by
    aiohttp's reader (`inner`), in the order they came. `queue` is the socket's message
    queue (the one `inner` feeds) and `max_bytes` its frame limit (0: none): a frame at
    the limit or over it goes to `inner`, which refuses it."""

    __slots__ = ("_inner", "_queue", "_max_bytes", "_skip", "_head", "_pieces", "_missing",
                 "_mask", "_through", "_busy", "_quiet", "walking", "inner")

    def __init__(self, inner: FrameParser, queue: Any, max_bytes: int) -> None:
        self._inner = inner
        self._queue = queue
        self._max_bytes = max_bytes or 1 << 63
        self._skip = 0
        """Bytes of a frame handed to `inner` that have yet to arrive."""
        self._head = b""
        """The start of a frame whose header was split between two reads."""
        self._pieces: list[memoryview | bytearray] = []
        """What arrived of the payload of the large frame being read."""
        self._missing = 0
        """Bytes of that payload yet to arrive (0: no large frame is being read)."""
        self._mask = b""
        self._through = False
        """Whether everything goes to `inner` from now on (a fragmented message, an
        error)."""
        self._quiet = 0
        """Small frames walked in a row (`feed_data`) since the last large frame."""
        self.walking = True
        """False once more than `QUIET_FRAMES` small frames came in a row, at a frame
        boundary with nothing held: from then on each read can go to `inner` alone."""
        self.inner = inner
        self._busy = False
        """Whether the last read left a large frame, a split header or `_through`: the
        next read is not walked inline (`feed_data`)."""

    def feed_eof(self) -> None:
        """The peer closed its side: `inner` tells the socket's reader."""
        self._inner.feed_eof()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        """Read `data`: what is not a large frame goes to `inner`, in order. Returns as
        aiohttp's reader does: (True, ...) when the connection is to be closed.

        Most reads start at a frame boundary and hold whole small frames: their headers
        are walked here, inline (this runs once per read), and the read goes to `inner`
        as it is."""
        if self._busy:
            return self._feed(data, -1)
        pos, end = self._skip, len(data)  # what is left of a frame the last read began
        if pos:
            if pos >= end:
                self._skip = pos - end
                return self._inner.feed_data(data)
            self._skip = 0
        frames = 0
        while pos + 1 < end:
            frames += 1
            second = data[pos + 1]
            size = second & 0x7F
            if size > 125 or data[pos] < _FINAL:  # longer, or a fragment
                if size != 126 or data[pos] < _FINAL or pos + 3 >= end:
                    return self._feed(data, pos)
                size = data[pos + 2] << 8 | data[pos + 3]
                if size >= LARGE_FRAME_BYTES:
                    return self._feed(data, pos)
                size += 2
            pos += size + (6 if second & _MASKED else 2)
        if pos > end:
            self._skip = pos - end
        elif pos < end:  # one byte of a header
            return self._feed(data, pos)
        self._quiet += frames
        if self._quiet > QUIET_FRAMES:  # walking does not pay on this connection
            self.walking = False
        return self._inner.feed_data(data)

    def _feed(self, data: bytes, pos: int) -> tuple[bool, bytes]:
        """`feed_data`'s general case: from a frame boundary at `pos` (what precedes it
        is whole frames for `inner`; past the end of `data`: a frame goes on), or, with
        `pos` -1, from where the previous read left off."""
        try:
            return self._walk(data, pos)
        finally:
            self._busy = bool(self._through or self._head or self._missing)

    def _walk(self, data: bytes, pos: int) -> tuple[bool, bytes]:
        start = 0
        if pos < 0:
            if self._through:
                return self._inner.feed_data(data)
            if self._head:  # rare: a header split between reads
                data, self._head = self._head + data, b""
            pos = start = self._fill(data) if self._missing else 0
        end = len(data)
        if pos > end:
            self._skip, pos = pos - end, end
        while pos < end:
            if self._skip:
                if self._skip >= end - pos:
                    self._skip -= end - pos
                    pos = end
                    break
                pos += self._skip
                self._skip = 0
            header = _header(data, pos, end)
            if header is None:  # the rest of the header comes with the next read
                self._head = data[pos:]
                end = pos
                break
            first, header_bytes, size = header
            if first & _FINAL == 0:  # a fragmented message: aiohttp's reader assembles it
                self._through = True
                return self._inner.feed_data(data[start:] if start else data)
            # No `_stalled_reader` (aiohttp before 3.14.4): its reader holds nothing back.
            if (first != _FINAL_BINARY or data[pos + 1] & _MASKED == 0
                    or not LARGE_FRAME_BYTES <= size < self._max_bytes
                    or getattr(self._queue, "_stalled_reader", None) is not None):
                self._skip = header_bytes + size
                continue
            if start < pos:  # what came before the frame is queued before it
                closed = self._inner.feed_data(data[start:pos])
                if closed[0]:
                    self._through = True
                    return closed
                if getattr(self._queue, "_stalled_reader", None) is not None:
                    start, self._skip = pos, header_bytes + size  # behind what it holds
                    continue
            self._mask = data[pos + header_bytes - 4:pos + header_bytes]
            self._missing, self._quiet = size, 0
            pos = start = self._fill(data, pos + header_bytes)
        if start < end:
            closed = self._inner.feed_data(data if start == 0 and end == len(data)
                                           else data[start:end])
            if closed[0]:
                self._through = True
            return closed
        return False, b""

    def _fill(self, data: bytes, pos: int = 0) -> int:
        """Take the payload's next bytes from `data` at `pos` (a view: copied once, when
        the frame is whole); queue the frame once it is. Returns where in `data` the payload
        ended (the end of `data` if it goes on)."""
        pieces = self._pieces
        take = min(self._missing, len(data) - pos)
        pieces.append(memoryview(data)[pos:pos + take])
        self._missing -= take
        if self._missing:
            if len(pieces) >= MAX_PIECES:  # a trickle of small reads: keep few objects
                self._fold(pieces)
            return pos + take
        self._pieces = []
        payload = bytearray().join(pieces)  # the one copy: no zero-filling, no temporary
        websocket_mask(self._mask, payload)  # type: ignore[misc]  # None: never made
        self._queue.feed_data(_new_tuple(WSMessage, (_BINARY, payload, "")), len(payload))
        return pos + take


    def _fold(self, pieces: list[memoryview | bytearray]) -> None:
        """Gather `pieces` into one bytearray, the first one if an earlier fold made it:
        grown in place, what came before is not copied again on every fold (a frame
        trickling in would cost copies of its size times the reads)."""
        folded = pieces[0] if isinstance(pieces[0], bytearray) else bytearray(pieces[0])
        for piece in pieces[1:]:
            folded += piece
        self._pieces = [folded]


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """The first byte, header length and payload length of the frame at `pos` in `data`,
    or None if its header does not end before `end`."""
    if end - pos < 2:
        return None
    length = data[pos + 1]
    header_bytes = 6 if length & _MASKED else 2
    length &= 0x7F
    if length == 126:
        header_bytes += 2
        if end - pos < header_bytes:
            return None
        length = data[pos + 2] << 8 | data[pos + 3]
    elif length == 127:
        header_bytes += 8
        if end - pos < header_bytes:
            return None
        length = int.from_bytes(data[pos + 2:pos + 10], "big")
    if end - pos < header_bytes:
        return None
    return data[pos], header_bytes, length


def large_frames_for(ws: web.WebSocketResponse, parser: FrameParser) -> FrameParser:
    """The parser to give the connection of `ws`, just prepared with aiohttp's `parser`:
    `LargeFrames` in front of it, or `parser` alone where this aiohttp keeps the socket's
    messages elsewhere or is newer than `NEWEST_CHECKED_AIOHTTP`."""
    release = re.match(r"(\d+)\.(\d+)", aiohttp.__version__)
    if release is None or (int(release[1]), int(release[2])) > NEWEST_CHECKED_AIOHTTP:
        return parser
    queue = getattr(ws, "_reader", None)
    limit = getattr(ws, "_max_msg_size", None)
    if (websocket_mask is None or not callable(getattr(queue, "feed_data", None))
            or not isinstance(limit, int)):
        return parser
    return LargeFrames(parser, queue, limit)
