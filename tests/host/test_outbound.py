"""The way out to one connection: gathering per loop turn, order with control frames, the
bound for what is never dropped, and realtime items that wait for a full socket."""

from __future__ import annotations

import asyncio

from webxdc_rt.core import wire
from webxdc_rt.core.delivery import DropCount
from webxdc_rt.core.fanout import Published
from webxdc_rt.core.limits import DeliveryLimits
from webxdc_rt.host.outbound import Outbound, WriteBatcher


class RecordingTransport:
    """Stands in for an asyncio transport; records each call that writes."""

    def __init__(self, unsent: int = 0) -> None:
        self.calls: list[list[bytes]] = []
        self.unsent = unsent
        self.keeps = False
        """Whether what is written stays unsent (the kernel takes none of it), or is taken."""
        self.aborted = False
        self.high_water: int | None = None

    def set_write_buffer_limits(self, high: int) -> None:
        self.high_water = high

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def writelines(self, parts) -> None:
        self.calls.append(list(parts))
        if self.keeps:
            self.unsent += sum(map(len, self.calls[-1]))

    def abort(self) -> None:
        self.aborted = True


class RecordingSocket:
    """Stands in for the aiohttp WebSocket: text frames land on the same transport."""

    def __init__(self, transport: RecordingTransport) -> None:
        self.transport = transport
        self.closed = False
        self.closed_with: tuple[int, bytes] | None = None

    async def send_str(self, text: str) -> None:
        self.transport.writelines([text.encode()])

    async def close(self, code: int, message: bytes) -> None:
        self.closed = True  # as aiohttp: set before the close frame is written
        self.closed_with = (code, message)
        self.transport.writelines([b"close"])


