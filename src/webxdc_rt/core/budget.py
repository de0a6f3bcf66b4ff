"""Allowances per member page, with no I/O.

A member may open a page in many tabs, on several devices and from scripts at once; every
one of those connections draws on the same allowance, the page's, so that opening more
sockets never buys more of anything (realtime items and bytes, control messages, status
updates, update listeners, backlog bytes, chat messages). The host keeps one `PageBudget`
per page for as long as it runs, so closing and reopening a socket does not refill it
either.

Two kinds of limit:
- **paced** (`TokenBucket.charge`): the request is carried out, the balance may go into
  debt, and the caller stops reading from that connection until the debt is repaid. A
  flood is slowed to the rate and costs nobody else anything; nothing is refused.
- **refused** (`TokenBucket.try_take`): the request is answered with an error and has no
  effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import ChatLimits, DeliveryLimits, RealtimeLimits, UpdateLimits

__all__ = ["TokenBucket", "SendBudget", "PageBudget"]


class TokenBucket:
    """A rate limit: `rate` per second sustained, `burst` at once."""

    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._stamp = now

    def try_take(self, amount: float, now: float) -> bool:
        """Spend `amount` at time `now` if the balance covers it; tell whether it did."""
        self._refill(now)
        if self._tokens < amount:
            return False
        self._tokens -= amount
        return True

    def charge(self, amount: float, now: float) -> float:
        """Spend `amount` even into debt; return the seconds until the balance is back to
        zero (0.0 when it did not go into debt)."""
        self._refill(now)
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def refund(self, amount: float) -> None:
        """Give back `amount` taken for something that turned out to cost nothing (never
        above the burst)."""
        self._tokens = min(self.burst, self._tokens + amount)


class SendBudget:
    """What a page may send into its realtime channel: items and bytes, each a token
    bucket allowed into debt. Kept inline rather than as two `TokenBucket`s because it is
    charged once per realtime item, the host's hottest path."""

    __slots__ = ("items_per_s", "items_burst", "bytes_per_s", "bytes_burst", "_items",
                 "_bytes", "_stamp")

    def __init__(self, items_per_s: float, items_burst: int, bytes_per_s: float,
                 bytes_burst: int, now: float) -> None:
        self.items_per_s = items_per_s
        self.items_burst = items_burst
        self.bytes_per_s = bytes_per_s
        self.bytes_burst = bytes_burst
        self._items = float(items_burst)
        self._bytes = float(bytes_burst)
        self._stamp = now

    @classmethod
    def for_limits(cls, limits: RealtimeLimits, now: float) -> SendBudget:
        """A full send budget with the rates and bursts of `limits`."""
        return cls(limits.send_items_per_s, limits.send_items_burst, limits.send_bytes_per_s,
                   limits.send_bytes_burst, now)

    def charge(self, size: int, now: float) -> float:
        """Spend one item of `size` bytes; return the seconds to wait before the next item
        would be within the budget (0.0 when it already is)."""
        elapsed = now - self._stamp
        if elapsed > 0:
            self._stamp = now
            # `min` spelt out: a builtin's call costs more than a comparison, per item.
            items = self._items + elapsed * self.items_per_s
            if items > self.items_burst:
                items = self.items_burst
            size_left = self._bytes + elapsed * self.bytes_per_s
            if size_left > self.bytes_burst:
                size_left = self.bytes_burst
            self._items = items - 1
            self._bytes = size_left - size
        else:
            self._items -= 1
            self._bytes -= size
        if self._items >= 0 and self._bytes >= 0:
            return 0.0
        return max(-self._items / self.items_per_s, -self._bytes / self.bytes_per_s)


@dataclass(slots=True, eq=False)
class PageBudget:
    """Everything one member page may spend, shared by all of its connections."""

    realtime: SendBudget
    """Realtime items and bytes sent (paced)."""
    control: TokenBucket
    """Control messages (text frames) of any kind but `received` (paced)."""
    receipts: TokenBucket
    """`received` reports of what a connection has read (paced)."""
    updates: TokenBucket
    """Status updates sent (refused when over)."""
    listens: TokenBucket
    """Update listeners started, each replaying a backlog (refused when over)."""
    backlog: TokenBucket
    """Bytes of backlog replayed to the page (paced)."""
    chat: TokenBucket
    """Messages posted with sendToChat (refused when over)."""
    chat_stored_bytes: int | None = None
    """Bytes of chat messages the page has stored so far; None until first counted."""

    @classmethod
    def fresh(cls, realtime: RealtimeLimits, updates: UpdateLimits, chat: ChatLimits,
              control_per_s: float, control_burst: int, now: float,
              delivery: DeliveryLimits | None = None) -> PageBudget:
        """A full allowance for a page, from the host's limits."""
        delivery = delivery or DeliveryLimits()
        return cls(
            realtime=SendBudget.for_limits(realtime, now),
            control=TokenBucket(control_per_s, control_burst, now),
            receipts=TokenBucket(delivery.receipts_per_s, delivery.receipts_burst, now),
            updates=TokenBucket(1000.0 / updates.interval_ms, updates.burst, now),
            listens=TokenBucket(updates.listens_per_s, updates.listens_burst, now),
            backlog=TokenBucket(updates.backlog_bytes_per_s, updates.backlog_bytes_burst, now),
            chat=TokenBucket(chat.messages_per_s, chat.messages_burst, now))
