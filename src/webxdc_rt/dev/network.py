"""The simulated network on the host's delivery path: every realtime item and status update
the host hands to a receiver passes here, is counted and sampled for the log, and is handed
over at once, later, or never, as the faults in force say (`faults.FaultPlan`).

A realtime item for a receiver is lost, handed over at once, or held on a timer line (a heap
by due time) and handed over later; a status update for a listener whose link is down waits
in a bounded queue until the link is back. Transports are never touched, so what the app
sees is what a real network would give it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.fanout import Published
from ..core.frames import Frame
from ..core.realtime import Connection, deliver_bare
from ..core.updates import Update
from ..host.feed import FeedSocket
from ..model.chats import Page
from .faults import FaultLimits, FaultPlan
from .traffic import PeerCounts, TrafficLog, preview

__all__ = ["Network"]


@dataclass
class _HeldUpdates:
    """Status updates waiting for one listener's link: (sender label, listener, frame,
    not before)."""

    queue: deque[tuple[str, FeedSocket, bytes, float]] = field(default_factory=deque)
    overflowed: bool = False


@dataclass(frozen=True, slots=True)
class _Route:
    """What the log needs of one sender's receivers, kept while they stay the same."""

    receivers: tuple[Connection, ...]
    sender: str
    sender_name: str
    labels: list[str]
    names: list[str]
    counts: list[PeerCounts]


_HeldItem = tuple[float, int, Connection, Frame, int, Published, str]
"""A realtime item held for a receiver: (due time, sequence, receiver, frame, frame size,
item, receiver's label); the sequence keeps items due at once in the order they came."""


