"""The simulator's fault decisions and log aggregation, without sockets."""

from __future__ import annotations

import math

import pytest

from webxdc_rt.dev.faults import FaultLimits, FaultPlan, PeerFaults
from webxdc_rt.dev.traffic import TrafficLimits, TrafficLog, preview


def fates(plan: FaultPlan, count: int, receiver: str = "b") -> list[float | str]:
    return [plan.item_fate("a", receiver, 100, float(i)) for i in range(count)]


def test_a_perfect_plan_passes_everything_at_once() -> None:
    plan = FaultPlan()
    assert not plan.active
    assert fates(plan, 3) == [0.0, 0.0, 0.0]


def test_loss_with_a_seed_is_reproducible_and_near_its_rate() -> None:
    first, second = FaultPlan(), FaultPlan()
    for plan in (first, second):
        plan.set_faults("b", PeerFaults(loss_percent=50, seed=7))
    one, two = fates(first, 2000), fates(second, 2000)
    assert one == two
    lost = one.count("loss")
    # Binomial(2000, 0.5): mean 1000, standard deviation 22.4; five of them either way.
    assert abs(lost - 1000) < 5 * math.sqrt(2000 * 0.25)
    other = FaultPlan()
    other.set_faults("b", PeerFaults(loss_percent=50, seed=8))
    assert fates(other, 2000) != one


def test_latency_and_jitter_delay_within_their_bounds() -> None:
    plan = FaultPlan()
    plan.set_faults("b", PeerFaults(latency_ms=200, jitter_ms=50, seed=1))
    delays = fates(plan, 500)
    assert all(isinstance(d, float) and 0.15 <= d <= 0.25 for d in delays)
    assert len(set(delays)) > 1


def test_offline_loses_items_both_ways_and_cuts_the_link() -> None:
    plan = FaultPlan()
    plan.set_faults("b", PeerFaults(offline=True))
    assert plan.item_fate("a", "b", 10, 0.0) == "offline"
    assert plan.item_fate("b", "a", 10, 0.0) == "offline"
    assert not plan.connected("a", "b")
    plan.set_faults("b", PeerFaults())
    assert plan.connected("a", "b") and not plan.active


def test_partitions_split_groups_and_the_rest_is_one_group() -> None:
    plan = FaultPlan()
    plan.partition([["a"], ["b", "c"]])
    assert plan.item_fate("a", "b", 10, 0.0) == "partition"
    assert plan.item_fate("b", "c", 10, 0.0) == 0.0
    assert plan.item_fate("d", "e", 10, 0.0) == 0.0
    assert plan.item_fate("d", "a", 10, 0.0) == "partition"
    assert plan.groups() == [["a"], ["b", "c"]]
    with pytest.raises(ValueError):
        plan.partition([["a"], ["a"]])
    plan.partition([])
    assert plan.connected("a", "b")


def test_a_bandwidth_cap_spaces_items_and_loses_what_queues_too_long() -> None:
    plan = FaultPlan(FaultLimits(max_bandwidth_backlog_s=1.0))
    plan.set_faults("b", PeerFaults(bandwidth_bytes_per_s=1000))
    delays = [plan.item_fate("a", "b", 500, 0.0) for _ in range(4)]
    assert delays == [0.5, 1.0, 1.5, "bandwidth"]


@pytest.mark.parametrize("value", [
    [], {"latency_ms": -1}, {"latency_ms": "5"}, {"loss_percent": 101}, {"offline": 1},
    {"seed": 1.5}, {"seed": True}, {"latency_ms": float("nan")}, {"nope": 1},
    {"latency_ms": float("inf")}, {"bandwidth_bytes_per_s": True},
    {"bandwidth_bytes_per_s": 1e-300}, {"seed": 2**70}, {"loss_percent": None},
])
def test_faults_from_json_refuse_what_is_not_a_fault(value: object) -> None:
    with pytest.raises(ValueError):
        PeerFaults.from_json(value)


def test_faults_round_trip_through_json() -> None:
    faults = PeerFaults(latency_ms=10, jitter_ms=2, loss_percent=5, seed=3,
                        bandwidth_bytes_per_s=100, offline=True)
    assert PeerFaults.from_json(faults.to_json()) == faults


def test_latency_above_the_limit_is_refused() -> None:
    plan = FaultPlan(FaultLimits(max_latency_ms=100))
    with pytest.raises(ValueError):
        plan.set_faults("b", PeerFaults(latency_ms=80, jitter_ms=30))


def test_the_log_counts_every_item_and_describes_a_bounded_sample() -> None:
    log = TrafficLog(TrafficLimits(item_samples_per_s=10, max_events=5))
    for _ in range(100):
        log.item("alice", ["bob"], b"x" * 10, 10, 0.5)
        log.delivered("bob", 10)
    assert log.counts["alice"].items_sent == 100
    assert log.counts["bob"].bytes_received == 1000
    assert log.items_not_described == 90
    events = log.drain()
    assert len(events) == 5 and log.events_dropped == 5
    assert events[0]["receivers"] == ["bob"] and events[0]["size"] == 10
    log.item("alice", [], b"y", 1, 1.6)  # a new second: described again
    assert len(log.drain()) == 1


def test_rates_are_per_second_between_calls() -> None:
    log = TrafficLog()
    log.rates(0.0)
    for _ in range(50):
        log.item("alice", ["bob"], b"abcd", 4, 0.1)
    rates = log.rates(0.5)
    assert rates["alice"]["items_sent_per_s"] == 100
    assert rates["alice"]["bytes_sent_per_s"] == 400


def test_previews_show_text_as_text_and_the_rest_as_hex() -> None:
    assert preview(b"hello", 32) == {"text": "hello"}
    assert preview(b"\x00\x01\xff", 32) == {"hex": "00 01 ff"}
    assert preview("é".encode() * 20, 5) == {"text": "éé"}
    assert preview(b"\xed\xa0\x80", 32) == {"hex": "ed a0 80"}  # a lone surrogate
