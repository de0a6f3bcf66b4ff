"""`RedisBroker`: the `core.fanout.Broker` of a host process that shares channels with
other processes through Redis, made of a publishing and a subscribing connection, each kept
open by `link.keep_link` for its user (`publisher`, `subscriber`)."""

from __future__ import annotations

import asyncio

from ...core.fanout import Handler, Published, new_node_id
from ..items import origin_prefix
from ..limits import BrokerLimits
from ..memory import Subscriptions
from .address import RedisAddress
from .budgets import PagePools, RedisShares
from .counts import BrokerCounts
from .link import LinkEvents, keep_link
from .publisher import Publisher
from .reports import Reports
from .subscriber import Subscriber

__all__ = ["RedisBroker", "RedisBrokerBase", "CHANNEL_PREFIX"]

CHANNEL_PREFIX = "webxdc-rt"
_REPLY_SLACK_BYTES = 64 * 1024
"""What one reply from Redis may hold beyond an item's payload (its framing and header)."""


class RedisBrokerBase:
    """What the brokers on one Redis and on a Redis Cluster share: the address, bounds
    and counts, this process's subscriptions, the reports, and the channel names."""

    shares: PagePools
    """The pools of pages' budgets shared with the other processes (`core.shares`)."""

    def __init__(self, address: RedisAddress, limits: BrokerLimits | None,
                 max_payload_bytes: int, node_id: str | None) -> None:
        self.address = address
        self.limits = limits or BrokerLimits()
        self.node_id = node_id or new_node_id()
        self.counts = BrokerCounts()
        self._own_prefix = origin_prefix(self.node_id)
        self._max_payload_bytes = max_payload_bytes
        self._max_reply_bytes = max_payload_bytes + _REPLY_SLACK_BYTES
        self._subscriptions = Subscriptions()
        self._handlers = self._subscriptions.handlers
        self._reports = Reports(address, self.counts)

    @property
    def connected(self) -> bool:
        """Every connection to Redis is up: items cross, and arrive."""
        return self._reports.connected

    def topic_count(self) -> int:
        """How many topics this process listens to (for tests and metrics)."""
        return len(self._handlers)

    def _channel(self, topic: str) -> bytes:
        """The Redis shard channel of `topic`."""
        return f"{CHANNEL_PREFIX}:{self.address.db}:{topic}".encode()


class RedisBroker(RedisBrokerBase):
    """The broker of a host process that shares channels with other processes through
    Redis. `start()` it in the host's event loop before use and `close()` it after."""

    def __init__(self, address: RedisAddress, limits: BrokerLimits | None = None,
                 max_payload_bytes: int = 128_000, node_id: str | None = None) -> None:
        super().__init__(address, limits, max_payload_bytes, node_id)
        own_prefix = self._own_prefix
        self._publisher = Publisher(self._channel, own_prefix, self.limits, self.counts,
                                    self._reports)
        self._subscriber = Subscriber(self._channel, self._handlers, own_prefix,
                                      max_payload_bytes, self.limits, self.counts,
                                      self._reports)
        self._tasks: list[asyncio.Task[None]] = []
        self.shares = self._shares = RedisShares(address, self.limits)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis (both connections, in the background from then on) and return
        once the first attempt succeeded or failed; failure is reported and retried."""
        loop = asyncio.get_running_loop()
        sides: list[LinkEvents] = [self._publisher, self._subscriber]
        first: list[asyncio.Future[None]] = [loop.create_future() for _ in sides]
        self._tasks = [
            asyncio.create_task(keep_link(self.address, self.limits, events,
                                          self._max_reply_bytes, started))
            for events, started in zip(sides, first, strict=True)]
        await asyncio.wait(first)
        await self._shares.start()

    async def close(self) -> None:
        """Stop: close both connections; nothing more is published or delivered."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._shares.close()
        self._publisher.close()
        self._subscriber.release(None)

    # -- the Broker protocol -----------------------------------------------------------

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call `handler` for items on `topic`: from this process at once, from others once
        Redis confirmed the subscription (see `ready`)."""
        if self._subscriptions.add(topic, handler):
            self._subscriber.add(topic)

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling `handler` for `topic`; the process leaves the Redis channel once
        nobody here listens."""
        if self._subscriptions.remove(topic, handler):
            self._subscriber.remove(topic)

    async def ready(self, topic: str) -> None:
        """Return once Redis confirmed this process's subscription to `topic`, at once while
        Redis is unreachable, or after `BrokerLimits.join_wait_s` at most."""
        await self._subscriber.ready(topic)

    def publish(self, topic: str, item: Published) -> None:
        """Deliver `item` to this process's subscribers now and queue it for Redis; drop
        and count it for the other processes when Redis is unreachable or the queue full."""
        for handler in self._handlers.get(topic, ()):
            handler(topic, item)
        self._publisher.queue(topic, item)
