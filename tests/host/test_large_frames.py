"""Large binary frames read by `LargeFrames` in front of aiohttp's reader: whatever way the
bytes are split into reads, every message comes out whole, unmasked and in order, and
whatever is not a large final binary frame is still aiohttp's to check and refuse.

The component tests feed `LargeFrames` and aiohttp's own reader and queue the bytes a
client sent, split at every point; the socket test sends them to a live host over TCP in
small writes, and a member receives the items."""

from __future__ import annotations

import asyncio
import os
import struct

import aiohttp
import pytest
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from peers import BareSocket, eventually, joined

from webxdc_rt.core.limits import RealtimeLimits
from webxdc_rt.host.app import HostSettings
from webxdc_rt.host.large_frames import (
    LARGE_FRAME_BYTES,
    MAX_PIECES,
    QUIET_FRAMES,
    LargeFrames,
)

LIMIT = 200_000


def frame(payload: bytes, opcode: int = 0x2, fin: bool = True, masked: bool = True) -> bytes:
    """One client frame as a browser sends it: masked with a random key."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return head + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def item(size: int, seed: int) -> bytes:
    return bytes((seed + i) % 251 for i in range(size))


class Parsed:
    """`LargeFrames` in front of aiohttp's reader, as a host socket has them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        protocol = _Protocol()
        self.queue = WebSocketDataQueue(protocol, 2**16, loop=self.loop)  # type: ignore[arg-type]
        self.inner = WebSocketReader(self.queue, LIMIT, compress=False, decode_text=True)
        self.parser = LargeFrames(self.inner, self.queue, LIMIT)
        self.closed = False

    def feed(self, data: bytes) -> None:
        closed, _ = self.parser.feed_data(data)
        self.closed = self.closed or closed

    def messages(self) -> list[tuple[aiohttp.WSMsgType, object]]:
        """What the socket's reader gets now, in order (the queue drained)."""
        return self.loop.run_until_complete(self._drain())

    async def _drain(self) -> list[tuple[aiohttp.WSMsgType, object]]:
        out = []
        while self.queue._buffer:
            msg = await self.queue.read()
            out.append((msg.type, bytes(msg.data) if isinstance(msg.data, bytearray)
                        else msg.data))
        return out


class _Protocol:
    """The little of aiohttp's connection that its queue calls."""

    _reading_paused = False

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False


STREAM = [
    (frame(b"small"), (aiohttp.WSMsgType.BINARY, b"small")),
    (frame(item(LARGE_FRAME_BYTES, 1)), (aiohttp.WSMsgType.BINARY, item(LARGE_FRAME_BYTES, 1))),
    (frame(b'{"type":"x"}', opcode=0x1), (aiohttp.WSMsgType.TEXT, '{"type":"x"}')),
    (frame(item(128_000, 2)), (aiohttp.WSMsgType.BINARY, item(128_000, 2))),
    (frame(item(LARGE_FRAME_BYTES - 1, 3)),
     (aiohttp.WSMsgType.BINARY, item(LARGE_FRAME_BYTES - 1, 3))),
    (frame(b"", opcode=0x9), (aiohttp.WSMsgType.PING, b"")),
    (frame(item(70_000, 4)), (aiohttp.WSMsgType.BINARY, item(70_000, 4))),
    (frame(b""), (aiohttp.WSMsgType.BINARY, b"")),
]


