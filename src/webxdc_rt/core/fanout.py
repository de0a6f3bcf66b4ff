"""Fan-out of realtime items: the item record and the seam to a broker.

A host process keeps its own connections; a broker carries every published item to every
process that has a connection joined to the same channel, the publishing process included.
Topics are plain strings so that any pub/sub system can carry them. The brokers themselves
(in memory, Redis) live in `webxdc_rt.brokers`; the core sees only the `Broker` protocol.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import NamedTuple, Protocol

__all__ = ["Published", "Handler", "Broker", "new_node_id"]


def new_node_id() -> str:
    """A name for this host process in the items it publishes: 16 random hex digits, so
    that processes sharing a broker never take one another's items for their own."""
    return secrets.token_hex(8)


class Published(NamedTuple):
    """One realtime item on its way to the receivers of a topic.

    `origin` names the host process of the sender and `sender` the sender's connection in
    that process, so that the sender alone can be left out of the delivery (no echo).
    `stamp` is the item's stamp (`wire.items`, `ITEM_HEADER_BYTES` long), carried beside
    `payload` (the app's bytes) rather than in front of it: the host stamps the items of a
    sender that does not, and a large payload is never copied to put the stamp before it;
    stamped receivers are sent the two one after the other. A large `payload` may be a view
    of the frame it was read from (`frames.COPY_LIMIT`). A named tuple: one is made per
    item, and a tuple is the cheapest immutable record.
    """

    origin: str
    sender: int
    stamp: bytes
    payload: bytes | memoryview


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
