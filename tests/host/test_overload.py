"""Overload over real sockets: a receiver that does not keep up loses realtime items, never
its link, its status updates, or its fair share of the other members' items."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import pytest
from peers import BareSocket, bare_socket, eventually, joined, stalled_listener
from wsproto.events import CloseConnection

from webxdc_rt.client import connect
from webxdc_rt.core import wire
from webxdc_rt.core.limits import DeliveryLimits, RealtimeLimits, UpdateLimits
from webxdc_rt.host.app import HostSettings

MiB = 1024 * 1024
UNLIMITED = RealtimeLimits(send_items_per_s=1e6, send_items_burst=1_000_000,
                           send_bytes_per_s=1e10, send_bytes_burst=10_000_000_000)
"""Send limits that do not bind, so that only the receiver's pace decides."""
_STAMP = struct.Struct("!Bid")  # sender mark, sequence number, time.monotonic() at send


def stamped(mark: bytes, seq: int, size: int) -> bytes:
    head = _STAMP.pack(mark[0], seq, time.monotonic())
    return head + bytes(size - len(head))


class HeldUp:
    """How long this process's event loop was held up beyond what the test itself asks of
    it (another process on the CPU, a long garbage collection): the sum of the delays of a
    ticker, counted past `TOLERANCE_S` each. An item's age at receipt includes any such
    delay after the host sent it, which no host can foresee."""

    TICK_S = 0.005
    TOLERANCE_S = 0.05
    """Lateness of a tick that the test's own load explains (the flooder's bursts)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.TICK_S
            await asyncio.sleep(self.TICK_S)
            self.seconds += max(0.0, loop.time() - due - self.TOLERANCE_S)

    def stop(self) -> None:
        self._task.cancel()


class SlowReceiver:
    """A bare socket that takes one message per `pause` seconds, as a page whose app is
    slow does; it records each realtime item's sender, number and age at receipt, and
    reports what it read after each item when `reports` (as the bridge does, less often)."""

    def __init__(self, sock: BareSocket, pause: float, reports: bool = True) -> None:
        self.sock = sock
        self.pause = pause
        self.reports = reports
        self.read = 0
        self.items: list[tuple[bytes, int, float]] = []
        self.updates: list[dict] = []
        self.closed: CloseConnection | None = None
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.sock.receive(timeout=30)
            now = time.monotonic()
            if isinstance(message, CloseConnection):
                self.closed = message
                return
            if isinstance(message, bytes):
                mark, seq, sent = _STAMP.unpack_from(message)
                self.items.append((bytes([mark]), seq, now - sent))
                self.read += wire.frame_bytes(len(message))
                if self.reports:
                    await self.sock.send_json({"type": "received", "bytes": self.read})
            else:
                control = json.loads(message)
                if control["type"] == "update":
                    self.updates.append(control["update"])
            await asyncio.sleep(self.pause)  # the app's work on each message

    def of(self, mark: bytes) -> list[int]:
        return [seq for sender, seq, _ in self.items if sender == mark]

    async def stop(self) -> None:
        self._task.cancel()
        self.sock.close()


async def test_a_slow_receiver_keeps_its_link_its_updates_and_the_honest_members_items(hosts):
    bound = 2.0
    live = await hosts(HostSettings(realtime=UNLIMITED,
                                    delivery=DeliveryLimits(max_item_age_s=bound)))
    urls = live.share(["flood", "honest", "slow"])
    flood, honest = await joined(urls["flood"]), await joined(urls["honest"])
    sock = await bare_socket(live.port, live.last_pages[2])
    await sock.send_json({"type": "received", "bytes": 0})   # it reports, from the start
    await sock.send_json({"type": "update-listen", "listen": 1, "serial": 0})
    await sock.send_json({"type": "join", "epoch": 1})
    topic = live.last_pages[0].app.topic
    await live.until_joined(3, topic)
    slow = SlowReceiver(sock, pause=0.002)   # at most ~500 messages/s
    held_up = HeldUp()

    async def flooding() -> None:
        # 8 MB/s: a dozen times what the slow receiver takes, in bursts of 100 items.
        sent = 0
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            for _ in range(100):
                flood.channel.send(stamped(b"F", sent, 4000))
                sent += 1
            await flood.channel.drain()
            await asyncio.sleep(0.05)          # the flooder's own pace

    async def honestly() -> None:
        for seq in range(60):                 # 20 items/s for 3 s, and an update each 6th
            honest.channel.send(stamped(b"H", seq, 100))
            if seq % 6 == 0:
                honest.peer.send_update({"payload": seq})
            await asyncio.sleep(0.05)          # the member's own pace

    await asyncio.gather(flooding(), honestly())
    await eventually(lambda: len(slow.updates) == 10, timeout=30)
    await eventually(lambda: 59 in slow.of(b"H"), timeout=30)

    assert slow.closed is None and live.host.hub.joined_count(topic) == 3
    honest_seen = slow.of(b"H")
    assert honest_seen == sorted(honest_seen) and len(honest_seen) >= 54   # 90%
    flood_seen = slow.of(b"F")
    assert flood_seen == sorted(set(flood_seen))                            # R16
    oldest = max(age for _, _, age in slow.items)
    held_up.stop()
    assert oldest <= bound + held_up.seconds, (oldest, held_up.seconds)
    assert [u["payload"] for u in slow.updates] == list(range(0, 60, 6))
    # Once nothing waits for it and it read all it was sent, every flood item it did not
    # get was dropped and counted, for it and for its channel.
    slow_label = live.last_pages[2].label

    def slow_stats():
        (stats,) = [s for s in live.host.connection_stats() if s.page == slow_label]
        return stats

    await eventually(lambda: slow_stats().waiting_bytes == 0
                     and slow_stats().in_flight_bytes == 0, timeout=30)
    sent = flood.peer.stats.items_sent + honest.peer.stats.items_sent
    assert slow_stats().dropped.items == sent - len(slow.items)
    everyone = sum(s.dropped.items for s in live.host.connection_stats())
    assert live.host.channel_drops[topic].items == live.host.stats.drops.items == everyone
    await slow.stop()
    await flood.peer.close()
    await honest.peer.close()


async def test_a_receiver_that_stops_reading_keeps_its_link_and_loses_only_realtime_items(hosts):
    live = await hosts(HostSettings(max_outbound_bytes=1 * MiB, realtime=UNLIMITED))
    urls = live.share(["alice", "bob", "stalled"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    stalled_page = live.last_pages[2]
    sock = await bare_socket(live.port, stalled_page)   # it never reports what it read
    await sock.send_json({"type": "join", "epoch": 1})
    await sock.next_control()
    # From here the socket is not read from: the kernel's buffers fill, then the host's.
    item = bytes(100_000)
    for i in range(400):  # 40 MB: far beyond socket buffers and every host bound
        alice.channel.send(item[:-4] + b"%04d" % i)
        if i % 10 == 9:   # in bursts of 1 MB, each once bob has the one before
            await eventually(lambda sent=i + 1: len(bob.inbox) == sent, timeout=20)
    assert [x[-4:] for x in bob.inbox] == [b"%04d" % i for i in range(400)]
    topic = stalled_page.app.topic
    await eventually(lambda: live.host.channel_drops.get(topic) is not None
                     and live.host.channel_drops[topic].items > 0)
    assert live.host.hub.joined_count(topic) == 3            # still joined: not cut off
    # It reads again: what its buffers held, in order, and then what is sent now.
    alice.channel.send(b"after")
    got: list[bytes] = []
    while not got or got[-1] != b"after":
        message = await sock.receive(timeout=10)
        assert not isinstance(message, CloseConnection), message
        if isinstance(message, bytes):
            got.append(message)
    numbers = [int(x[-4:]) for x in got[:-1]]
    assert numbers == sorted(set(numbers)) and len(numbers) < 400
    sock.close()
    await alice.peer.close()
    await bob.peer.close()


async def test_status_updates_are_never_dropped_and_a_page_that_cannot_take_them_is_cut_off(
        hosts):
    # A long grace: the close frame waits behind what the socket holds until the test
    # reads again, after all the updates were sent.
    live = await hosts(HostSettings(max_outbound_bytes=256 * 1024, close_grace_s=60,
                                    updates=UpdateLimits(burst=100)))
    urls = live.share(["alice", "stalled"])
    alice = await connect(urls["alice"])
    sock = await stalled_listener(urls["stalled"])
    await sock.next_control()                     # the (empty) backlog is done
    topic = live.last_pages[0].app.topic
    big = "x" * 100_000
    for n in range(60):                           # 6 MB of updates it never reads
        alice.send_update({"payload": big, "info": str(n)})
        await alice.drain()
    message = await sock.receive(timeout=10)
    while not isinstance(message, CloseConnection):
        message = await sock.receive(timeout=10)
    assert message.code == 1008 and "too slow" in message.reason
    assert live.host.channel_drops[topic].items == 0     # no realtime item was involved
    sock.close()
    await alice.close()


async def test_a_socket_that_takes_nothing_is_cut_off_and_frees_its_pages_backlog_slots(hosts):
    # A heartbeat that would not end the stalled sockets within the test: the stall
    # cutoff must.
    live = await hosts(HostSettings(
        heartbeat_s=600, updates=UpdateLimits(burst=200),
        delivery=DeliveryLimits(stall_timeout_s=0.5, socket_send_buffer_bytes=64 * 1024)))
    urls = live.share(["alice", "mallory"])
    writer = await connect(urls["alice"])
    seen: list[dict] = []
    await writer.set_update_listener(seen.append)
    for n in range(150):  # 18 MB of backlog: beyond any socket buffer on both ends
        writer.send_update({"payload": "x" * 120_000, "info": str(n)})
        await writer.drain()
    await eventually(lambda: len(seen) == 150, timeout=30)
    # Two stalled tabs of mallory's hold her page's two backlog slots ...
    stalled = [await stalled_listener(urls["mallory"]) for _ in range(2)]
    try:
        # ... until they are cut off for taking nothing; then her new tab gets its backlog.
        late: list[dict] = []
        tab = await connect(urls["mallory"])
        await asyncio.wait_for(tab.set_update_listener(late.append), 20)
        assert len(late) == 150
        for sock in stalled:
            with pytest.raises(ConnectionError):
                while True:  # what the kernel held, then the end of the link
                    await sock.receive(timeout=10)
        await tab.close()
    finally:
        for sock in stalled:
            sock.close()
    await writer.close()
