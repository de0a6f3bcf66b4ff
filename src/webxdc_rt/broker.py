"""Fan-out of realtime items between host processes.

A host process keeps its own connections; the broker carries every published item to
every process that has a connection joined to the same channel, the publishing process
included. Topics are plain strings so that any pub/sub system (Redis later) can carry them.

`InMemoryBroker` is the embedded default: one process, delivery by a direct call, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

__all__ = ["Published", "Handler", "Broker", "InMemoryBroker"]


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
    """

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Start calling `handler` for items published on `topic`."""

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling `handler` for `topic`; unknown pairs are ignored."""

    def publish(self, topic: str, item: Published) -> None:
        """Hand `item` to every handler subscribed to `topic`."""


class InMemoryBroker:
    """A broker for a single host process: publishing calls the subscribers directly."""

    def __init__(self) -> None:
        # Tuples, replaced on change: a handler may (un)subscribe while a publish runs.
        self._handlers: dict[str, tuple[Handler, ...]] = {}

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Start calling `handler` for items published on `topic` (once per pair)."""
        handlers = self._handlers.get(topic, ())
        if handler not in handlers:
            self._handlers[topic] = (*handlers, handler)

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling `handler` for `topic`; forget the topic once nobody listens."""
        handlers = self._handlers.get(topic, ())
        if handler not in handlers:
            return
        remaining = tuple(h for h in handlers if h != handler)
        if remaining:
            self._handlers[topic] = remaining
        else:
            del self._handlers[topic]

    def publish(self, topic: str, item: Published) -> None:
        """Call every handler of `topic` now, in subscription order."""
        for handler in self._handlers.get(topic, ()):
            handler(topic, item)

    def topic_count(self) -> int:
        """How many topics have at least one subscriber (for tests and metrics)."""
        return len(self._handlers)
