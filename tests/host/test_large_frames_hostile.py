"""Hostile frames aimed at the host's reading of large binary frames (`LargeFrames`), over
real sockets to a live host. Each attack is played twice, once with `LargeFrames` in front
of aiohttp's reader and once with aiohttp's reader alone, and must end the same way: the
same close code, the same items delivered to another member in the same order, no error
logged. The host must also serve WebSockets on aiohttp releases whose `set_parser` takes
the parser alone (before 3.14)."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from peers import BareSocket, eventually, joined
from wsproto.events import CloseConnection

from webxdc_rt.core.limits import RealtimeLimits
from webxdc_rt.host import http_guard
from webxdc_rt.host.app import HostSettings
from webxdc_rt.host.large_frames import LARGE_FRAME_BYTES, LargeFrames

LIMIT = 300_000
"""The host's `max_frame_bytes` in these tests."""
ZERO_KEY = b"\0\0\0\0"
"""A masking key that leaves the payload as it is on the wire: the bytes a test puts in a
payload (a whole control frame, say) are the bytes the host reads."""


def item(size: int, seed: int) -> bytes:
    return bytes((seed + i) % 251 for i in range(size))


def head(size: int, first: int = 0x82, masked: bool = True) -> bytes:
    """A frame header announcing `size` bytes of payload (zero key when masked)."""
    code, extended = ((size, b"") if size < 126 else (126, size.to_bytes(2, "big"))
                      if size < 65536 else (127, size.to_bytes(8, "big")))
    mask_bit, key = (0x80, ZERO_KEY) if masked else (0, b"")
    return bytes((first, mask_bit | code)) + extended + key


def frame(payload: bytes, first: int = 0x82, masked: bool = True) -> bytes:
    return head(len(payload), first, masked) + payload


PING = frame(b"ping", 0x89)
CLOSE = frame(struct.pack("!H", 1000), 0x88)
BIG = item(20_000, 1)
WITH_CONTROLS = BIG[:10] + PING + CLOSE + BIG[10 + len(PING) + len(CLOSE):]
"""A large item whose payload holds a ping and a close frame right after its header."""

ATTACKS: dict[str, list[bytes]] = {
    "length with the top bit set": [head(1 << 63 | 20_000) + BIG],
    "one byte over the limit": [head(LIMIT + 1) + item(LIMIT + 1, 2)],
    "at the limit": [head(LIMIT) + item(LIMIT, 3)],
    "one byte under the limit": [frame(item(LIMIT - 1, 4))],
    "reserved bit 1": [frame(BIG, 0xC2)],
    "reserved bit 3": [frame(BIG, 0x92)],
    "large text frame": [frame(b'"' + b"x" * 20_000 + b'"', 0x81)],
    "unmasked large frame": [frame(BIG, masked=False)],
    "controls right after the header": [head(len(WITH_CONTROLS)),
                                        WITH_CONTROLS[:10] + PING + CLOSE,
                                        WITH_CONTROLS[10 + len(PING) + len(CLOSE):]],
    "controls in the middle of the payload": [
        head(len(BIG)) + BIG[:9000], PING + CLOSE,
        BIG[9000 + len(PING) + len(CLOSE):]],
    "close right after a large frame": [frame(BIG) + CLOSE],
    "large, fragmented, large": [frame(BIG) + frame(item(9000, 5), 0x02)
                                 + frame(item(9000, 6), 0x80) + frame(item(30_000, 7))],
    "fragmented with a large first fragment": [
        frame(item(9000, 8), 0x02) + frame(item(9000, 9), 0x80) + frame(BIG)],
    "largest length without the top bit": [head((1 << 63) - 1) + BIG],
    "lone large continuation": [frame(BIG, 0x80)],
    "large ping": [frame(BIG, 0x89)],
    "large frame of a reserved opcode": [frame(BIG, 0x83)],
    "large frame, then garbage": [frame(BIG) + b"\xff" * 20],
    "header split after its length": [head(len(BIG))[:4], head(len(BIG))[4:] + BIG],
    "a burst of large and small items": [b"".join(
        frame(item(20_000 if n % 2 else 10, n)) for n in range(120))],
    "one byte per write": [bytes((byte,)) for byte in frame(item(LARGE_FRAME_BYTES, 10))],
}


@pytest.fixture
async def arena(hosts):
    """A host and a member (`bob`) receiving the items of the page attacked from."""
    live = await hosts(HostSettings(max_frame_bytes=LIMIT, realtime=RealtimeLimits(
        send_items_per_s=1e6, send_items_burst=10**6, send_bytes_per_s=1e12,
        send_bytes_burst=10**12)))
    urls = live.share(["mallory", "bob"])
    bob = await joined(urls["bob"])
    yield live, bob
    await bob.peer.close()


