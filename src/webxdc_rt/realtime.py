"""Realtime channel rules, with no I/O.

A *connection* is one live link from a page (a browser tab) or a Python peer. Each
connection belongs to exactly one channel, the one of its shared app copy in its chat, fixed
when the connection is opened after the invite was checked: a connection can therefore
never name, join or reach another channel (isolation, R13).

The hub decides who is joined, checks every item a connection sends (joined, size, rate)
and, for every item that reaches the channel through the broker, picks the receivers: every
joined connection of the channel except the sender (R10, R11, R12, R15). Moving the bytes is
the caller's job: the hub hands each delivery to a `Deliver` callback given by the I/O shell,
which encodes the item once and writes it to every receiver.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from .broker import Broker, Published
from .budget import SendBudget

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "RealtimeLimits",
    "RealtimeError",
    "AlreadyJoined",
    "NotJoined",
    "PayloadTooLarge",
    "Connection",
    "Deliver",
    "RealtimeHub",
]

MAX_PAYLOAD_BYTES = 128_000
"""The largest realtime item the webxdc spec allows, in bytes."""

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RealtimeLimits:
    """The limits the host enforces on realtime items, with their defaults.

    The send rate is counted per member page (all its connections together) and enforced
    by backpressure: a connection whose page sends faster is not read from until the page
    is back within its budget, so a flood is slowed to the rate and costs other peers
    nothing.
    """

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    """Largest item a connection may send (the spec's limit, R8)."""
    send_items_per_s: float = 2000.0
    """Items one page may send per second, sustained."""
    send_items_burst: int = 2000
    """Items one page may send at once before the rate applies."""
    send_bytes_per_s: float = 32 * MiB
    """Payload bytes one page may send per second, sustained."""
    send_bytes_burst: int = 32 * MiB
    """Payload bytes one page may send at once before the rate applies."""

    def __post_init__(self) -> None:
        for name in ("max_payload_bytes", "send_items_burst", "send_bytes_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("send_items_per_s", "send_bytes_per_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.send_bytes_burst < self.max_payload_bytes:
            raise ValueError("send_bytes_burst must be at least max_payload_bytes")


class RealtimeError(Exception):
    """A request the realtime rules refuse; `code` is stable and sent to the client."""

    code: ClassVar[str] = "realtime-error"


class AlreadyJoined(RealtimeError):
    """The connection joined its channel already and has not left it (R3)."""

    code = "already-joined"


class NotJoined(RealtimeError):
    """The connection sent or left without being joined (R15)."""

    code = "not-joined"


class PayloadTooLarge(RealtimeError):
    """The item is longer than the largest allowed (R8)."""

    code = "payload-too-large"


class Connection:
    """One live link to the hub. `sink` is whatever the I/O shell needs to write to it.

    Its `budget` is charged for every item it sends; it is the budget of the connection's
    member page, shared by every connection of that page, so more sockets never buy more.
    """

    __slots__ = ("id", "topic", "sink", "joined", "budget")

    def __init__(self, conn_id: int, topic: str, sink: Any, budget: SendBudget) -> None:
        self.id = conn_id
        self.topic = topic
        self.sink = sink
        self.joined = False
        self.budget = budget

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.topic!r} joined={self.joined}>"


Deliver = Callable[[Iterable[Connection], bytes, "Connection | None"], None]
"""Writes one item to every given connection but the third argument (the sender, when it
is one of them); supplied by the I/O shell, which encodes the item once for all."""


class RealtimeHub:
    """The realtime state of one host process: its connections and who is joined where."""

    def __init__(
        self,
        broker: Broker,
        deliver: Deliver,
        limits: RealtimeLimits | None = None,
        node_id: str | None = None,
    ) -> None:
        self.broker = broker
        self.limits = limits or RealtimeLimits()
        self.node_id = node_id or uuid.uuid4().hex
        self._deliver = deliver
        self._ids = itertools.count(1)
        self._connections: dict[int, Connection] = {}
        self._joined: dict[str, dict[int, Connection]] = {}

    # -- connections -------------------------------------------------------------------

    def new_budget(self, now: float) -> SendBudget:
        """A fresh send budget with this hub's limits, for one member page."""
        limits = self.limits
        return SendBudget(limits.send_items_per_s, limits.send_items_burst,
                          limits.send_bytes_per_s, limits.send_bytes_burst, now)

    def open(self, topic: str, sink: Any, now: float,
             budget: SendBudget | None = None) -> Connection:
        """Register a new link bound to the channel `topic`; it starts not joined. It sends
        on `budget` (its page's), or on a budget of its own when none is given."""
        conn = Connection(next(self._ids), topic, sink, budget or self.new_budget(now))
        self._connections[conn.id] = conn
        return conn

    def close(self, conn: Connection) -> None:
        """Forget a link that ended; a lost link counts as leaving (R17). Idempotent."""
        if self._connections.pop(conn.id, None) is None:
            return
        if conn.joined:
            self._remove_from_channel(conn)

    def join(self, conn: Connection) -> None:
        """Join the connection's channel; from now on it receives what others send (R12)."""
        if conn.joined:
            raise AlreadyJoined("already joined the realtime channel; leave it first")
        self._require_open(conn)
        members = self._joined.get(conn.topic)
        if members is None:
            members = self._joined[conn.topic] = {}
            self.broker.subscribe(conn.topic, self._on_published)
        members[conn.id] = conn
        conn.joined = True

    def leave(self, conn: Connection) -> None:
        """Leave the channel; nothing more is delivered to this connection (R15)."""
        if not conn.joined:
            raise NotJoined("not joined to the realtime channel")
        self._remove_from_channel(conn)

    def send(self, conn: Connection, payload: bytes, now: float) -> float:
        """Publish one item from `conn` to its channel.

        Returns how many seconds the caller must wait before reading the connection's next
        item, to hold it to its send rate (0.0 when within budget). Raises `NotJoined` or
        `PayloadTooLarge` and publishes nothing when the item breaks a rule (R7, R8, R15).
        """
        if not conn.joined:
            raise NotJoined("send refused: not joined to the realtime channel")
        size = len(payload)
        if size > self.limits.max_payload_bytes:
            raise PayloadTooLarge(
                f"realtime item of {size} bytes refused: the limit is "
                f"{self.limits.max_payload_bytes} bytes"
            )
        wait = conn.budget.charge(size, now)
        self.broker.publish(conn.topic, Published(self.node_id, conn.id, payload))
        return wait

    # -- queries -----------------------------------------------------------------------

    def joined_count(self, topic: str) -> int:
        """How many connections of this process are joined to `topic`."""
        return len(self._joined.get(topic, ()))

    def connection_count(self) -> int:
        """How many links this process holds, joined or not."""
        return len(self._connections)

    # -- internals ---------------------------------------------------------------------

    def _require_open(self, conn: Connection) -> None:
        if conn.id not in self._connections:
            raise RealtimeError("connection is closed")

    def _remove_from_channel(self, conn: Connection) -> None:
        conn.joined = False
        members = self._joined.get(conn.topic)
        if members is None:
            return
        members.pop(conn.id, None)
        if not members:
            del self._joined[conn.topic]
            self.broker.unsubscribe(conn.topic, self._on_published)

    def _on_published(self, topic: str, item: Published) -> None:
        members = self._joined.get(topic)
        if not members:
            return
        sender = members.get(item.sender) if item.origin == self.node_id else None
        if sender is not None and len(members) == 1:
            return  # alone in the channel: nobody to deliver to
        # A snapshot: delivering may cut a slow receiver off, which changes `members`.
        self._deliver(tuple(members.values()), item.payload, sender)
