"""One realtime item fanned out to the receivers of a channel (`Sockets.on_published`): each
of its two frames, with and without its stamp, is encoded once for all the receivers that
take it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from webxdc_rt.brokers.memory import InMemoryBroker
from webxdc_rt.core import wire
from webxdc_rt.core.fanout import Published
from webxdc_rt.core.frames import encode_binary_frame
from webxdc_rt.core.realtime import RealtimeHub
from webxdc_rt.core.stats import HostStats
from webxdc_rt.host.settings import HostSettings
from webxdc_rt.host.sockets import Sockets

if TYPE_CHECKING:
    from webxdc_rt.core.frames import Frame


class Sink:
    """Keeps what it is handed."""

    def __init__(self) -> None:
        self.frames: list[tuple[Frame, int]] = []

    def deliver(self, parts: Frame, size: int, item: Published) -> None:
        self.frames.append((parts, size))


def fan_out(payload_size: int, stamped: list[bool], sender_stamps: bool = True
            ) -> tuple[list[Sink], bytes, HostStats]:
    """One item of `payload_size` bytes from a sender (that stamps its items, or whose
    items the host stamps) to receivers joined stamped or not."""
    hub, stats = RealtimeHub(), HostStats()
    sockets = Sockets(HostSettings(), hub, InMemoryBroker(hub.node_id), None,  # type: ignore[arg-type]
                      stats)
    sinks = [Sink() for _ in range(len(stamped) + 1)]
    conns = [hub.open("topic", sink, 0.0) for sink in sinks]
    for conn, is_stamped in zip(conns, [True, *stamped], strict=True):
        conn.stamped = is_stamped
        hub.join(conn)
    item_bytes = wire.encode_stamp(1.0) + bytes(range(256)) * (payload_size // 256)
    if sender_stamps:
        item, _ = hub.send(conns[0], item_bytes, 0.0)
    else:
        item, _ = hub.send(conns[0], item_bytes[wire.ITEM_HEADER_BYTES:], 0.0,
                           item_bytes[:wire.ITEM_HEADER_BYTES])
    sockets.on_published("topic", item)
    return sinks[1:], item_bytes, stats


@pytest.mark.parametrize("sender_stamps", [True, False])
def test_receivers_without_stamps_share_one_frame_of_the_payload_alone(sender_stamps):
    for size in (0, 4096, 128_000):
        sinks, item_bytes, stats = fan_out(size, [False, True, False, False, True],
                                           sender_stamps)
        bare = [sinks[i].frames for i in (0, 2, 3)]
        stamped = [sinks[i].frames for i in (1, 4)]
        assert all(len(frames) == 1 for frames in bare + stamped)
        assert bare[0][0][0] is bare[1][0][0] is bare[2][0][0]
        assert stamped[0][0][0] is stamped[1][0][0]
        parts, frame_size = bare[0][0]
        assert b"".join(parts) == encode_binary_frame(item_bytes[wire.ITEM_HEADER_BYTES:])
        assert frame_size == len(b"".join(parts))
        parts, frame_size = stamped[0][0]
        assert b"".join(parts) == encode_binary_frame(item_bytes)
        assert frame_size == len(b"".join(parts))
        assert stats.realtime_items_out == 5
        assert stats.realtime_bytes_out == sum(s.frames[0][1] for s in sinks)


def test_a_large_payload_is_written_to_every_receiver_without_a_copy():
    """The stamp is a piece of its own in the stamped frame: the payload the host stamped
    is written as it was read, to stamped and bare receivers alike."""
    hub = RealtimeHub()
    sockets = Sockets(HostSettings(), hub, InMemoryBroker(hub.node_id), None,  # type: ignore[arg-type]
                      HostStats())
    sinks = [Sink() for _ in range(3)]
    conns = [hub.open("topic", sink, 0.0) for sink in sinks]
    for conn, is_stamped in zip(conns, [False, True, False], strict=True):
        conn.stamped = is_stamped
        hub.join(conn)
    payload = bytes(128_000)
    item, _ = hub.send(conns[0], payload, 0.0, wire.encode_stamp(1.0))
    sockets.on_published("topic", item)
    (stamped_parts, _), = sinks[1].frames
    (bare_parts, _), = sinks[2].frames
    assert stamped_parts[-1] is payload and bare_parts[-1] is payload
    assert stamped_parts[0].endswith(wire.encode_stamp(1.0))
