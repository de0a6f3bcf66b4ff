"""The pools of pages' budgets in Redis (`core.shares`): one hash per page, under a hash tag
of its own (`{webxdc-rt:budget:<db>:<page>}`, so a Redis Cluster keeps each in one slot),
one field pair per kind (balance and stamp), changed by one Lua script that refills by
Redis's clock, takes the debt and grants a share (`core.shares.take`, the same arithmetic).
The hash expires once it would have refilled, so a page nobody uses costs nothing.

Requests go over a connection of their own (`PoolLink`), kept open by `link.keep_link`,
answered in the order sent. While Redis is unreachable (or answers with an error, or leaves
a request unanswered for `budget_answer_timeout_s`, after which the connection is dropped
and made again) every request is answered at once from a pool in this process
(`LocalPools`, `core.shares.take` on local state): each process then gives a page its
whole allowance, as without shared budgets (fail open), and says so once. A request is
kept as sent (`Pending`) until it is answered, so one whose connection broke is answered
here with the debt it carried. On a Redis Cluster the requests of each page go to the
primary of its key's slot (`cluster_budgets`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import hiredis

from ...core.shares import Pool, Request, Shared, ShareSource, take
from ..limits import BrokerLimits
from .address import RedisAddress
from .link import Link, command, keep_link

__all__ = ["RedisShares", "PagePools", "Pending", "LocalPools", "PoolLink", "POOL_SCRIPT",
           "pool_key", "REPLY_BYTES"]

log = logging.getLogger(__name__)

REPLY_BYTES = 64 * 1024
"""The most one answer to a request may hold (a few numbers per kind)."""

POOL_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local answer, ttl = {}, 1000
for i = 1, #ARGV, 5 do
  local name = ARGV[i]
  local rate, burst = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local debt, want = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local state = redis.call('HMGET', KEYS[1], name .. ':b', name .. ':s')
  local balance, stamp = tonumber(state[1]), tonumber(state[2])
  if balance == nil or stamp == nil then balance, stamp = burst, now end
  if now > stamp then
    balance = math.min(burst, balance + (now - stamp) * rate)
    stamp = now
  end
  balance = math.min(burst, balance - debt)
  local granted = math.max(0, math.min(want, balance))
  balance = balance - granted
  redis.call('HSET', KEYS[1], name .. ':b', tostring(balance), name .. ':s', tostring(stamp))
  ttl = math.max(ttl, math.ceil((burst - balance) / rate * 1000) + 1000)
  answer[#answer + 1] = tostring(granted)
  answer[#answer + 1] = tostring(balance)
end
redis.call('PEXPIRE', KEYS[1], ttl)
return answer
"""
"""Refill, take the debt, grant (`core.shares.take`), per kind named in ARGV (name, rate,
burst, debt, want); answers each kind's grant and balance after, as text (Lua numbers
would reach the client cut to integers)."""


def pool_key(db: int, page: str) -> str:
    """The Redis key of the pool of page `page`: one hash tag per page."""
    return f"{{webxdc-rt:budget:{db}:{page}}}"


class PagePools(ShareSource, Protocol):
    """The pools of pages' budgets a Redis broker keeps (`RedisBroker.shares`, on one Redis:
    `RedisShares`; on a Redis Cluster: `cluster_budgets.RedisClusterShares`)."""

    async def start(self) -> None:
        """Connect (in the background from then on)."""

    async def close(self) -> None:
        """Stop: requests from now on are answered by this process's own pools."""


@dataclass(slots=True)
class Pending:
    """One request to a page's pool, kept until it is answered: sent again where a node
    says another serves the pool, or answered here, its debt never lost."""

    share: Shared | None
    """Who waits for the answer; None for tokens given back (nothing to answer)."""
    key: str
    request: Request
    redirects: int = 0
    """How often a node said another serves the pool (`MOVED`, `ASK`)."""

    def script_call(self, db: int) -> bytes:
        """The command that applies the request to the pool in Redis."""
        args: list[str] = []
        for name, rate, burst, debt, want in self.request:
            args += [name, repr(rate), repr(float(burst)), repr(debt), repr(want)]
        return command("EVAL", POOL_SCRIPT, "1", pool_key(db, self.key), *args)


class LocalPools:
    """This process's own pools of pages (fail open): they answer while the pools in Redis
    cannot be reached, and are said once per outage."""

    def __init__(self, address: RedisAddress) -> None:
        self.address = address
        self._pools: dict[tuple[str, str], Pool] = {}
        self._failing_open = False

    def answer(self, pending: Pending) -> None:
        """Apply the request of `pending` to this process's pool of the page."""
        self._fail_open()
        now = time.monotonic()
        grants, balances = [], []
        for name, rate, burst, debt, want in pending.request:
            pool, granted = take(self._pools.get((pending.key, name)), rate, burst, debt,
                                 want, now)
            self._pools[(pending.key, name)] = pool
            grants.append(granted)
            balances.append(pool.balance)
        if pending.share is not None:
            pending.share.granted(tuple(grants), tuple(balances), now)

    def recovered(self) -> None:
        """Redis answers again: pools are Redis's again."""
        self._pools.clear()
        if self._failing_open:
            self._failing_open = False
            log.warning("budgets: %s reachable again; pages' allowances are shared by the "
                        "processes again", self.address)

    def _fail_open(self) -> None:
        if not self._failing_open:
            self._failing_open = True
            # Not "unreachable": the broker says that, once; this says what it costs.
            log.warning("budgets: no answer from %s; until there is, each process gives a "
                        "page its whole allowance on its own", self.address)


