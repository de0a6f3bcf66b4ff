"""The pools of pages' budgets in Redis (`core.shares`): one hash per page, under a hash tag
of its own (`{webxdc-rt:budget:<db>:<page>}`, so a Redis Cluster keeps each in one slot),
one field pair per kind (balance and stamp), changed by one Lua script that refills by
Redis's clock, takes the debt and grants a share (`core.shares.take`, the same arithmetic).
The hash expires once it would have refilled, so a page nobody uses costs nothing.

Requests go over a connection of their own, kept open by `link.keep_link`, answered in the
order sent. While Redis is unreachable (or answers with an error, or leaves a request
unanswered for `budget_answer_timeout_s`, after which the connection is dropped and made
again) every request is answered at once from a pool in this process (`core.shares.take`
on local state): each process then gives a page its whole allowance, as without shared
budgets (fail open), and says so once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

import hiredis

from ...core.shares import Pool, Request, Shared, take
from ..limits import BrokerLimits
from .address import RedisAddress
from .link import Link, command, keep_link

__all__ = ["RedisShares", "POOL_SCRIPT", "pool_key"]

log = logging.getLogger(__name__)

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


class RedisShares:
    """The `core.shares.ShareSource` of a host process whose pages' budgets are pooled in
    Redis. `start()` it in the host's event loop before use and `close()` it after."""

    def __init__(self, address: RedisAddress, limits: BrokerLimits) -> None:
        self.address = address
        self.limits = limits
        self.link: Link | None = None
        self._waiting: collections.deque[Shared | None] = collections.deque()
        self._local: dict[tuple[str, str], Pool] = {}
        self._failing_open = False
        self._task: asyncio.Task[None] | None = None
        self._answers = 0  # replies read on the connection, to tell progress
        self._watch: asyncio.TimerHandle | None = None  # checks the oldest request's age

    async def start(self) -> None:
        """Connect (in the background from then on); return once the first attempt
        succeeded or failed."""
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(keep_link(self.address, self.limits, self, 64 * 1024,
                                                   first))
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
        self._send(share, share.request())

    def give_back(self, share: Shared) -> None:
        """Return what `share` holds to its pool (nothing to answer)."""
        self._send(None, share.release(), share.key)

    def _send(self, share: Shared | None, request: Request, key: str | None = None) -> None:
        link = self.link
        key = share.key if share is not None else key
        assert key is not None
        if link is None or not link.alive or link.transport is None:
            self._answer_here(share, key, request)
            return
        args: list[str] = []
        for name, rate, burst, debt, want in request:
            args += [name, repr(rate), repr(float(burst)), repr(debt), repr(want)]
        link.transport.write(command("EVAL", POOL_SCRIPT, "1",
                                     pool_key(self.address.db, key), *args))
        self._waiting.append(share)
        if self._watch is None:
            self._watch_answers(link)

    def _watch_answers(self, link: Link) -> None:
        """Drop `link` if no request is answered on it within the timeout while some wait:
        a Redis that accepts requests and never answers them (stopped, overloaded) would
        otherwise hold every page's socket and refuse its updates for as long as it lasts,
        where one that refuses connections fails open."""
        answers = self._answers
        timeout = self.limits.budget_answer_timeout_s

        def check() -> None:
            self._watch = None
            if link is not self.link or not self._waiting:
                return
            if self._answers == answers:
                link.drop(f"no answer to a budget request within {timeout:g} s")
            else:
                self._watch_answers(link)

        self._watch = asyncio.get_running_loop().call_later(timeout, check)

    def _answer_here(self, share: Shared | None, key: str, request: Request) -> None:
        """Fail open: apply `request` to this process's own pool of the page."""
        self._fail_open()
        now = time.monotonic()
        grants, balances = [], []
        for name, rate, burst, debt, want in request:
            pool, granted = take(self._local.get((key, name)), rate, burst, debt, want, now)
            self._local[(key, name)] = pool
            grants.append(granted)
            balances.append(pool.balance)
        if share is not None:
            share.granted(tuple(grants), tuple(balances), now)

    def _fail_open(self) -> None:
        if not self._failing_open:
            self._failing_open = True
            # Not "unreachable": the broker says that, once; this says what it costs.
            log.warning("budgets: no answer from %s; until there is, each process gives a "
                        "page its whole allowance on its own", self.address)

    # -- the LinkEvents protocol ----------------------------------------------------------

    def on_reply(self, reply: Any) -> None:
        """The answer to the oldest request in flight."""
        self._answers += 1
        share = self._waiting.popleft() if self._waiting else None
        if share is None:
            return
        if isinstance(reply, hiredis.ReplyError) or not isinstance(reply, list):
            log.warning("budgets: %s refused a request (%s)", self.address, reply)
            self._answer_here(share, share.key, share.request())
            return
        numbers = [float(value) for value in reply]
        share.granted(tuple(numbers[0::2]), tuple(numbers[1::2]), time.monotonic())

    def link_up(self, link: Link) -> None:
        """Redis answers: pools are Redis's again."""
        self.link = link
        self._local.clear()
        if self._failing_open:
            self._failing_open = False
            log.warning("budgets: %s reachable again; pages' allowances are shared by the "
                        "processes again", self.address)

    def link_lost(self, reason: str) -> None:
        """Requests in flight are answered here; so are new ones until Redis is back."""
        self.link = None
        self._answer_waiting()

    def link_failed(self, reason: str) -> None:
        """Redis could not be reached: answer here until it is."""
        self._answer_waiting()

    def link_closed(self) -> None:
        """Closed for good."""
        self.link = None
        self._answer_waiting()

    def _answer_waiting(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        waiting, self._waiting = self._waiting, collections.deque()
        for share in waiting:
            if share is not None:
                self._answer_here(share, share.key, share.request())
