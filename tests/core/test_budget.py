"""Unit tests of the per-page allowances: refused and paced token buckets."""

from __future__ import annotations

import pytest

from webxdc_rt.core.budget import SendBudget, TokenBucket


def test_try_take_refuses_what_is_over_and_refills_at_the_rate():
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.try_take(1, now=0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.try_take(1, now=0.5)  # one token back after half a second
    assert not bucket.try_take(1, now=0.5)
    assert bucket.try_take(3, now=100.0)  # never refills above the burst
    assert not bucket.try_take(1, now=100.0)


def test_charge_goes_into_debt_and_says_how_long_to_wait():
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    assert bucket.charge(1, now=0.0) == 0.0
    assert bucket.charge(1, now=0.0) == 0.0
    assert bucket.charge(1, now=0.0) == pytest.approx(0.1)
    assert bucket.charge(1, now=0.0) == pytest.approx(0.2)
    assert bucket.charge(1, now=0.2) == pytest.approx(0.1)  # repaid 2, spent 1 more


def test_send_budget_paces_on_items_and_on_bytes():
    budget = SendBudget(items_per_s=100, items_burst=2, bytes_per_s=1000, bytes_burst=1000,
                        now=0.0)
    assert budget.charge(10, now=0.0) == 0.0
    assert budget.charge(10, now=0.0) == 0.0
    assert budget.charge(10, now=0.0) == pytest.approx(0.01)  # over on items
    budget = SendBudget(items_per_s=100, items_burst=100, bytes_per_s=1000,
                        bytes_burst=1000, now=0.0)
    assert budget.charge(1500, now=0.0) == pytest.approx(0.5)  # over on bytes
