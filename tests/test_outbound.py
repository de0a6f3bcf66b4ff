"""The way out to one connection: gathering per loop turn, order with control frames, bound."""

from __future__ import annotations

import asyncio

from webxdc_rt.outbound import Outbound, WriteBatcher


class RecordingTransport:
    """Stands in for an asyncio transport; records each call that writes."""

    def __init__(self, unsent: int = 0) -> None:
        self.calls: list[list[bytes]] = []
        self.unsent = unsent
        self.aborted = False

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def writelines(self, parts) -> None:
        self.calls.append(list(parts))

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


def outbound(limit: int = 1000, unsent: int = 0) -> tuple[Outbound, RecordingTransport]:
    transport = RecordingTransport(unsent)
    sink = Outbound(RecordingSocket(transport), transport, limit, 0.1,  # type: ignore[arg-type]
                    WriteBatcher(asyncio.get_running_loop()))
    return sink, transport


async def test_frames_of_one_turn_go_out_in_one_call():
    sink, transport = outbound()
    sink.write((b"a",), 1)
    sink.write((b"h", b"b"), 2)
    assert transport.calls == []
    await asyncio.sleep(0)
    assert transport.calls == [[b"a", b"h", b"b"]]
    sink.write((b"c",), 1)
    await asyncio.sleep(0)
    assert transport.calls[1:] == [[b"c"]]


async def test_a_control_frame_follows_what_was_gathered_before_it():
    sink, transport = outbound()
    sink.write((b"item",), 4)
    await sink.send_text("joined")
    await asyncio.sleep(0)
    assert transport.calls == [[b"item"], [b"joined"]]


async def test_over_the_limit_the_receiver_is_cut_off_and_nothing_more_is_written():
    cut: list[bool] = []
    sink, transport = outbound(limit=10, unsent=6)
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
    sink, transport = outbound()
    sink.write((b"before",), 6)
    await sink.close(1001, "bye")
    sink.write((b"after",), 5)
    await asyncio.sleep(0)
    assert transport.calls == [[b"before"], [b"close"]]


async def test_frames_gathered_when_someone_else_closes_are_not_written():
    sink, transport = outbound()
    sink.write((b"late",), 4)
    await sink.ws.close(code=1009, message=b"")  # e.g. aiohttp closing on an oversize frame
    await asyncio.sleep(0)
    assert transport.calls == [[b"close"]]