class PoolLink:
    """The `link.LinkEvents` of one connection that requests go over, answered in the order
    sent. What the answers that are not grants mean is for its owner: `refused` gets a
    request with its error, `unanswered` the requests in flight when the connection ends
    (True: it broke), `up` is called when it opens."""

    def __init__(self, db: int, refused: Callable[[Pending, Any], None],
                 unanswered: Callable[[list[Pending], bool], None],
                 up: Callable[[], None], answer_timeout_s: float) -> None:
        self.db = db
        self.answer_timeout_s = answer_timeout_s
        self.link: Link | None = None
        self._answers = 0
        self._watch: asyncio.TimerHandle | None = None
        self._refused = refused
        self._unanswered = unanswered
        self._up = up
        self._waiting: collections.deque[Pending | None] = collections.deque()
        """Requests in flight, in order; None for an `ASKING` (its answer means nothing)."""

    @property
    def alive(self) -> bool:
        """Requests may be sent."""
        return self.link is not None and self.link.alive

    def send(self, pending: Pending, asking: bool = False) -> bool:
        """Send `pending` (after `ASKING`, for a slot being imported); False when the
        connection is not open."""
        link = self.link
        if link is None or not link.alive or link.transport is None:
            return False
        if asking:
            link.transport.write(command("ASKING"))
            self._waiting.append(None)
        link.transport.write(pending.script_call(self.db))
        self._waiting.append(pending)
        if self._watch is None:
            self._watch_answers(link)
        return True

    def _watch_answers(self, link: Link) -> None:
        """Drop `link` if no request is answered on it within the timeout while some wait:
        a Redis that accepts requests and never answers them (stopped, overloaded) would
        otherwise hold every page's socket and refuse its updates for as long as it lasts,
        where one that refuses connections fails open."""
        answers, timeout = self._answers, self.answer_timeout_s

        def check() -> None:
            self._watch = None
            if link is not self.link or not self._waiting:
                return
            if self._answers == answers:
                link.drop(f"no answer to a budget request within {timeout:g} s")
            else:
                self._watch_answers(link)

        self._watch = asyncio.get_running_loop().call_later(timeout, check)

    def on_reply(self, reply: Any) -> None:
        """The answer to the oldest request in flight."""
        self._answers += 1
        pending = self._waiting.popleft() if self._waiting else None
        if pending is None:
            return
        if isinstance(reply, hiredis.ReplyError) or not isinstance(reply, list):
            self._refused(pending, reply)
        elif pending.share is not None:
            numbers = [float(value) for value in reply]
            pending.share.granted(tuple(numbers[0::2]), tuple(numbers[1::2]),
                                  time.monotonic())

    def link_up(self, link: Link) -> None:
        """Redis answers: requests go to it."""
        self.link = link
        self._up()

    def link_lost(self, reason: str) -> None:
        """Requests in flight go back to the owner."""
        self.link = None
        self._drain(True)

    def link_failed(self, reason: str) -> None:
        """Redis could not be reached (nothing is in flight)."""
        self._drain(False)

    def link_closed(self) -> None:
        """Closed for good."""
        self.link = None
        self._drain(False)

    def _drain(self, broke: bool) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        waiting, self._waiting = self._waiting, collections.deque()
        self._unanswered([pending for pending in waiting if pending is not None], broke)


class RedisShares:
    """The `core.shares.ShareSource` of a host process whose pages' budgets are pooled in
    one Redis. `start()` it in the host's event loop before use and `close()` it after."""

    def __init__(self, address: RedisAddress, limits: BrokerLimits) -> None:
        self.address = address
        self.limits = limits
        self.local = LocalPools(address)
        self.pools = PoolLink(address.db, self._refused, self._unanswered,
                              self.local.recovered, limits.budget_answer_timeout_s)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect (in the background from then on); return once the first attempt
        succeeded or failed."""
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(keep_link(self.address, self.limits, self.pools,
                                                   REPLY_BYTES, first))
        await first

    async def close(self) -> None:
        """Stop: requests from now on are answered by this process's own pools."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # -- the ShareSource protocol ---------------------------------------------------------

    def ask(self, share: Shared) -> None:
        """Send the request of `share` to Redis, or answer it here while Redis is out."""
        self._send(Pending(share, share.key, share.request()))

    def give_back(self, share: Shared) -> None:
        """Return what `share` holds to its pool (nothing to answer)."""
        self._send(Pending(None, share.key, share.release()))

    def _send(self, pending: Pending) -> None:
        if not self.pools.send(pending):
            self.local.answer(pending)

    def _refused(self, pending: Pending, reply: Any) -> None:
        log.warning("budgets: %s refused a request (%s)", self.address, reply)
        self.local.answer(pending)

    def _unanswered(self, waiting: list[Pending], broke: bool) -> None:
        for pending in waiting:
            self.local.answer(pending)
