"""Realtime channel rules, with no I/O.

A *connection* is one live link from a page (a browser tab) or a Python peer. Each
connection belongs to exactly one channel, the one of its shared app copy in its chat, fixed
when the connection is opened after the invite was checked: a connection can therefore
never name, join or reach another channel (isolation, R13).

The hub decides who is joined, checks every item a connection sends (joined, size, the
page's send budget) and, for every item that reaches the channel, picks the receivers:
every joined connection of the channel except the sender (R10, R11, R12, R15). It returns
them; moving the bytes (and carrying items between processes through a broker) is the I/O
shell's job, so the hub is never running while items are written.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Protocol

from .budget import SendBudget
from .errors import Refusal
from .fanout import Published
from .frames import Frame, binary_frame, payload_part
from .limits import RealtimeLimits
from .wire import ITEM_HEADER_BYTES

__all__ = [
    "RealtimeError",
    "AlreadyJoined",
    "NotJoined",
    "PayloadTooLarge",
    "ItemTooShort",
    "ALREADY_JOINED",
    "NOT_JOINED",
    "NOT_JOINED_TO_SEND",
    "Sink",
    "Connection",
    "RealtimeHub",
    "deliver_bare",
]

_new_tuple = tuple.__new__

ALREADY_JOINED = "already joined the realtime channel; leave it first"
NOT_JOINED = "not joined to the realtime channel"
NOT_JOINED_TO_SEND = "send refused: not joined to the realtime channel"
"""What the client is told of each mistake (the hub's and the session's refusals alike)."""


class RealtimeError(Refusal):
    """A request the realtime rules refuse; `code` is stable and sent to the client."""

    code = "realtime-error"


class AlreadyJoined(RealtimeError):
    """The connection joined its channel already and has not left it (R3)."""

    code = "already-joined"


class NotJoined(RealtimeError):
    """The connection sent or left without being joined (R15)."""

    code = "not-joined"


class PayloadTooLarge(RealtimeError):
    """The item is longer than the largest allowed (R8)."""

    code = "payload-too-large"


class ItemTooShort(RealtimeError):
    """A stamped connection sent an item shorter than its stamp."""

    code = "item-too-short"


class Sink(Protocol):
    """Where the realtime items for one connection go: what the I/O shell hands each
    receiver the hub names (`host.outbound.Outbound` on a live host)."""

    def deliver(self, parts: Frame, size: int, item: Published) -> None:
        """Send `item`, already encoded as one frame: the buffers `parts`, `size` bytes in
        all. It must not block; a receiver that does not keep up loses items."""


class Connection:
    """One live link to the hub, and its `sink`: where its receivers' items go.

    Its `budget` is charged for every item it sends; it is the budget of the connection's
    member page, shared by every connection of that page, so more sockets never buy more.
    """

    __slots__ = ("id", "topic", "sink", "joined", "budget", "stamped")

    def __init__(self, conn_id: int, topic: str, sink: Sink, budget: SendBudget) -> None:
        self.id = conn_id
        self.topic = topic
        self.sink = sink
        self.joined = False
        self.budget = budget
        self.stamped = False
        """Its items carry their stamp on the wire (its join said so): it is sent them
        as published; the others are sent the payload alone."""

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.topic!r} joined={self.joined}>"


class RealtimeHub:
    """The realtime state of one host process: its connections and who is joined where."""

    def __init__(self, limits: RealtimeLimits | None = None, node_id: str | None = None) -> None:
        self.limits = limits or RealtimeLimits()
        self.node_id = node_id or uuid.uuid4().hex
        """Names this process in the items it publishes (to tell its own senders)."""
        self._ids = itertools.count(1)
        self._connections: dict[int, Connection] = {}
        self._joined: dict[str, dict[int, Connection]] = {}
        # Receivers per channel and sender (None: a sender in another process), made once
        # per change of the channel's members, so fanning an item out allocates nothing.
        self._receivers: dict[str, dict[int | None, tuple[Connection, ...]]] = {}

    # -- connections -------------------------------------------------------------------

    def open(self, topic: str, sink: Sink, now: float,
             budget: SendBudget | None = None) -> Connection:
        """Register a new link bound to the channel `topic`; it starts not joined. It sends
        on `budget` (its page's), or on a budget of its own when none is given."""
        budget = budget or SendBudget.for_limits(self.limits, now)
        conn = Connection(next(self._ids), topic, sink, budget)
        self._connections[conn.id] = conn
        return conn

    def close(self, conn: Connection) -> bool:
        """Forget a link that ended; a lost link counts as leaving (R17). Idempotent.
        True when its channel has no member left in this process (stop listening to it)."""
        if self._connections.pop(conn.id, None) is None:
            return False
        return conn.joined and self._remove_from_channel(conn)

    def join(self, conn: Connection) -> bool:
        """Join the connection's channel; from now on it receives what others send (R12).
        True when it is the channel's first member in this process (start listening)."""
        if conn.joined:
            raise AlreadyJoined(ALREADY_JOINED)
        if conn.id not in self._connections:
            raise RealtimeError("connection is closed")
        members = self._joined.setdefault(conn.topic, {})
        members[conn.id] = conn
        conn.joined = True
        self._receivers.pop(conn.topic, None)
        return len(members) == 1

    def leave(self, conn: Connection) -> bool:
        """Leave the channel; nothing more is delivered to this connection (R15). True
        when the channel has no member left in this process."""
        if not conn.joined:
            raise NotJoined(NOT_JOINED)
        return self._remove_from_channel(conn)

    def send(self, conn: Connection, data: bytes, now: float,
             stamp: bytes | None = None) -> tuple[Published, float]:
        """Check one item from `conn` and charge its page's budget: the item to publish to
        the channel, and how many seconds the caller must wait before reading the
        connection's next item (0.0 when within budget). The item is `stamp` and the
        payload `data`, or, with no `stamp`, `data` is its stamp (`wire.items`) then its
        payload, as a stamped connection sends it. Raises `NotJoined`, `ItemTooShort` or
        `PayloadTooLarge` (on the payload, not the stamp) when the item breaks a rule (R7,
        R8, R15)."""
        if not conn.joined:
            raise NotJoined(NOT_JOINED_TO_SEND)
        size = len(data) if stamp is not None else len(data) - ITEM_HEADER_BYTES
        if size < 0:
            raise ItemTooShort(f"realtime item of {len(data)} bytes refused: this "
                               f"connection's items start with a {ITEM_HEADER_BYTES}-byte "
                               "stamp")
        if size > self.limits.max_payload_bytes:
            raise PayloadTooLarge(
                f"realtime item of {size} bytes refused: the limit is "
                f"{self.limits.max_payload_bytes} bytes"
            )
        # tuple.__new__ builds the named tuple without its Python-level __new__: this runs
        # once per realtime item.
        if stamp is None:
            item = _new_tuple(Published, (self.node_id, conn.id, data[:ITEM_HEADER_BYTES],
                                          payload_part(data, ITEM_HEADER_BYTES)))
        else:
            item = _new_tuple(Published, (self.node_id, conn.id, stamp, data))
        return item, conn.budget.charge(size, now)

    def receivers(self, topic: str, item: Published) -> tuple[Connection, ...]:
        """Who receives `item`, published to `topic`: every connection of this process
        joined there, except its sender (R10, R11)."""
        sender = item.sender if item.origin == self.node_id else None
        try:
            return self._receivers[topic][sender]
        except KeyError:
            pass
        members = self._joined.get(topic)
        if not members:
            return ()
        receivers = tuple(conn for conn in members.values() if conn.id != sender)
        self._receivers.setdefault(topic, {})[sender] = receivers
        return receivers

    # -- queries -----------------------------------------------------------------------

    def joined_count(self, topic: str) -> int:
        """How many connections of this process are joined to `topic`."""
        return len(self._joined.get(topic, ()))

    def connection_count(self) -> int:
        """How many links this process holds, joined or not."""
        return len(self._connections)

    # -- internals ---------------------------------------------------------------------

    def _remove_from_channel(self, conn: Connection) -> bool:
        conn.joined = False
        self._receivers.pop(conn.topic, None)
        members = self._joined.get(conn.topic)
        if members is None:
            return False
        members.pop(conn.id, None)
        if members:
            return False
        del self._joined[conn.topic]
        return True


def deliver_bare(conn: Connection, item: Published) -> None:
    """Hand `item` to a receiver whose join did not ask for stamps: its payload alone, in a
    frame of its own (stamped receivers share the one frame of the item and its stamp)."""
    parts, size = binary_frame(item.payload)
    conn.sink.deliver(parts, size, item)