class GatedWriter:
    """Stands in for aiohttp's stream writer: `drain` waits while the test holds the gate
    shut, as it waits while the transport is over its high-water mark."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()

    async def drain(self) -> None:
        await self.gate.wait()


def outbound(limit: int = 1000, unsent: int = 0, delivery: DeliveryLimits | None = None,
             shared: tuple[DropCount, ...] = (), batcher: WriteBatcher | None = None
             ) -> tuple[Outbound, RecordingTransport, GatedWriter]:
    transport = RecordingTransport(unsent)
    writer = GatedWriter()
    sink = Outbound(RecordingSocket(transport), transport, limit, 0.1,  # type: ignore[arg-type]
                    batcher or WriteBatcher(asyncio.get_running_loop()),
                    writer,  # type: ignore[arg-type]
                    delivery or DeliveryLimits(socket_buffer_bytes=100), "test", shared)
    return sink, transport, writer


def item(sender: int, payload: bytes) -> Published:
    return Published("here", sender, wire.encode_stamp(0.0), payload)


async def test_frames_of_one_turn_go_out_in_one_call():
    sink, transport, _ = outbound()
    sink.write((b"a",), 1)
    sink.write((b"h", b"b"), 2)
    assert transport.calls == []
    await asyncio.sleep(0)
    assert transport.calls == [[b"a", b"h", b"b"]]
    sink.write((b"c",), 1)
    await asyncio.sleep(0)
    assert transport.calls[1:] == [[b"c"]]


async def test_a_control_frame_follows_what_was_gathered_before_it():
    sink, transport, _ = outbound()
    sink.write((b"item",), 4)
    await sink.send_text("joined")
    await asyncio.sleep(0)
    assert transport.calls == [[b"item"], [b"joined"]]


async def test_over_the_limit_the_receiver_is_cut_off_and_nothing_more_is_written():
    cut: list[bool] = []
    sink, transport, _ = outbound(limit=10, unsent=6)
    sink.on_cut = lambda: cut.append(True)
    sink.write((b"1234",), 4)          # 6 unsent + 4 = 10: still within the limit
    sink.write((b"5",), 1)             # 11: over
    assert cut == [True] and sink.cut
    sink.write((b"6",), 1)
    await asyncio.sleep(0.2)           # the close is given its grace, then the link dropped
    assert transport.calls == [[b"close"]]  # the close frame, and no data frame
    assert sink.ws.closed_with[0] == 1008 and b"too slow" in sink.ws.closed_with[1]
    assert transport.aborted


async def test_closing_flushes_first_and_nothing_follows_the_close_frame():
    sink, transport, _ = outbound()
    sink.write((b"before",), 6)
    await sink.close(1001, "bye")
    sink.write((b"after",), 5)
    await asyncio.sleep(0)
    assert transport.calls == [[b"before"], [b"close"]]


async def test_frames_gathered_when_someone_else_closes_are_not_written():
    sink, transport, _ = outbound()
    sink.write((b"late",), 4)
    await sink.ws.close(code=1009, message=b"")  # e.g. aiohttp closing on an oversize frame
    await asyncio.sleep(0)
    assert transport.calls == [[b"close"]]


async def test_the_last_item_of_a_read_is_written_at_once_behind_what_was_gathered():
    """While the last item of a read is handed over (`direct`), a connection with nothing
    gathered is written to at once; one with frames gathered from the same read gets the
    item behind them, written together on release; a closed one gets nothing."""
    batcher = WriteBatcher(asyncio.get_running_loop())
    (idle, idle_transport, _), (busy, busy_transport, _), (gone, gone_transport, _) = [
        outbound(batcher=batcher) for _ in range(3)]
    batcher.hold()
    busy.deliver((b"first",), 5, item(1, b"first"))
    batcher.direct = True
    await gone.ws.close(code=1000, message=b"")
    for sink in (idle, busy, gone):
        sink.deliver((b"last",), 4, item(1, b"last"))
    batcher.direct = False
    assert idle_transport.calls == [[b"last"]] and busy_transport.calls == []
    batcher.release()
    assert busy_transport.calls == [[b"first", b"last"]]
    assert gone_transport.calls == [[b"close"]]
    await asyncio.sleep(0)
    assert idle_transport.calls == [[b"last"]]


async def test_the_transport_pauses_its_writer_above_the_socket_room():
    _, transport, _ = outbound(delivery=DeliveryLimits(socket_buffer_bytes=4096))
    assert transport.high_water == 4096


async def test_realtime_items_go_out_with_the_turn_while_the_socket_has_room():
    sink, transport, _ = outbound()
    sink.deliver((b"a" * 40,), 40, item(1, b"a"))
    sink.write((b"u",), 1)
    sink.deliver((b"b" * 40,), 40, item(1, b"b"))
    await asyncio.sleep(0)
    assert transport.calls == [[b"a" * 40, b"u", b"b" * 40]]


async def test_gathered_frames_are_written_when_the_next_item_would_not_fit_beside_them():
    """Items of one read that would fill the socket's room together: what was gathered is
    written at once, and the next item, which fits once the socket took it, does not
    wait."""
    batcher = WriteBatcher(asyncio.get_running_loop())
    sink, transport, _ = outbound(batcher=batcher)
    batcher.hold()
    sink.deliver((b"1" * 60,), 60, item(1, b"1"))
    sink.deliver((b"2" * 60,), 60, item(1, b"2"))    # 60 gathered + 60 > 100
    assert transport.calls == [[b"1" * 60]]
    assert not sink.items
    batcher.release()
    assert transport.calls == [[b"1" * 60], [b"2" * 60]]


async def test_an_item_waits_when_the_socket_keeps_what_was_gathered():
    batcher = WriteBatcher(asyncio.get_running_loop())
    sink, transport, writer = outbound(batcher=batcher)
    transport.keeps = True
    writer.gate.clear()                              # the socket takes nothing for now
    batcher.hold()
    sink.deliver((b"1" * 60,), 60, item(1, b"1"))
    sink.deliver((b"2" * 60,), 60, item(1, b"2"))    # still 60 unsent + 60 > 100: waits
    batcher.release()
    assert transport.calls == [[b"1" * 60]]
    assert len(sink.items) == 1
    transport.unsent = 0
    writer.gate.set()
    await eventually_written(transport, 2)
    assert transport.calls[1] == [b"2" * 60]
    assert sink.items.counts.items == 0


async def test_items_wait_while_the_socket_is_full_and_follow_when_it_drains():
    sink, transport, writer = outbound()
    transport.unsent = 90
    writer.gate.clear()                              # the socket is over its room
    sink.deliver((b"1" * 20,), 20, item(1, b"1"))    # 90 + 20 > 100: waits
    sink.deliver((b"2",), 1, item(1, b"2"))          # something waits: waits behind it
    sink.write((b"update",), 6)                      # never held back
    await asyncio.sleep(0)
    assert transport.calls == [[b"update"]]
    assert len(sink.items) == 2
    transport.unsent = 0
    writer.gate.set()
    await eventually_written(transport, 2)
    assert transport.calls[1] == [b"1" * 20, b"2"]
    assert sink.items.counts.items == 0


async def test_items_that_went_stale_while_waiting_are_dropped_and_counted():
    channel = DropCount()
    # The new item must reach the transport within the bound even if this process is held
    # up in between (a long garbage collection of a big test session on a busy machine).
    bound_s = 2.0
    sink, transport, writer = outbound(
        delivery=DeliveryLimits(socket_buffer_bytes=100, max_item_age_s=bound_s),
        shared=(channel,))
    transport.unsent = 200
    writer.gate.clear()
    sink.deliver((b"old",), 3, item(1, b"old"))
    await asyncio.sleep(bound_s + 0.1)                # longer than the age bound
    sink.deliver((b"new",), 3, item(1, b"new"))
    transport.unsent = 0
    writer.gate.set()
    await eventually_written(transport, 1)
    assert transport.calls == [[b"new"]]
    assert sink.items.counts.stale == 1 and channel.stale == 1


async def test_leaving_discards_what_waits():
    sink, transport, writer = outbound()
    transport.unsent = 200
    writer.gate.clear()
    sink.deliver((b"x",), 1, item(1, b"x"))
    sink.discard_items()
    transport.unsent = 0
    writer.gate.set()
    sink.write((b"joined",), 6)
    await eventually_written(transport, 1)
    await asyncio.sleep(0)
    assert transport.calls == [[b"joined"]]
    assert sink.items.counts.items == 0


async def test_realtime_items_never_cut_a_receiver_off():
    sink, transport, writer = outbound(limit=10)
    transport.unsent = 10_000
    writer.gate.clear()
    for i in range(1000):
        sink.deliver((b"%04d" % i,), 4, item(1, b""))
    assert not sink.cut and not sink.closing
    assert sink.items.waiting_bytes <= DeliveryLimits().max_waiting_bytes


async def eventually_written(transport: RecordingTransport, calls: int) -> None:
    for _ in range(100):
        if len(transport.calls) >= calls:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"expected {calls} writes, got {transport.calls}")
