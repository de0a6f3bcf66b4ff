"""Unit tests of the realtime rules (no I/O): every R row the core decides."""

from __future__ import annotations

import pytest

from webxdc_rt.broker import InMemoryBroker
from webxdc_rt.realtime import (
    AlreadyJoined,
    Connection,
    NotJoined,
    PayloadTooLarge,
    RealtimeHub,
    RealtimeLimits,
)

TOPIC = "rt/chat-a/app-1"
OTHER_TOPIC = "rt/chat-a/app-2"


class Recorder:
    """A Deliver callback that records what each connection would have been sent."""

    def __init__(self) -> None:
        self.received: dict[str, list[bytes]] = {}
        self.calls = 0

    def __call__(self, members, payload: bytes, sender) -> None:
        self.calls += 1
        for conn in members:
            if conn is not sender:
                self.received.setdefault(conn.sink, []).append(payload)

    def of(self, name: str) -> list[bytes]:
        return self.received.get(name, [])


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def hub(recorder: Recorder) -> RealtimeHub:
    return RealtimeHub(InMemoryBroker(), recorder)


def joined(hub: RealtimeHub, name: str, topic: str = TOPIC) -> Connection:
    conn = hub.open(topic, name, now=0.0)
    hub.join(conn)
    return conn


def test_sender_does_not_receive_its_own_items_r10(hub, recorder):
    alice = joined(hub, "alice")
    joined(hub, "bob")
    hub.send(alice, b"hi", now=0.0)
    assert recorder.of("alice") == []
    assert recorder.of("bob") == [b"hi"]


def test_every_other_connection_receives_including_same_member_r11(hub, recorder):
    alice_tab1, alice_tab2 = joined(hub, "alice-tab1"), joined(hub, "alice-tab2")
    joined(hub, "bob")
    hub.send(alice_tab1, b"x", now=0.0)
    assert recorder.of("alice-tab2") == [b"x"]
    assert recorder.of("bob") == [b"x"]
    assert recorder.of("alice-tab1") == []
    assert recorder.calls == 1  # one delivery call: the shell encodes the frame once
    del alice_tab2


def test_open_but_not_joined_receives_nothing(hub, recorder):
    alice = joined(hub, "alice")
    hub.open(TOPIC, "lurker", now=0.0)
    hub.send(alice, b"x", now=0.0)
    assert recorder.of("lurker") == []


def test_late_joiner_gets_nothing_sent_before_r12(hub, recorder):
    alice = joined(hub, "alice")
    hub.send(alice, b"before", now=0.0)
    joined(hub, "late")
    hub.send(alice, b"after", now=0.0)
    assert recorder.of("late") == [b"after"]


def test_channels_are_isolated_by_topic_r13(hub, recorder):
    alice = joined(hub, "alice", TOPIC)
    joined(hub, "other-copy", OTHER_TOPIC)
    joined(hub, "other-chat", "rt/chat-b/app-1")
    hub.send(alice, b"secret", now=0.0)
    assert recorder.of("other-copy") == []
    assert recorder.of("other-chat") == []


def test_join_twice_is_refused_and_channel_keeps_working_r3(hub, recorder):
    alice, bob = joined(hub, "alice"), joined(hub, "bob")
    with pytest.raises(AlreadyJoined):
        hub.join(alice)
    hub.send(alice, b"still", now=0.0)
    assert recorder.of("bob") == [b"still"]
    del bob


def test_leave_stops_delivery_and_send_then_rejoin_works_r4_r15(hub, recorder):
    alice, bob = joined(hub, "alice"), joined(hub, "bob")
    hub.leave(bob)
    hub.send(alice, b"gone", now=0.0)
    assert recorder.of("bob") == []
    with pytest.raises(NotJoined):
        hub.send(bob, b"x", now=0.0)
    with pytest.raises(NotJoined):
        hub.leave(bob)
    hub.join(bob)
    hub.send(alice, b"back", now=0.0)
    assert recorder.of("bob") == [b"back"]


def test_send_without_join_is_refused(hub, recorder):
    conn = hub.open(TOPIC, "alice", now=0.0)
    joined(hub, "bob")
    with pytest.raises(NotJoined):
        hub.send(conn, b"x", now=0.0)
    assert recorder.of("bob") == []


