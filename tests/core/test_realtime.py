"""Unit tests of the realtime rules (no I/O): every R row the core decides."""

from __future__ import annotations

import pytest

from webxdc_rt.brokers.memory import InMemoryBroker
from webxdc_rt.core import wire
from webxdc_rt.core.realtime import (
    AlreadyJoined,
    Connection,
    ItemTooShort,
    NotJoined,
    PayloadTooLarge,
    RealtimeHub,
    RealtimeLimits,
)

STAMP = wire.encode_stamp(1.0)

TOPIC = "rt/chat-a/app-1"
OTHER_TOPIC = "rt/chat-a/app-2"


class Process:
    """A hub with what the I/O shell does around it (broker subscriptions while a member
    is joined, publishing each item, writing to the receivers the hub names), recording
    what each connection would have been sent instead of writing to sockets."""

    def __init__(self, broker: InMemoryBroker | None = None,
                 limits: RealtimeLimits | None = None, node_id: str | None = None) -> None:
        self.broker = broker or InMemoryBroker()
        self.hub = RealtimeHub(limits, node_id)
        self.received: dict[str, list[bytes]] = {}
        self.calls = 0

    def open(self, name: str, topic: str = TOPIC) -> Connection:
        return self.hub.open(topic, name, now=0.0)

    def join(self, conn: Connection) -> None:
        if self.hub.join(conn):
            self.broker.subscribe(conn.topic, self._on_published)

    def leave(self, conn: Connection) -> None:
        if self.hub.leave(conn):
            self.broker.unsubscribe(conn.topic, self._on_published)

    def close(self, conn: Connection) -> None:
        if self.hub.close(conn):
            self.broker.unsubscribe(conn.topic, self._on_published)

    def send(self, conn: Connection, payload: bytes, now: float = 0.0) -> float:
        """Send `payload` stamped, as the hub takes every item."""
        item, wait = self.hub.send(conn, STAMP + payload, now)
        self.broker.publish(conn.topic, item)
        return wait

    def _on_published(self, topic: str, item) -> None:
        self.calls += 1
        for conn in self.hub.receivers(topic, item):
            assert item.stamp == STAMP  # forwarded as it came
            self.received.setdefault(conn.sink, []).append(bytes(item.payload))

    def of(self, name: str) -> list[bytes]:
        return self.received.get(name, [])


@pytest.fixture
def proc() -> Process:
    return Process()


def joined(proc: Process, name: str, topic: str = TOPIC) -> Connection:
    conn = proc.open(name, topic)
    proc.join(conn)
    return conn


def test_sender_does_not_receive_its_own_items_r10(proc):
    alice = joined(proc, "alice")
    joined(proc, "bob")
    proc.send(alice, b"hi", now=0.0)
    assert proc.of("alice") == []
    assert proc.of("bob") == [b"hi"]


def test_every_other_connection_receives_including_same_member_r11(proc):
    alice_tab1, alice_tab2 = joined(proc, "alice-tab1"), joined(proc, "alice-tab2")
    joined(proc, "bob")
    proc.send(alice_tab1, b"x", now=0.0)
    assert proc.of("alice-tab2") == [b"x"]
    assert proc.of("bob") == [b"x"]
    assert proc.of("alice-tab1") == []
    assert proc.calls == 1  # one delivery call: the shell encodes the frame once
    del alice_tab2


def test_open_but_not_joined_receives_nothing(proc):
    alice = joined(proc, "alice")
    proc.open("lurker")
    proc.send(alice, b"x", now=0.0)
    assert proc.of("lurker") == []


def test_late_joiner_gets_nothing_sent_before_r12(proc):
    alice = joined(proc, "alice")
    proc.send(alice, b"before", now=0.0)
    joined(proc, "late")
    proc.send(alice, b"after", now=0.0)
    assert proc.of("late") == [b"after"]


def test_channels_are_isolated_by_topic_r13(proc):
    alice = joined(proc, "alice", TOPIC)
    joined(proc, "other-copy", OTHER_TOPIC)
    joined(proc, "other-chat", "rt/chat-b/app-1")
    proc.send(alice, b"secret", now=0.0)
    assert proc.of("other-copy") == []
    assert proc.of("other-chat") == []


def test_join_twice_is_refused_and_channel_keeps_working_r3(proc):
    alice, bob = joined(proc, "alice"), joined(proc, "bob")
    with pytest.raises(AlreadyJoined):
        proc.join(alice)
    proc.send(alice, b"still", now=0.0)
    assert proc.of("bob") == [b"still"]
    del bob


def test_leave_stops_delivery_and_send_then_rejoin_works_r4_r15(proc):
    alice, bob = joined(proc, "alice"), joined(proc, "bob")
    proc.leave(bob)
    proc.send(alice, b"gone", now=0.0)
    assert proc.of("bob") == []
    with pytest.raises(NotJoined):
        proc.send(bob, b"x", now=0.0)
    with pytest.raises(NotJoined):
        proc.leave(bob)
    proc.join(bob)
    proc.send(alice, b"back", now=0.0)
    assert proc.of("bob") == [b"back"]


def test_send_without_join_is_refused(proc):
    conn = proc.open("alice")
    joined(proc, "bob")
    with pytest.raises(NotJoined):
        proc.send(conn, b"x", now=0.0)
    assert proc.of("bob") == []