def stream_cuts() -> list[int]:
    """Read boundaries around every frame boundary and inside every header."""
    cuts, at = set(), 0
    for data, _ in STREAM:
        cuts.update(at + d for d in range(-3, 16))
        cuts.add(at + len(data) // 2)
        at += len(data)
    return sorted(c for c in cuts if 0 < c < at)


@pytest.mark.parametrize("cut", stream_cuts())
def test_a_stream_split_in_two_anywhere_gives_every_message_in_order(cut):
    data = b"".join(d for d, _ in STREAM)
    parsed = Parsed()
    parsed.feed(data[:cut])
    parsed.feed(data[cut:])
    assert parsed.messages() == [m for _, m in STREAM]
    assert not parsed.closed


@pytest.mark.parametrize("read", [1, 7, 1000, 65_536])
def test_a_stream_in_small_reads_gives_every_message_in_order(read):
    data = b"".join(d for d, _ in STREAM)
    parsed = Parsed()
    got = []
    for at in range(0, len(data), read):
        parsed.feed(data[at:at + read])
        got += parsed.messages()  # drained as the socket's reader does: nothing stalls
    assert got == [m for _, m in STREAM]
    assert not parsed.closed


def test_messages_stay_in_order_while_aiohttps_reader_holds_bytes_back():
    """A full queue makes aiohttp's reader hold the rest of a read; a large frame after
    them waits behind them, read by aiohttp's reader when the queue drains."""
    data = b"".join(d for d, _ in STREAM) * 3
    parsed = Parsed()
    parsed.feed(data)  # one read: the queue goes over its limit on the way
    got = parsed.messages()  # read: aiohttp's reader resumes as the queue drains
    assert got == [m for _, m in STREAM] * 3


def test_a_large_frame_over_the_limit_is_refused_by_aiohttp():
    parsed = Parsed()
    parsed.feed(frame(b"ok") + frame(bytes(LIMIT)))
    assert parsed.closed
    assert parsed.messages() == [(aiohttp.WSMsgType.BINARY, b"ok")]
    assert parsed.queue.exception() is not None  # aiohttp's "message too big"


def test_fragmented_and_unmasked_frames_are_left_to_aiohttp():
    big = item(20_000, 5)
    parsed = Parsed()
    parsed.feed(frame(big[:10_000], fin=False) + frame(big[10_000:], opcode=0x0)
                + frame(item(9000, 6)))
    assert parsed.messages() == [(aiohttp.WSMsgType.BINARY, big),
                                 (aiohttp.WSMsgType.BINARY, item(9000, 6))]
    unmasked = Parsed()
    unmasked.feed(frame(item(9000, 7), masked=False))
    assert unmasked.messages() == [(aiohttp.WSMsgType.BINARY, item(9000, 7))]


def test_a_frame_trickling_in_byte_by_byte_arrives_whole():
    payload = item(3 * MAX_PIECES + 10_000, 8)
    parsed = Parsed()
    for byte in frame(payload):
        parsed.feed(bytes((byte,)))
    assert parsed.messages() == [(aiohttp.WSMsgType.BINARY, payload)]


@pytest.mark.parametrize("small_first", [0, QUIET_FRAMES + 8])
async def test_large_items_in_small_writes_reach_a_member_whole_and_in_order(hosts,
                                                                           small_first):
    """Large items after a few small ones are read by `LargeFrames`; after many, by
    aiohttp's reader alone (`LargeFrames.walking`): both deliver the same."""
    live = await hosts(HostSettings(realtime=RealtimeLimits(
        send_items_per_s=1e6, send_items_burst=10**6, send_bytes_per_s=1e12,
        send_bytes_burst=10**12)))
    urls = live.share(["alice", "bob"])
    bob = await joined(urls["bob"])
    page = live.last_pages[0]
    alice = await BareSocket.connect(live.port, f"{page.label}.localhost:{live.port}",
                                     page.token)
    await alice.send_json({"type": "join", "epoch": 1})
    assert (await alice.next_control())["type"] == "joined"
    sizes = [7] * small_first + [128_000, 5, LARGE_FRAME_BYTES, 100_000,
                                 LARGE_FRAME_BYTES - 1, 128_000]
    items = [item(size, seed) for seed, size in enumerate(sizes)]
    for count, payload in enumerate(items[:small_first], 1):  # one read each
        alice._writer.write(frame(payload))
        await alice._writer.drain()
        await eventually(lambda n=count: len(bob.inbox) == n)
    data = b"".join(frame(payload) for payload in items[small_first:])
    for at in range(0, len(data), 4093):  # reads that cut headers and payloads
        alice._writer.write(data[at:at + 4093])  # framed here: wsproto is not told
        await alice._writer.drain()
    await eventually(lambda: len(bob.inbox) == len(items))
    assert bob.inbox == items
    alice.close()
    await bob.peer.close()
