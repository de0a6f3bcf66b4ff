"""One realtime item fanned out to the receivers of a channel (`Sockets.on_published`): each
of its two frames, with and without its stamp, is encoded once for all the receivers that
take it."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def fan_out(payload_size: int, stamped: list[bool]) -> tuple[list[Sink], bytes, HostStats]:
    """One item of `payload_size` bytes from a sender to receivers joined stamped or not."""
    hub, stats = RealtimeHub(), HostStats()
    sockets = Sockets(HostSettings(), hub, InMemoryBroker(hub.node_id), None,  # type: ignore[arg-type]
                      stats)
    sinks = [Sink() for _ in range(len(stamped) + 1)]
    conns = [hub.open("topic", sink, 0.0) for sink in sinks]
    for conn, is_stamped in zip(conns, [True, *stamped], strict=True):
        conn.stamped = is_stamped
        hub.join(conn)
    item_bytes = wire.encode_stamp(1.0) + bytes(range(256)) * (payload_size // 256)
    item, _ = hub.send(conns[0], item_bytes, 0.0)
    sockets.on_published("topic", item)
    return sinks[1:], item_bytes, stats


def test_receivers_without_stamps_share_one_frame_of_the_payload_alone():
    for size in (0, 4096, 128_000):
        sinks, item_bytes, stats = fan_out(size, [False, True, False, False, True])
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