def test_payload_size_limit_r8(proc):
    alice = joined(proc, "alice")
    joined(proc, "bob")
    proc.send(alice, b"", now=0.0)
    proc.send(alice, bytes(128_000), now=0.0)
    with pytest.raises(PayloadTooLarge, match="128001 bytes.*128000"):
        proc.send(alice, bytes(128_001), now=0.0)
    assert [len(item) for item in proc.of("bob")] == [0, 128_000]


def test_the_limit_is_on_the_payload_after_the_stamp_and_an_item_needs_a_whole_stamp(proc):
    alice = joined(proc, "alice")
    joined(proc, "bob")
    item, _ = proc.hub.send(alice, STAMP + bytes(128_000), 0.0)
    assert item.stamp == STAMP and len(item.payload) == 128_000
    with pytest.raises(ItemTooShort, match="7 bytes.*8-byte stamp"):
        proc.hub.send(alice, bytes(7), 0.0)


def test_per_sender_order_and_no_duplicates_r16(proc):
    alice, bob = joined(proc, "alice"), joined(proc, "bob")
    carol = joined(proc, "carol")
    for i in range(1000):
        proc.send(alice, b"a%d" % i, now=i / 1000)
        proc.send(bob, b"b%d" % i, now=i / 1000)
    from_alice = [x for x in proc.of("carol") if x.startswith(b"a")]
    from_bob = [x for x in proc.of("carol") if x.startswith(b"b")]
    assert from_alice == [b"a%d" % i for i in range(1000)]
    assert from_bob == [b"b%d" % i for i in range(1000)]
    del carol


def test_closed_connection_counts_as_left_r17(proc):
    alice, bob = joined(proc, "alice"), joined(proc, "bob")
    joined(proc, "carol")
    proc.close(bob)
    proc.close(bob)  # idempotent
    proc.send(alice, b"x", now=0.0)
    assert proc.of("bob") == []
    assert proc.of("carol") == [b"x"]
    assert proc.hub.joined_count(TOPIC) == 2
    assert proc.hub.connection_count() == 2


def test_closed_connection_cannot_rejoin(proc):
    conn = joined(proc, "alice")
    proc.close(conn)
    with pytest.raises(Exception, match="closed"):
        proc.join(conn)


def test_broker_subscription_follows_local_membership():
    proc = Process()
    alice, bob = joined(proc, "alice"), joined(proc, "bob")
    assert proc.broker.topic_count() == 1
    proc.leave(alice)
    assert proc.broker.topic_count() == 1
    proc.close(bob)
    assert proc.broker.topic_count() == 0


def test_two_processes_sharing_a_broker_fan_out_to_each_other():
    broker = InMemoryBroker()
    first = Process(broker, node_id="node-1")
    second = Process(broker, node_id="node-2")
    alice = joined(first, "alice")
    joined(first, "alice-tab2")
    # Same connection id (1) as alice, but in another process: must still receive.
    bob = joined(second, "bob")
    assert bob.id == alice.id
    first.send(alice, b"x")
    assert first.of("alice") == []
    assert first.of("alice-tab2") == [b"x"]
    assert second.of("bob") == [b"x"]


def test_receivers_are_every_joined_connection_but_the_sender_r10_r11():
    hub = RealtimeHub(node_id="here")
    alice, bob = hub.open(TOPIC, "a", 0.0), hub.open(TOPIC, "b", 0.0)
    lurker = hub.open(TOPIC, "c", 0.0)
    assert hub.join(alice) and not hub.join(bob)  # the first member starts the channel
    item, _ = hub.send(alice, STAMP + b"x", 0.0)
    assert hub.receivers(TOPIC, item) == (bob,)
    assert set(hub.receivers(TOPIC, item._replace(origin="elsewhere"))) == {alice, bob}
    hub.join(lurker)
    assert set(hub.receivers(TOPIC, item)) == {bob, lurker}  # a join is seen at once
    assert not hub.leave(bob) and not hub.close(lurker) and hub.leave(alice)
    assert hub.receivers(TOPIC, item) == ()


def test_send_rate_is_enforced_by_a_wait():
    limits = RealtimeLimits(send_items_per_s=10, send_items_burst=5)
    proc = Process(limits=limits)
    alice = joined(proc, "alice")
    waits = [proc.send(alice, b"x") for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(0.1)
    assert waits[6] == pytest.approx(0.2)
    assert proc.send(alice, b"x", now=10.0) == 0.0  # budget refilled


def test_byte_rate_is_enforced_by_a_wait():
    limits = RealtimeLimits(send_bytes_per_s=256_000, send_bytes_burst=256_000)
    proc = Process(limits=limits)
    alice = joined(proc, "alice")
    assert proc.send(alice, bytes(128_000)) == 0.0
    assert proc.send(alice, bytes(128_000)) == 0.0
    assert proc.send(alice, bytes(128_000)) == pytest.approx(0.5)


@pytest.mark.parametrize("field, value", [
    ("max_payload_bytes", 0), ("send_items_per_s", 0), ("send_items_burst", 0),
    ("send_bytes_per_s", -1), ("send_bytes_burst", 1000),
])
def test_limits_reject_nonsense(field, value):
    with pytest.raises(ValueError, match=field):
        RealtimeLimits(**{field: value})
