"""Fan-out of realtime items between host processes.

A host process keeps its own connections; the broker carries every published item to
every process that has a connection joined to the same channel, the publishing process
included. Topics are plain strings so that any pub/sub system can carry them.

`InMemoryBroker` is the embedded default: one process, delivery by a direct call, no I/O.
`redis_broker.RedisBroker` carries items between processes through Redis; its settings
(`BrokerLimits`) live here so that the host's settings name them without importing it.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["Published", "Handler", "Broker", "InMemoryBroker", "Subscriptions", "BrokerLimits",
           "new_node_id"]

MiB = 1024 * 1024


def new_node_id() -> str:
    """A name for this host process in the items it publishes: 16 random hex digits, so
    that processes sharing a broker never take one another's items for their own."""
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class BrokerLimits:
    """The bounds of a networked broker (Redis), with their defaults; the in-memory broker
    has no queue and ignores them."""

    max_queued_bytes: int = 16 * MiB
    """Bytes of items waiting to be written to Redis; an item that would go over is
    dropped and counted (realtime promises no delivery), so a slow or stalled Redis costs
    a bounded amount of memory and never holds up local delivery."""
    connect_timeout_s: float = 5.0
    """How long one attempt to connect to Redis may take."""
    reconnect_min_s: float = 0.1
    """The first wait before connecting again after Redis was lost; it doubles after each
    failed attempt."""
    reconnect_max_s: float = 5.0
    """The longest wait between two attempts to reach Redis."""
    join_wait_s: float = 1.0
    """How long a join waits for Redis to confirm this process's subscription to its
    channel before the page is told it joined anyway (items from other processes reach it
    once the subscription is in place). No wait while Redis is unreachable."""

    def __post_init__(self) -> None:
        for name in ("max_queued_bytes", "connect_timeout_s", "reconnect_min_s",
                     "reconnect_max_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not (self.join_wait_s >= 0 and math.isfinite(self.join_wait_s)):
            raise ValueError(f"join_wait_s must not be negative, got {self.join_wait_s}")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")


class Published(NamedTuple):
    """One realtime item on its way to the receivers of a topic.

    `origin` names the host process of the sender and `sender` the sender's connection in
    that process, so that the sender alone can be left out of the delivery (no echo).
    A named tuple: one is made per item, and a tuple is the cheapest immutable record.
    """

    origin: str
    sender: int
    payload: bytes


Handler = Callable[[str, Published], None]
"""Called with the topic and the item, once for every item published on a subscribed topic."""


class Broker(Protocol):
    """What the realtime core needs from a fan-out backend.

    `publish` must not block and must keep the order of one publisher's items per topic.
    `node_id` names this process in what it publishes (`Published.origin`).
    """

    node_id: str

    async def ready(self, topic: str) -> None:
        """Return once items published on `topic` by other processes reach this process's
        subscription (at once where nothing needs confirming), or once waiting no longer
        helps; never raises."""

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Start calling `handler` for items published on `topic`."""

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling `handler` for `topic`; unknown pairs are ignored."""

    def publish(self, topic: str, item: Published) -> None:
        """Hand `item` to every handler subscribed to `topic`."""


class Subscriptions:
    """Which handlers of this process listen to which topic. `handlers` is read on every
    item; its tuples are replaced on change, never changed, so a handler may (un)subscribe
    while an item is being handed out."""

    __slots__ = ("handlers",)

    def __init__(self) -> None:
        self.handlers: dict[str, tuple[Handler, ...]] = {}

    def add(self, topic: str, handler: Handler) -> bool:
        """Add `handler` to `topic` (once per pair); True when it is the topic's first."""
        handlers = self.handlers.get(topic, ())
        if handler in handlers:
            return False
        self.handlers[topic] = (*handlers, handler)
        return not handlers

    def remove(self, topic: str, handler: Handler) -> bool:
        """Remove `handler` from `topic`, forgetting the topic once nobody listens; True
        when this removed the topic's last handler."""
        handlers = self.handlers.get(topic, ())
        if handler not in handlers:
            return False
        remaining = tuple(h for h in handlers if h != handler)
        if remaining:
            self.handlers[topic] = remaining
            return False
        del self.handlers[topic]
        return True


class InMemoryBroker:
    """A broker for a single host process: publishing calls the subscribers directly."""

    def __init__(self, node_id: str | None = None) -> None:
        self.node_id = node_id or new_node_id()
        self._subscriptions = Subscriptions()
        self._handlers = self._subscriptions.handlers

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Start calling `handler` for items published on `topic` (once per pair)."""
        self._subscriptions.add(topic, handler)

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling `handler` for `topic`; forget the topic once nobody listens."""
        self._subscriptions.remove(topic, handler)

    async def ready(self, topic: str) -> None:
        """A subscription here takes effect at once: nothing to wait for."""

    def publish(self, topic: str, item: Published) -> None:
        """Call every handler of `topic` now, in subscription order."""
        for handler in self._handlers.get(topic, ()):
            handler(topic, item)

    def topic_count(self) -> int:
        """How many topics have at least one subscriber (for tests and metrics)."""
        return len(self._handlers)
