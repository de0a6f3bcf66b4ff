"""Realtime items waiting for a slow receiver: order, age, fairness, counts."""

from __future__ import annotations

import pytest

from webxdc_rt.core.delivery import DropCount, ItemQueue, ReceiveWindow
from webxdc_rt.core.limits import DeliveryLimits


def frame(label: str) -> tuple[bytes, ...]:
    return (label.encode(),)


def drain(queue: ItemQueue, now: float) -> list[str]:
    taken = []
    while (next_one := queue.take(now)) is not None:
        taken.append(next_one[0][0].decode())
    return taken


def test_one_senders_items_leave_in_order_and_senders_take_turns():
    queue = ItemQueue(DeliveryLimits())
    for i in range(3):
        queue.offer("a", frame(f"a{i}"), 10, 0.0)
    queue.offer("b", frame("b0"), 10, 0.0)
    queue.offer("b", frame("b1"), 10, 0.0)
    assert len(queue) == 5 and queue.waiting_bytes == 50
    assert drain(queue, 0.0) == ["a0", "b0", "a1", "b1", "a2"]
    assert not queue and queue.waiting_bytes == 0
    assert queue.counts == DropCount()


def test_items_older_than_the_age_bound_are_dropped_and_counted_as_stale():
    shared = DropCount()
    queue = ItemQueue(DeliveryLimits(max_item_age_s=2.0), (shared,))
    queue.offer("a", frame("old"), 7, 0.0)
    queue.offer("a", frame("fresh"), 5, 1.5)
    queue.offer("b", frame("b-old"), 3, 0.5)
    assert drain(queue, 3.0) == ["fresh"]   # waited 1.5 s: within the bound
    assert queue.counts == DropCount(items=2, bytes=10, stale=2, crowded=0)
    assert shared == queue.counts


def test_an_item_exactly_at_the_age_bound_is_still_sent():
    queue = ItemQueue(DeliveryLimits(max_item_age_s=2.0))
    queue.offer("a", frame("edge"), 1, 1.0)
    assert drain(queue, 3.0) == ["edge"]


def test_over_the_byte_bound_the_sender_with_most_waiting_loses_its_oldest():
    queue = ItemQueue(DeliveryLimits(max_waiting_bytes=100))
    for i in range(9):
        queue.offer("flood", frame(f"f{i}"), 10, 0.0)
    queue.offer("honest", frame("h0"), 10, 0.0)    # 100 bytes: at the bound, nothing dropped
    assert queue.counts.items == 0
    queue.offer("flood", frame("f9"), 10, 0.0)     # 110: the flood pays, oldest first
    queue.offer("honest", frame("h1"), 10, 0.0)
    assert queue.waiting_bytes == 100
    assert queue.counts == DropCount(items=2, bytes=20, stale=0, crowded=2)
    taken = drain(queue, 0.0)
    assert [x for x in taken if x.startswith("h")] == ["h0", "h1"]
    assert [x for x in taken if x.startswith("f")] == [f"f{i}" for i in range(2, 10)]


def test_an_item_larger_than_the_byte_bound_is_dropped_itself():
    queue = ItemQueue(DeliveryLimits(max_waiting_bytes=100))
    queue.offer("a", frame("small"), 10, 0.0)
    queue.offer("b", frame("huge"), 150, 0.0)
    assert drain(queue, 0.0) == ["small"]
    assert queue.counts.crowded == 1 and queue.counts.bytes == 150


def test_clear_forgets_without_counting():
    queue = ItemQueue(DeliveryLimits())
    queue.offer("a", frame("x"), 10, 0.0)
    queue.clear()
    assert not queue and queue.waiting_bytes == 0 and queue.take(0.0) is None
    assert queue.counts.items == 0


def test_an_episode_starts_with_the_first_wait_and_ends_when_told():
    queue = ItemQueue(DeliveryLimits())
    assert queue.end_episode() is None
    queue.offer("a", frame("x"), 10, 4.0)
    queue.offer("a", frame("y"), 10, 5.0)
    assert queue.episode_started == 4.0
    drain(queue, 5.0)
    assert queue.end_episode() == 4.0 and queue.episode_started is None


@pytest.mark.parametrize("bad", [
    {"max_item_age_s": 0}, {"max_item_age_s": float("inf")}, {"max_item_age_s": float("nan")},
    {"max_waiting_bytes": 0}, {"socket_buffer_bytes": 0}, {"receive_window_bytes": 0},
    {"min_window_bytes": 0}, {"receipts_per_s": 0}, {"receipts_burst": 0},
    {"min_window_bytes": 2, "receive_window_bytes": 1},
])
def test_limits_must_be_positive(bad):
    with pytest.raises(ValueError):
        DeliveryLimits(**bad)


def test_a_receiver_that_does_not_report_is_never_held_by_a_window():
    window = ReceiveWindow(DeliveryLimits())
    assert not window.full(10**9) and window.delay(10**9) == 0.0


def test_reports_open_the_window_and_cannot_claim_more_than_was_sent():
    window = ReceiveWindow(DeliveryLimits(min_window_bytes=100, receive_window_bytes=1000))
    assert window.report(0, 0, 0.0)                  # it will report: bounded from now on
    assert window.full(100) and not window.full(99)
    assert window.report(10**9, 100, 0.01)           # more than was sent counts as all
    assert window.read == 100 and not window.full(150)
    assert not window.report(50, 150, 0.02)          # going back changes nothing
    assert window.read == 100


def test_a_receiver_held_back_by_its_window_gets_a_wider_one():
    window = ReceiveWindow(DeliveryLimits(min_window_bytes=100, receive_window_bytes=1000))
    window.report(0, 0, 0.0)
    written = 100
    for step in range(1, 6):   # reads all it was let have, while more waits, each time
        window.report(written, written, step * 0.001, waiting=True)
        written += window.limit
    assert window.limit == 1000


def test_a_busy_receivers_rate_sets_its_window_and_the_delay_of_what_is_in_flight():
    limits = DeliveryLimits(max_item_age_s=2.0, min_window_bytes=1000,
                            receive_window_bytes=10**9)
    window = ReceiveWindow(limits)
    window.report(0, 0, 0.0)
    written = 1_000_000
    for step in range(1, 21):  # reads 10 kB every 10 ms with far more in flight: 1 MB/s
        window.report(step * 10_000, written, step * 0.01)
    assert window.rate == pytest.approx(1_000_000)
    assert window.limit == pytest.approx(1_000_000 * 2.0 / 16)   # a sixteenth of the age
    in_flight = written - window.read
    # The time to read what is in flight, with a margin, plus a reserve of the age bound.
    assert window.delay(written) == pytest.approx(0.35 * 2.0 + 1.25 * in_flight / 1_000_000)
