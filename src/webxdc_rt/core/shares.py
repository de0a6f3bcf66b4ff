"""A page's allowances when its sockets reach several host processes, with no I/O.

A page's budget (`budget.PageBudget`) is one token bucket per kind of spending. When the
page's sockets may reach several processes, the bucket itself lives in a shared place (a
pool: Redis) and each process that holds sockets of the page spends from a **share**: tokens
it took from the pool ahead of need. The hot path touches only the share; the pool is asked
(`ShareSource.ask`) when the share falls below half its size, one request at a time, and
tokens a process holds are given back when the page's last socket there closes.

What one request does to the pool (`take`, the arithmetic of the pool itself): the pool
refills by elapsed time up to its burst, takes the debt the process ran up since it last
asked (always: what was spent was spent), then grants up to one share from what is left.
A pool in debt makes every process wait (`paced` kinds) until time has repaid it, as a
process's own bucket makes its sockets wait.

A process that spent all it holds stops reading the page's sockets until the pool
answered (`SharedSendBudget.holding`, not told to the page: it is within its allowance as
far as anyone knows). So over any window a page gets at most its allowance (burst plus rate
times the window) plus, per process its sockets reach, one item per socket: the one read
past what the process held, taken from the pool with the process's next request (when the
answer shows the pool empty, the socket is paced before it reads another). A process that
dies took its share with it; the pool refills it by time (a share is `share_fraction` of
the burst). A pool that cannot be reached is replaced, per process, by a local one with
the page's full allowance (`take` on local state): fail open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from .budget import PageBudget, SendBudget, TokenBucket

__all__ = ["Pool", "take", "ShareSource", "Shared", "SharedSendBudget", "SharedTokenBucket",
           "Request", "shared_page_budget", "shares_of"]

Request = tuple[tuple[str, float, float, float, float], ...]
"""What one request asks of a page's pool, per kind (`field`): its rate, its burst, the
debt to take (negative: tokens given back) and the share wanted beyond it."""


class Pool:
    """The state of one kind of a page's pool: its balance (below 0: in debt) at `stamp`."""

    __slots__ = ("balance", "stamp")

    def __init__(self, balance: float, stamp: float) -> None:
        self.balance = balance
        self.stamp = stamp


def take(pool: Pool | None, rate: float, burst: float, debt: float, want: float,
         now: float) -> tuple[Pool, float]:
    """Apply one request to `pool` (None: never asked, or expired: full) at `now`: refill
    by time, take `debt` (give back when negative, never above the burst), then grant up to
    `want` of what is left. Returns the pool after, and what was granted. The pool of Redis
    does the same in Lua (`brokers.redis.budgets`)."""
    if pool is None:
        pool = Pool(float(burst), now)
    if now > pool.stamp:
        pool.balance = min(burst, pool.balance + (now - pool.stamp) * rate)
        pool.stamp = now
    pool.balance = min(burst, pool.balance - debt)
    granted = max(0.0, min(want, pool.balance))
    pool.balance -= granted
    return pool, granted


class ShareSource(Protocol):
    """Where the shares of a page's budget come from (a pool shared by processes)."""

    def ask(self, share: Shared) -> None:
        """Start a request for `share` (`Shared.request`); answer it later, or now, with
        `Shared.granted`. Never raises and never blocks."""

    def give_back(self, share: Shared) -> None:
        """Return the tokens `share` holds to the pool (`Shared.release`)."""


class Shared(Protocol):
    """A budget whose tokens come from a `ShareSource`."""

    key: str
    """The page's pool, by the page's label."""

    def request(self) -> Request:
        """What to ask of the pool now; the debt is counted as taken from then on."""

    def granted(self, grants: tuple[float, ...], balances: tuple[float, ...],
                now: float) -> None:
        """The answer to the last request, per kind in its order: what was granted and
        the pool's balance after."""

    def release(self) -> Request:
        """Give back every token held: the request that returns them."""

    def wake(self) -> None:
        """Ask for a share now, unless a request is in flight."""


