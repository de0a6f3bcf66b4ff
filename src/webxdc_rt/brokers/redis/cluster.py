"""`RedisClusterBroker`: the Redis broker on a Redis Cluster. Each channel is one shard
channel, so all its items go through the one primary that serves the channel's hash slot;
the broker keeps a publishing and a subscribing connection to every primary, learns which
serves which slot with `CLUSTER SLOTS`, and learns it again when a node says another serves
a channel now (`MOVED`/`ASK` replies, an `sunsubscribe` it did not ask for when a slot moved)
or a connection to a primary is lost (it may have failed over to its replica). Channels
whose slot moved are subscribed again on their new primary. The pools of pages' budgets
(`cluster_budgets`) follow the same map, over a third connection to every primary."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ...core.fanout import Handler, Published
from ..limits import BrokerLimits
from .address import RedisAddress
from .broker import RedisBroker, RedisBrokerBase
from .cluster_budgets import RedisClusterShares
from .link import keep_link
from .publisher import Publisher
from .subscriber import Subscriber
from .topology import Node, SlotMap, key_slot, learn_slot_map

__all__ = ["RedisClusterBroker", "open_redis_broker"]

_SLOTS_KEPT = 4096
"""Topics whose hash slot is remembered (a publish computes it at most once)."""


def open_redis_broker(address: RedisAddress, limits: BrokerLimits | None = None,
                      max_payload_bytes: int = 128_000
                      ) -> RedisBroker | RedisClusterBroker:
    """The broker for `address`: on a Redis Cluster or on one Redis."""
    kind = RedisClusterBroker if address.cluster else RedisBroker
    return kind(address, limits, max_payload_bytes)


@dataclass(slots=True)
class _NodeLinks:
    """The two connections to one primary and the tasks that keep them open."""

    node: Node
    publisher: Publisher
    subscriber: Subscriber
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    first: list[asyncio.Future[None]] = field(default_factory=list)


class RedisClusterBroker(RedisBrokerBase):
    """The broker of a host process that shares channels with other processes through a
    Redis Cluster. `start()` it in the host's event loop before use and `close()` it after."""

    def __init__(self, address: RedisAddress, limits: BrokerLimits | None = None,
                 max_payload_bytes: int = 128_000, node_id: str | None = None) -> None:
        super().__init__(address, limits, max_payload_bytes, node_id)
        self._reports.expect(frozenset())
        self._owners: list[Node | None] = []
        self._nodes: dict[Node, _NodeLinks] = {}
        self._node_of_topic: dict[str, Node] = {}
        self._slot_of_topic: dict[str, int] = {}
        self._stale = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()
        """Link tasks of primaries that serve no slot any more, until they ended."""
        self.shares = self._shares = RedisClusterShares(address, self.limits,
                                                        self._map_is_stale)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Learn the cluster's primaries and connect to each (in the background from then
        on); return once the first attempts succeeded or failed."""
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.create_task(self._watch(first))
        await first

    async def close(self) -> None:
        """Stop: close every connection; nothing more is published or delivered."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        for links in self._nodes.values():
            self._retire(links)
        self._nodes.clear()
        await self._shares.close()
        await asyncio.gather(*self._retired, return_exceptions=True)

    # -- the Broker protocol -----------------------------------------------------------

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call `handler` for items on `topic`: from this process at once, from others once
        the channel's primary confirmed the subscription (see `ready`)."""
        if self._subscriptions.add(topic, handler):
            links = self._links_of(topic)
            if links is not None:
                self._node_of_topic[topic] = links.node
                links.subscriber.add(topic)

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling `handler` for `topic`; the process leaves the channel once nobody
        here listens."""
        if self._subscriptions.remove(topic, handler):
            node = self._node_of_topic.pop(topic, None)
            if node is not None and node in self._nodes:
                self._nodes[node].subscriber.remove(topic)

    async def ready(self, topic: str) -> None:
        """Return once the channel's primary confirmed this process's subscription, at
        once while it is unreachable, or after `BrokerLimits.join_wait_s` at most."""
        node = self._node_of_topic.get(topic)
        if node is not None and node in self._nodes:
            await self._nodes[node].subscriber.ready(topic)

    def publish(self, topic: str, item: Published) -> None:
        """Deliver `item` to this process's subscribers now and queue it for the channel's
        primary; drop and count it for the other processes when that is unreachable, not
        known yet, or its queue full."""
        for handler in self._handlers.get(topic, ()):
            handler(topic, item)
        links = self._links_of(topic)
        if links is None:
            self.counts.dropped += 1
        else:
            links.publisher.queue(topic, item)

    # -- the slot map ------------------------------------------------------------------

    def _links_of(self, topic: str) -> _NodeLinks | None:
        """The connections to the primary of `topic`'s slot; None while none is known."""
        slot = self._slot_of_topic.get(topic)
        if slot is None:
            if len(self._slot_of_topic) >= _SLOTS_KEPT:
                self._slot_of_topic.clear()
            slot = self._slot_of_topic[topic] = key_slot(self._channel(topic))
        if not self._owners:
            return None
        node = self._owners[slot]
        return self._nodes.get(node) if node is not None else None

    def _map_is_stale(self) -> None:
        """A node said another serves a channel now: learn the slot map again."""
        self._stale.set()

    async def _watch(self, first: asyncio.Future[None]) -> None:
        """Learn the slot map, and again whenever it went stale; while a primary is
        unreachable (a failover takes the cluster a while), ask again with backoff."""
        delay = self.limits.reconnect_min_s
        while True:
            self._stale.clear()
            # Primaries connected to now first: a dead one may take a timeout to refuse.
            known = [*(node for node, links in self._nodes.items()
                       if links.publisher.link is not None),
                     (self.address.host, self.address.port), *self.address.seeds,
                     *self._nodes]
            learned = await learn_slot_map(self.address, self.limits, known)
            if isinstance(learned, str):
                self._reports.unreachable(f"no node gave the slot map: {learned}")
            else:
                starting = self._apply(learned)
                if starting:
                    await asyncio.wait(starting)
            if not first.done():
                first.set_result(None)
            if self.connected:
                delay = self.limits.reconnect_min_s
                await self._stale.wait()
            else:
                try:
                    await asyncio.wait_for(self._stale.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.limits.reconnect_max_s)
            # However often nodes say the map is stale, learn it at most this often.
            await asyncio.sleep(self.limits.reconnect_min_s)

    def _apply(self, learned: SlotMap) -> list[asyncio.Future[None]]:
        """Use `learned`: connect to new primaries, leave those that serve no slot, and
        subscribe again where a channel's slot moved; the first attempts of new links."""
        self._owners = learned.owners
        primaries = learned.nodes
        starting = self._shares.use(learned)
        for node in primaries - set(self._nodes):
            starting += self._start_node(node).first
        for node in set(self._nodes) - primaries:
            self._retire(self._nodes.pop(node))
        self._reports.expect(frozenset(
            side for node in primaries for side in self._sides(node)))
        for topic, node in list(self._node_of_topic.items()):
            now = self._links_of(topic)
            if now is None or now.node == node:
                continue
            if node in self._nodes:
                self._nodes[node].subscriber.remove(topic, tell_redis=False)
            self._node_of_topic[topic] = now.node
            now.subscriber.add(topic)
        for topic in self._handlers.keys() - self._node_of_topic.keys():
            if (first := self._links_of(topic)) is not None:  # no primary known before
                self._node_of_topic[topic] = first.node
                first.subscriber.add(topic)
        return starting

    @staticmethod
    def _sides(node: Node) -> tuple[str, str]:
        return f"publisher {node[0]}:{node[1]}", f"subscriber {node[0]}:{node[1]}"

    def _start_node(self, node: Node) -> _NodeLinks:
        """Connect to primary `node` (both connections, kept open in the background)."""
        publish_side, subscribe_side = self._sides(node)
        links = _NodeLinks(
            node,
            Publisher(self._channel, self._own_prefix, self.limits, self.counts,
                      self._reports, publish_side, self._map_is_stale),
            Subscriber(self._channel, self._handlers, self._own_prefix,
                       self._max_payload_bytes, self.limits, self.counts, self._reports,
                       subscribe_side, self._map_is_stale, channels_per_command=1))
        loop = asyncio.get_running_loop()
        address = self.address.at(*node)
        for events in (links.publisher, links.subscriber):
            started: asyncio.Future[None] = loop.create_future()
            links.first.append(started)
            links.tasks.append(loop.create_task(keep_link(
                address, self.limits, _Lost(events, self._map_is_stale),
                self._max_reply_bytes, started)))
        self._nodes[node] = links
        return links

    def _retire(self, links: _NodeLinks) -> None:
        """Close the connections to a primary (`close` waits until their tasks ended)."""
        for task in links.tasks:
            task.cancel()
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        links.publisher.close()
        links.subscriber.release(None)


class _Lost:
    """A node's link events, with the slot map marked stale when the link is lost (the node
    may have failed over to its replica, or left the cluster)."""

    def __init__(self, events: Publisher | Subscriber, stale: Callable[[], None]) -> None:
        self._events = events
        self._stale = stale
        self.on_reply = events.on_reply
        self.link_up = events.link_up
        self.link_failed = events.link_failed
        self.link_closed = events.link_closed

    def link_lost(self, reason: str) -> None:
        """The link broke: pass it on, and learn the slot map again."""
        self._events.link_lost(reason)
        self._stale()
