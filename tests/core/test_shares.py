"""Unit tests of shared budgets: the pool's arithmetic, and shares of one pool spent by
several processes, with a pool that answers when the test says (no I/O)."""

from __future__ import annotations

import json

import pytest

from webxdc_rt.core.budget import PageBudget
from webxdc_rt.core.limits import ChatLimits, RealtimeLimits, UpdateLimits
from webxdc_rt.core.realtime import RealtimeHub
from webxdc_rt.core.session import HoldMessage, Send, Session, SessionRules, StoreUpdate
from webxdc_rt.core.shares import (
    Pool,
    Shared,
    SharedSendBudget,
    SharedTokenBucket,
    shared_page_budget,
    take,
)


class Pools:
    """A `ShareSource` whose pools answer the requests in flight when `answer()` is called,
    or at once (`eager`), by `take`, at the test's `now`."""

    def __init__(self, eager: bool = False) -> None:
        self.eager = eager
        self.now = 0.0
        self.pools: dict[tuple[str, str], Pool] = {}
        self.waiting: list[Shared] = []
        self.requests = 0

    def ask(self, share: Shared) -> None:
        self.requests += 1
        self.waiting.append(share)
        if self.eager:
            self.answer()

    def give_back(self, share: Shared) -> None:
        self._apply(share.key, share.release())

    def answer(self) -> None:
        waiting, self.waiting = self.waiting, []
        for share in waiting:
            grants, balances = self._apply(share.key, share.request())
            share.granted(grants, balances, self.now)

    def _apply(self, key, request):
        grants, balances = [], []
        for name, rate, burst, debt, want in request:
            pool, granted = take(self.pools.get((key, name)), rate, burst, debt, want,
                                 self.now)
            self.pools[(key, name)] = pool
            grants.append(granted)
            balances.append(pool.balance)
        return tuple(grants), tuple(balances)


def send_share(pools: Pools, burst: int = 20, rate: float = 0.01) -> SharedSendBudget:
    share = SharedSendBudget("page", pools, rate, burst, 1e9, 10**9, share_fraction=0.1,
                             hold_s=0.05, now=0.0)
    share.wake()
    return share


def test_take_refills_by_time_takes_the_debt_and_grants_what_is_left():
    pool, granted = take(None, rate=10.0, burst=20, debt=0, want=5, now=0.0)
    assert (granted, pool.balance) == (5, 15)  # a pool never asked is full
    pool, granted = take(pool, rate=10.0, burst=20, debt=18, want=5, now=0.0)
    assert (granted, pool.balance) == (0, -3)  # the debt is taken even into debt
    pool, granted = take(pool, rate=10.0, burst=20, debt=0, want=5, now=1.0)
    assert (granted, pool.balance) == (5, 2)  # ten back after a second
    pool, granted = take(pool, rate=10.0, burst=20, debt=-100, want=0, now=1.0)
    assert (granted, pool.balance) == (0, 20)  # given back, never above the burst


def test_two_processes_flooding_one_page_get_its_burst_and_a_bounded_slack():
    pools = Pools()
    shares = [send_share(pools), send_share(pools)]
    pools.answer()
    sent, waits = 0, [0.0, 0.0]
    # Each process reads an item whenever it is not told to wait long; the pool answers
    # after every third item (a round trip takes a few items' time).
    for step in range(300):
        for index, share in enumerate(shares):
            if waits[index] < 1.0:
                sent += 1
                waits[index] = share.charge(10, now=0.0)
        if step % 3 == 2:
            pools.answer()
    pools.answer()
    # The burst of 20, and per process at most one item past what it held and one more
    # once the pool is empty.
    assert 20 <= sent <= 20 + 2 * 2
    assert all(not share.holding for share in shares)  # told it is over, not holding


def test_a_share_past_its_size_holds_for_the_answer_then_goes_on():
    pools = Pools()
    share = send_share(pools)
    pools.answer()
    assert [share.charge(1, now=0.0) for _ in range(2)] == [0.0, 0.0]  # its share
    assert share.charge(1, now=0.0) == pytest.approx(0.05) and share.holding
    assert share.charge(1, now=0.0) == pytest.approx(0.1)  # longer each time
    pools.answer()
    assert share.charge(1, now=0.0) == 0.0 and not share.holding