def test_payload_size_limit_r8(hub, recorder):
    alice = joined(hub, "alice")
    joined(hub, "bob")
    hub.send(alice, b"", now=0.0)
    hub.send(alice, bytes(128_000), now=0.0)
    with pytest.raises(PayloadTooLarge, match="128001 bytes.*128000"):
        hub.send(alice, bytes(128_001), now=0.0)
    assert [len(item) for item in recorder.of("bob")] == [0, 128_000]


def test_per_sender_order_and_no_duplicates_r16(hub, recorder):
    alice, bob = joined(hub, "alice"), joined(hub, "bob")
    carol = joined(hub, "carol")
    for i in range(1000):
        hub.send(alice, b"a%d" % i, now=i / 1000)
        hub.send(bob, b"b%d" % i, now=i / 1000)
    from_alice = [x for x in recorder.of("carol") if x.startswith(b"a")]
    from_bob = [x for x in recorder.of("carol") if x.startswith(b"b")]
    assert from_alice == [b"a%d" % i for i in range(1000)]
    assert from_bob == [b"b%d" % i for i in range(1000)]
    del carol


def test_closed_connection_counts_as_left_r17(hub, recorder):
    alice, bob = joined(hub, "alice"), joined(hub, "bob")
    joined(hub, "carol")
    hub.close(bob)
    hub.close(bob)  # idempotent
    hub.send(alice, b"x", now=0.0)
    assert recorder.of("bob") == []
    assert recorder.of("carol") == [b"x"]
    assert hub.joined_count(TOPIC) == 2
    assert hub.connection_count() == 2


def test_closed_connection_cannot_rejoin(hub):
    conn = joined(hub, "alice")
    hub.close(conn)
    with pytest.raises(Exception, match="closed"):
        hub.join(conn)


def test_broker_subscription_follows_local_membership():
    broker = InMemoryBroker()
    hub = RealtimeHub(broker, Recorder())
    alice, bob = joined(hub, "alice"), joined(hub, "bob")
    assert broker.topic_count() == 1
    hub.leave(alice)
    assert broker.topic_count() == 1
    hub.close(bob)
    assert broker.topic_count() == 0


def test_two_processes_sharing_a_broker_fan_out_to_each_other():
    broker = InMemoryBroker()
    first, second = Recorder(), Recorder()
    hub1 = RealtimeHub(broker, first, node_id="node-1")
    hub2 = RealtimeHub(broker, second, node_id="node-2")
    alice = joined(hub1, "alice")
    joined(hub1, "alice-tab2")
    # Same connection id (1) as alice, but in another process: must still receive.
    bob = joined(hub2, "bob")
    assert bob.id == alice.id
    hub1.send(alice, b"x", now=0.0)
    assert first.of("alice") == []
    assert first.of("alice-tab2") == [b"x"]
    assert second.of("bob") == [b"x"]


def test_send_rate_is_enforced_by_a_wait():
    limits = RealtimeLimits(send_items_per_s=10, send_items_burst=5)
    hub = RealtimeHub(InMemoryBroker(), Recorder(), limits)
    alice = hub.open(TOPIC, "alice", now=0.0)
    hub.join(alice)
    waits = [hub.send(alice, b"x", now=0.0) for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(0.1)
    assert waits[6] == pytest.approx(0.2)
    assert hub.send(alice, b"x", now=10.0) == 0.0  # budget refilled


def test_byte_rate_is_enforced_by_a_wait():
    limits = RealtimeLimits(send_bytes_per_s=256_000, send_bytes_burst=256_000)
    hub = RealtimeHub(InMemoryBroker(), Recorder(), limits)
    alice = hub.open(TOPIC, "alice", now=0.0)
    hub.join(alice)
    assert hub.send(alice, bytes(128_000), now=0.0) == 0.0
    assert hub.send(alice, bytes(128_000), now=0.0) == 0.0
    assert hub.send(alice, bytes(128_000), now=0.0) == pytest.approx(0.5)


@pytest.mark.parametrize("field, value", [
    ("max_payload_bytes", 0), ("send_items_per_s", 0), ("send_items_burst", 0),
    ("send_bytes_per_s", -1), ("send_bytes_burst", 1000),
])
def test_limits_reject_nonsense(field, value):
    with pytest.raises(ValueError, match=field):
        RealtimeLimits(**{field: value})
