"""The embedded broker: one process, delivery by a direct call, no I/O.

`Subscriptions` (which handlers listen to which topic) is shared with the Redis broker.
"""

from __future__ import annotations

from ..core.fanout import Handler, Published, new_node_id

__all__ = ["InMemoryBroker", "Subscriptions"]


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