def test_after_a_hold_a_page_over_its_allowance_is_paced_before_the_next_item():
    pools = Pools()
    share = send_share(pools, burst=10, rate=10.0)  # a share of one item
    pools.answer()
    for _ in range(9):  # the pool is spent
        share.charge(1, now=0.0)
        pools.answer()
    assert share.over(now=0.0) == 0.0  # within what it held
    share.charge(1, now=0.0)
    assert share.charge(1, now=0.0) > 0 and share.holding  # past it: held for the answer
    pools.answer()  # the pool is empty
    assert share.over(now=0.0) == pytest.approx(0.1)  # one item past, at 10/s


def test_a_pool_in_debt_makes_every_process_wait_until_time_repaid_it():
    pools = Pools(eager=True)
    first, second = send_share(pools, burst=10, rate=10.0), send_share(pools, burst=10,
                                                                       rate=10.0)
    for _ in range(14):
        first.charge(1, now=0.0)
    pools.answer()
    assert second.charge(1, now=0.0) > 0.0  # the other process waits too
    pools.now = 10.0
    assert second.charge(1, now=10.0) == 0.0  # repaid by time


def test_given_back_tokens_go_to_the_other_process():
    pools = Pools(eager=True)
    first = SharedTokenBucket("page", "updates", pools, rate=0.01, burst=10,
                              share_fraction=0.5, hold_s=0.05, now=0.0)
    second = SharedTokenBucket("page", "updates", pools, rate=0.01, burst=10,
                               share_fraction=0.5, hold_s=0.05, now=0.0)
    first.wake()
    second.wake()
    assert first.try_take(1, now=0.0)
    pools.give_back(first)
    taken = 0
    while second.try_take(1, now=0.0):
        taken += 1
    assert taken == 9  # all but the one the first process spent


def test_refused_bucket_takes_nothing_past_the_pool():
    pools = Pools(eager=True)
    buckets = [SharedTokenBucket("page", "chat", pools, rate=0.01, burst=10,
                                 share_fraction=0.2, hold_s=0.05, now=0.0) for _ in range(2)]
    taken = sum(bucket.try_take(1, now=0.0) for _ in range(20) for bucket in buckets)
    assert taken == 10



UPDATE = '{"type":"update-send","update":{"payload":1}}'


def shared_session(pools: Pools, burst: int) -> Session:
    """A session whose page's status updates (a burst of `burst`, no refill to speak of)
    are spent from shares of `pools`, its first shares granted."""
    hub = RealtimeHub(RealtimeLimits(), node_id="here")
    updates = UpdateLimits(interval_ms=100_000, burst=burst)
    budget = shared_page_budget("page", pools, 0.1, 0.05, PageBudget.fresh(
        hub.limits, updates, ChatLimits(), 100.0, 200, now=0.0), now=0.0)
    pools.answer()
    conn = hub.open("topic", "sink", 0.0, budget.realtime)
    return Session(hub, conn, budget, SessionRules(updates, ChatLimits(), 32))


def test_an_update_that_finds_the_share_spent_waits_for_the_pool_rather_than_be_refused():
    # A burst read faster than the pool answers: the page is within its allowance, so the
    # update waits for the answer and is handed back, not refused.
    pools = Pools()
    session = shared_session(pools, burst=20)  # shares of 2
    first, second, third = (session.receive_text(UPDATE, 0.0) for _ in range(3))
    assert [type(first[0]), type(second[0])] == [StoreUpdate, StoreUpdate]
    (hold,) = third
    assert isinstance(hold, HoldMessage) and hold.share is session.budget.updates
    pools.answer()
    assert [type(effect) for effect in session.retry(hold.message, 0.0)] == [StoreUpdate]


def test_a_held_update_is_refused_once_the_pool_has_nothing_more():
    pools = Pools()
    session = shared_session(pools, burst=1)  # the whole burst is the first share
    assert type(session.receive_text(UPDATE, 0.0)[0]) is StoreUpdate
    (hold,) = session.receive_text(UPDATE, 0.0)
    assert isinstance(hold, HoldMessage)
    pools.answer()  # nothing left to grant
    (error,) = session.retry(hold.message, 0.0)
    assert isinstance(error, Send) and json.loads(error.text)["code"] == "update-rate"