@pytest.fixture
def made(monkeypatch) -> list[object]:
    """The parsers the host gives its sockets from now on (`large_frames_for`)."""
    parsers: list[object] = []
    real = http_guard.large_frames_for

    def recorded(ws: web.WebSocketResponse, parser: object) -> object:
        parsers.append(real(ws, parser))  # type: ignore[arg-type]
        return parsers[-1]

    monkeypatch.setattr(http_guard, "large_frames_for", recorded)
    return parsers


async def attacker(live) -> BareSocket:
    page = live.last_pages[0]
    sock = await BareSocket.connect(live.port, f"{page.label}.localhost:{live.port}",
                                    page.token)
    await sock.send_json({"type": "join", "epoch": 1})
    assert (await sock.next_control())["type"] == "joined"
    return sock


async def play(live, bob, writes: list[bytes], marker: bytes) -> tuple[object, list[bytes]]:
    """Send `writes` (one write each) from a new socket of the attacking page; how the socket
    ended (a close code, or "open") and the items `bob` received from it."""
    seen = len(bob.inbox)
    sock = await attacker(live)
    for data in writes:
        sock._writer.write(data)
        await sock._writer.drain()
    ending: object = "open"
    try:
        sock._writer.write(frame(marker))  # refused with the rest if the socket is closing
        await sock._writer.drain()
    except ConnectionError:
        pass
    while True:  # the marker comes back to nobody; a close or silence ends the attack
        try:
            answer = await sock.receive(timeout=2)
        except (TimeoutError, ConnectionError):
            break
        if isinstance(answer, CloseConnection):
            ending = answer.code
            break
    sock.close()
    if ending == "open":
        await eventually(lambda: marker in bob.inbox[seen:])
    else:  # what the closed socket sent before its close went out ahead of this one
        honest = await attacker(live)
        honest._writer.write(frame(marker))
        await honest._writer.drain()
        await eventually(lambda: marker in bob.inbox[seen:])
        honest.close()
    return ending, [got for got in bob.inbox[seen:] if got != marker]


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_an_attack_ends_as_it_does_with_aiohttps_reader_alone(arena, monkeypatch,
                                                                    made, caplog, name):
    live, bob = arena
    caplog.set_level(logging.WARNING)
    fast = await play(live, bob, ATTACKS[name], b"marker one")
    assert made and all(isinstance(parser, LargeFrames) for parser in made)
    monkeypatch.setattr(http_guard, "large_frames_for", lambda ws, parser: parser)
    plain = await play(live, bob, ATTACKS[name], b"marker two")
    assert fast == plain
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [r.getMessage()[:200] for r in problems]


async def test_a_socket_closed_half_way_through_a_large_frame_leaves_nothing(arena, caplog):
    live, bob = arena
    caplog.set_level(logging.WARNING)
    seen = len(bob.inbox)
    sock = await attacker(live)
    sock._writer.write(head(len(BIG)) + BIG[:len(BIG) // 2])
    await sock._writer.drain()
    sock.close()
    honest = await attacker(live)
    honest._writer.write(frame(b"after"))
    await honest._writer.drain()
    await eventually(lambda: b"after" in bob.inbox[seen:])
    assert bob.inbox[seen:] == [b"after"]
    honest.close()
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [r.getMessage()[:200] for r in problems]


async def test_sockets_work_on_aiohttp_whose_set_parser_takes_the_parser_alone(
        arena, monkeypatch):
    """aiohttp before 3.14 calls `set_parser(parser)` and defines it with no callback."""
    live, bob = arena
    original: Callable[..., None] = web.RequestHandler.set_parser

    def set_parser(self: web.RequestHandler, parser: object) -> None:
        original(self, parser)

    monkeypatch.setattr(web.RequestHandler, "set_parser", set_parser)
    sock = await attacker(live)
    sock._writer.write(frame(BIG) + frame(b"small"))
    await sock._writer.drain()
    await eventually(lambda: b"small" in bob.inbox)
    assert bob.inbox[-2:] == [BIG, b"small"]
    sock.close()


async def test_aiohttps_reader_alone_reads_on_an_aiohttp_newer_than_checked(arena, made,
                                                                           monkeypatch):
    live, bob = arena
    monkeypatch.setattr(aiohttp, "__version__", "3.15.0")
    sock = await attacker(live)
    sock._writer.write(frame(BIG) + frame(b"small"))
    await sock._writer.drain()
    await eventually(lambda: b"small" in bob.inbox)
    assert bob.inbox[-2:] == [BIG, b"small"]
    assert made and not any(isinstance(parser, LargeFrames) for parser in made)
    sock.close()