class SharedSendBudget(SendBudget):
    """A page's realtime items and bytes (`SendBudget`) spent from a share of its pool.

    The item is carried out and charged to the share; the caller waits while the pool is
    in debt (told by its last answer), and when the process spent past what it holds:
    until the pool's answer is in (`holding`: the page is not over its allowance as
    far as anyone knows; at most `hold_s`, longer at each item past it, should Redis be
    slow), or, once the pool could not grant the last request, until the page's rate has
    repaid the debt.
    """

    __slots__ = ("key", "source", "share_items", "share_bytes", "hold_s", "holding",
                 "_asking", "_wanted", "_short", "_holds", "_until", "_answered")

    def __init__(self, key: str, source: ShareSource, items_per_s: float, items_burst: int,
                 bytes_per_s: float, bytes_burst: int, share_fraction: float, hold_s: float,
                 now: float) -> None:
        super().__init__(items_per_s, items_burst, bytes_per_s, bytes_burst, now)
        self.key = key
        self.source = source
        self.share_items = max(1.0, items_burst * share_fraction)
        self.share_bytes = max(1.0, bytes_burst * share_fraction)
        self.hold_s = hold_s
        self.holding = False
        self._items = self._bytes = 0.0  # nothing held until the pool grants it
        self._asking = False
        self._wanted = (0.0, 0.0)  # the share asked for by the request in flight
        self._short = False  # the pool could not grant all of the last request
        self._holds = 0  # holds for the answer that were not long enough
        self._until = now  # when the pool's debt is repaid, by its last answer
        self._answered: list[Callable[[], None]] = []

    def when_answered(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the request in flight is answered (now if none is)."""
        if self._asking:
            self._answered.append(callback)
        else:
            callback()

    def charge(self, size: int, now: float) -> float:
        """Spend one item of `size` bytes from the share; return the seconds to wait before
        the next item (0.0 when none); ask for more once the share is below half."""
        self._items -= 1
        self._bytes -= size
        if self._items < self.share_items / 2 or self._bytes < self.share_bytes / 2:
            items, bytes_ = self._items, self._bytes  # a request counts a debt as taken
            if not self._asking:
                self._asking = True
                self.source.ask(self)
            if items < 0 or bytes_ < 0:
                return self._past_share(items, bytes_, now)
        self.holding = False
        wait = self._until - now
        return wait if wait > 0 else 0.0

    def over(self, now: float) -> float:
        """After a hold: the seconds to wait before the next item when the pool could not
        grant what was asked and the process is past what it holds (0.0 otherwise)."""
        if not self._short or (self._items >= 0 and self._bytes >= 0):
            return max(0.0, self._until - now)
        return max(0.0, self._until - now, -self._items / self.items_per_s,
                   -self._bytes / self.bytes_per_s)

    def _past_share(self, items: float, bytes_: float, now: float) -> float:
        """The wait after an item that left the process `items` and `bytes_` (below 0:
        past what it holds)."""
        self.holding = self._asking and not self._short and self._until <= now
        if self.holding:
            self._holds += 1
            return self._holds * self.hold_s
        if not self._asking and not self._short:  # answered at once, and covered
            items, bytes_ = self._items, self._bytes
        return max(0.0, self._until - now, -items / self.items_per_s,
                   -bytes_ / self.bytes_per_s)

    def wake(self) -> None:
        """Ask for a share now, unless a request is in flight (a socket of the page opens
        here)."""
        _wake(self)

    def request(self) -> Request:
        """Ask for the debt and a full share, items and bytes."""
        debt_items, debt_bytes = max(0.0, -self._items), max(0.0, -self._bytes)
        self._items += debt_items
        self._bytes += debt_bytes
        self._asking = True
        self._wanted = (self.share_items - self._items, self.share_bytes - self._bytes)
        return (("items", self.items_per_s, self.items_burst, debt_items, self._wanted[0]),
                ("bytes", self.bytes_per_s, self.bytes_burst, debt_bytes, self._wanted[1]))

    def granted(self, grants: tuple[float, ...], balances: tuple[float, ...],
                now: float) -> None:
        """Add what was granted; wait while the pool is in debt."""
        self._short = grants[0] < self._wanted[0] or grants[1] < self._wanted[1]
        self._items += grants[0]
        self._bytes += grants[1]
        self._until = now + max(0.0, -balances[0] / self.items_per_s,
                                -balances[1] / self.bytes_per_s)
        self._asking = False
        self._holds = 0
        answered, self._answered = self._answered, []
        for callback in answered:
            callback()

    def release(self) -> Request:
        """Give back what is held (a debt is kept, to be taken with the next request)."""
        items, bytes_ = max(0.0, self._items), max(0.0, self._bytes)
        self._items -= items
        self._bytes -= bytes_
        return (("items", self.items_per_s, self.items_burst, -items, 0.0),
                ("bytes", self.bytes_per_s, self.bytes_burst, -bytes_, 0.0))


class SharedTokenBucket(TokenBucket):
    """A page's bucket of one kind (`TokenBucket`: status updates, chat messages) spent
    from a share of its pool under the name `field`. A request that finds the share spent
    while more is being asked for (`asking`) may wait for the answer (`when_answered`, at
    most `hold_s`) rather than be refused: the page is not over its allowance as far as
    anyone knows."""

    __slots__ = ("key", "field", "source", "share", "hold_s", "_asking", "_until",
                 "_answered")

    def __init__(self, key: str, field: str, source: ShareSource, rate: float,
                 burst: float, share_fraction: float, hold_s: float, now: float) -> None:
        super().__init__(rate, burst, now)
        self.key = key
        self.field = field
        self.source = source
        self.share = max(1.0, burst * share_fraction)
        self.hold_s = hold_s
        self._tokens = 0.0
        self._asking = False
        self._until = now
        self._answered: list[Callable[[], None]] = []

    @property
    def asking(self) -> bool:
        """A request for more of the pool is in flight."""
        return self._asking

    def when_answered(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the request in flight is answered (now if none is)."""
        if self._asking:
            self._answered.append(callback)
        else:
            callback()

    def _ask_if_low(self) -> None:
        if self._tokens < self.share / 2 and not self._asking:
            self._asking = True
            self.source.ask(self)

    def try_take(self, amount: float, now: float) -> bool:
        """Spend `amount` if the share covers it; tell whether it did."""
        self._ask_if_low()  # a pool answering at once (fail open) covers this request
        if self._tokens < amount:
            return False
        self._tokens -= amount
        self._ask_if_low()
        return True

    def charge(self, amount: float, now: float) -> float:
        """Spend `amount` even into debt; return the seconds until the debt would be
        repaid at the page's rate, or the pool's debt by time (0.0 when neither)."""
        self._tokens -= amount
        self._ask_if_low()
        return max(0.0, self._until - now, -self._tokens / self.rate)

    def wake(self) -> None:
        """Ask for a share now, unless a request is in flight (a socket of the page opens
        here)."""
        _wake(self)

    def request(self) -> Request:
        """Ask for the debt and a full share."""
        debt = max(0.0, -self._tokens)
        self._tokens += debt
        self._asking = True
        return ((self.field, self.rate, self.burst, debt, self.share - self._tokens),)

    def granted(self, grants: tuple[float, ...], balances: tuple[float, ...],
                now: float) -> None:
        """Add what was granted; wait while the pool is in debt."""
        self._tokens += grants[0]
        self._until = now + max(0.0, -balances[0] / self.rate)
        self._asking = False
        answered, self._answered = self._answered, []
        for callback in answered:
            callback()

    def release(self) -> Request:
        """Give back what is held."""
        held = max(0.0, self._tokens)
        self._tokens -= held
        return ((self.field, self.rate, self.burst, -held, 0.0),)


def _wake(share: SharedSendBudget | SharedTokenBucket) -> None:
    if not share._asking:
        share._asking = True
        share.source.ask(share)


def shared_page_budget(key: str, source: ShareSource, share_fraction: float, hold_s: float,
                       budget: PageBudget, now: float) -> PageBudget:
    """`budget` (a fresh one, for its rates and bursts) with its realtime items and bytes,
    status updates and chat messages spent from shares of the pool `key` of `source`; the
    other kinds stay the process's own. Asks for the first shares at once."""
    realtime = budget.realtime
    shared = replace(
        budget,
        realtime=SharedSendBudget(key, source, realtime.items_per_s, realtime.items_burst,
                                  realtime.bytes_per_s, realtime.bytes_burst, share_fraction,
                                  hold_s, now),
        updates=SharedTokenBucket(key, "updates", source, budget.updates.rate,
                                  budget.updates.burst, share_fraction, hold_s, now),
        chat=SharedTokenBucket(key, "chat", source, budget.chat.rate, budget.chat.burst,
                               share_fraction, hold_s, now))
    for share in shares_of(shared):
        share.wake()
    return shared


def shares_of(budget: PageBudget) -> tuple[SharedSendBudget | SharedTokenBucket, ...]:
    """The kinds of `budget` that are spent from shares of a pool."""
    kinds = (budget.realtime, budget.updates, budget.chat)
    return tuple(kind for kind in kinds if isinstance(kind, (SharedSendBudget,
                                                             SharedTokenBucket)))