class Network:
    """The faults between the peers of one chat, applied to what the host delivers.

    `page_of_connection` names the page of a host connection (None once it is gone);
    `disconnect(label, reason)` closes a page's sockets, for a listener that was held more
    updates than it may be, so that it reads them from the store when it reconnects."""

    def __init__(self, limits: FaultLimits, traffic: TrafficLog, preview_bytes: int,
                 page_of_connection: Callable[[int], Page | None],
                 disconnect: Callable[[str, str], Coroutine[Any, Any, int]]) -> None:
        self.limits = limits
        self.traffic = traffic
        self.plan = FaultPlan(limits)
        self.names: Mapping[str, str] = {}
        """The member name of each page label, for the log."""
        self._preview_bytes = preview_bytes
        self._page_of_connection = page_of_connection
        self._disconnect = disconnect
        self._labels: dict[int, str] = {}
        self._routes: dict[int, _Route] = {}
        self._held_items: list[_HeldItem] = []
        self._held_per_receiver: Counter[str] = Counter()
        self._sequence = itertools.count()
        self._item_timer: asyncio.TimerHandle | None = None
        self._held_updates: dict[str, _HeldUpdates] = {}
        self._update_timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[int]] = set()

    def rename(self, names: Mapping[str, str]) -> None:
        """The peers changed: `names` maps each page label to its member name now."""
        self.names = names
        self._labels.clear()
        self._routes.clear()

    def reset(self) -> None:
        """A new chat: nothing held, no fault in force."""
        self._held_items.clear()
        self._held_per_receiver.clear()
        self._held_updates.clear()
        self._routes.clear()
        self.plan = FaultPlan(self.limits)

    def forget(self, label: str) -> None:
        """A peer left the chat: its faults and the updates held for it go."""
        self.plan.forget(label)
        self._held_updates.pop(label, None)

    def close(self) -> None:
        """Stop the timers (the loop is closing)."""
        for timer in (self._item_timer, self._update_timer):
            if timer is not None:
                timer.cancel()

    # -- realtime items ------------------------------------------------------------------

    def route_item(self, topic: str, item: Published, receivers: tuple[Connection, ...],
                   parts: Frame, size: int) -> None:
        """Every realtime item for this host's receivers: counted, sampled, and handed to
        each receiver now, later, or never, as the faults say."""
        now = asyncio.get_running_loop().time()
        traffic, plan = self.traffic, self.plan
        # Who the receivers are is worked out once per sender and set of receivers: the hub
        # hands the same tuple again while nobody joins or leaves.
        route = self._routes.get(item.sender)
        if route is None or route.receivers is not receivers:
            route = self._routes[item.sender] = self._new_route(item.sender, receivers)
        sender, labels, receiver_names = route.sender, route.labels, route.names
        payload = item.payload
        payload_size = len(payload)
        traffic.item(route.sender_name, receiver_names, payload, payload_size, now)
        if not plan.active:
            for conn in receivers:
                if conn.stamped:
                    conn.sink.deliver(parts, size, item)
                else:
                    deliver_bare(conn, item)
            for counts in route.counts:
                counts.items_received += 1
                counts.bytes_received += payload_size
            return
        for conn, label, name in zip(receivers, labels, receiver_names, strict=True):
            fate = plan.item_fate(sender, label, size, now)
            if isinstance(fate, str):
                traffic.lost(name, fate)
            elif fate <= 0:
                if conn.stamped:
                    conn.sink.deliver(parts, size, item)
                else:
                    deliver_bare(conn, item)
                traffic.delivered(name, payload_size)
            elif self._held_per_receiver[label] >= self.limits.max_held_items:
                traffic.lost(name, "held-full")
            else:
                self._held_per_receiver[label] += 1
                heapq.heappush(self._held_items, (now + fate, next(self._sequence), conn, parts,
                                                  size, item, label))
        self._arm_item_timer()

    def _new_route(self, sender_id: int, receivers: tuple[Connection, ...]) -> _Route:
        names = self.names
        sender = self._label_of(sender_id)
        labels = [self._label_of(conn.id) for conn in receivers]
        receiver_names = [names.get(label, label) for label in labels]
        if len(self._routes) > 4096:  # closed connections are never asked for again
            self._routes.clear()
        return _Route(receivers, sender, names.get(sender, sender), labels, receiver_names,
                      [self.traffic.peer(name) for name in receiver_names])

    def _label_of(self, conn_id: int) -> str:
        label = self._labels.get(conn_id)
        if label is None:
            page = self._page_of_connection(conn_id)
            label = page.label if page is not None else f"#{conn_id}"
            if len(self._labels) > 4096:  # closed connections are never asked for again
                self._labels.clear()
            self._labels[conn_id] = label
        return label

    def _arm_item_timer(self) -> None:
        if not self._held_items:
            return
        due = self._held_items[0][0]
        timer = self._item_timer
        if timer is not None and timer.when() <= due:
            return
        if timer is not None:
            timer.cancel()
        self._item_timer = asyncio.get_running_loop().call_at(due, self._release_items)

    def _release_items(self) -> None:
        """Hand over every held item that is due, then wait for the next."""
        self._item_timer = None
        now = asyncio.get_running_loop().time()
        held = self._held_items
        while held and held[0][0] <= now:
            _, _, conn, parts, size, item, label = heapq.heappop(held)
            self._held_per_receiver[label] -= 1
            if conn.stamped:
                conn.sink.deliver(parts, size, item)
            else:
                deliver_bare(conn, item)
            self.traffic.delivered(self.names.get(label, label),
                                   len(item.payload))
        self._arm_item_timer()

    # -- status updates ------------------------------------------------------------------

    def route_update(self, sender: Page, update: Update,
                     frames: list[tuple[FeedSocket, bytes]]) -> None:
        """Every stored status update: to each listener now, after its latency, or once its
        link to the sender is back; a listener's own updates reach it at once."""
        now = asyncio.get_running_loop().time()
        self.traffic.event("update", now, sender=self.names.get(sender.label, sender.label),
                           size=len(update.payload_json),
                           **preview(update.payload_json.encode(), self._preview_bytes))
        for listener, frame in frames:
            receiver = listener.page.label
            held = self._held_updates.get(receiver)
            if receiver == sender.label or (
                    held is None and self.plan.connected(sender.label, receiver)
                    and not self.plan.update_delay(receiver)):
                listener.sink.write((frame,), len(frame))
                continue
            if held is None:
                held = self._held_updates[receiver] = _HeldUpdates()
            if len(held.queue) >= self.limits.max_held_updates:
                held.queue.clear()
                held.overflowed = True
            held.queue.append((sender.label, listener, frame,
                               now + self.plan.update_delay(receiver)))
        self.release_updates()

    def release_updates(self) -> None:
        """Hand each listener the held updates whose link is up and whose latency passed,
        in order; wait for the next one due. Called again whenever the faults change."""
        if self._update_timer is not None:
            self._update_timer.cancel()
            self._update_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        next_due = math.inf
        for receiver, held in list(self._held_updates.items()):
            next_due = min(next_due, self._release_held(receiver, held, now))
            if held.overflowed and self.plan.connected(receiver, receiver):
                # Too many were held to keep: the listener reads them from the store when
                # it reconnects.
                held.overflowed = False
                task = loop.create_task(self._disconnect(receiver, "updates were dropped"))
                self._closing.add(task)  # the loop holds tasks weakly
                task.add_done_callback(self._closing.discard)
            if not held.queue and not held.overflowed:
                del self._held_updates[receiver]
        if next_due < math.inf:
            self._update_timer = loop.call_at(next_due, self.release_updates)

    def _release_held(self, receiver: str, held: _HeldUpdates, now: float) -> float:
        """Hand over `receiver`'s held updates that may go now, in order; when the next one
        is due (infinity: none is, or its link is down)."""
        queue = held.queue
        while queue:
            sender, listener, frame, not_before = queue[0]
            if not self.plan.connected(sender, receiver):
                break
            if not_before > now:
                return not_before
            queue.popleft()
            listener.sink.write((frame,), len(frame))
        return math.inf
