"""What a receiver that does not keep up is sent, and what it loses, with no I/O.

Realtime items are the one droppable class of what the host sends: the spec promises no
delivery for them, and for realtime data (cursors, game state, media chunks) stale is worse
than lost. Status updates, chat messages and control frames are never dropped. So when a
connection's socket has all it may hold, the realtime items for it wait here instead, in an
`ItemQueue`, where three rules apply:

- bounded latency: an item that has waited `max_item_age_s` is dropped instead of sent, so
  what a receiver gets never waited in the host longer than that;
- bounded memory: when more than `max_waiting_bytes` wait, items are dropped, oldest first,
  from the sender with the most bytes waiting, so one member's flood does not crowd out the
  others' items (fairness by sender);
- order: each sender's items leave in the order they came (R16); senders take turns.

What has left the host is beyond its reach: the socket's buffer, the kernel's on both ends,
the browser's own. A receiver that reports what it has read (the bridge and the Python peer
send `received`) has a `ReceiveWindow`: the host keeps what is in flight to it within what
it reads in a fraction of `max_item_age_s` (by the rate it has shown), and drops a waiting
item that would, by that rate, reach it older than `max_item_age_s`. A receiver that does
not report is bounded by its socket only.

The I/O shell (`outbound.Outbound`) decides when the socket has room; everything it needs
to decide what goes or is dropped is here, with the time passed in.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from .frames import Frame
from .limits import DeliveryLimits

__all__ = ["DropCount", "ItemQueue", "ReceiveWindow"]

@dataclass(slots=True)
class DropCount:
    """Realtime items dropped for slow receivers, and why."""

    items: int = 0
    bytes: int = 0
    stale: int = 0
    """Items that waited longer than `max_item_age_s`."""
    crowded: int = 0
    """Items pushed out by `max_waiting_bytes`."""

    def copy(self) -> DropCount:
        """These counts as they are now (cheaper than `dataclasses.replace`: a receiver
        that falls behind takes one at the start of every overload episode)."""
        return DropCount(self.items, self.bytes, self.stale, self.crowded)

    def add(self, size: int, stale: bool) -> None:
        """Count one dropped item of `size` bytes."""
        self.items += 1
        self.bytes += size
        if stale:
            self.stale += 1
        else:
            self.crowded += 1


_Waiting = tuple[float, Frame, int]  # (since when, frame, size)


class ItemQueue:
    """The realtime items waiting in the host for one connection, per sender.

    `counts` are this connection's drops; `shared` are further counts the drops are added
    to as well (its channel's, the host's).
    """

    __slots__ = ("limits", "counts", "shared", "waiting_bytes", "_senders", "_sender_bytes",
                 "episode_started")

    def __init__(self, limits: DeliveryLimits, shared: tuple[DropCount, ...] = ()) -> None:
        self.limits = limits
        self.counts = DropCount()
        self.shared = shared
        self.waiting_bytes = 0
        """Bytes of the items waiting now."""
        self.episode_started: float | None = None
        """When the first item of the current overload episode began to wait; None when
        nothing waits."""
        # Senders in turn order: the next frame goes from the first, who then goes last.
        self._senders: dict[Hashable, deque[_Waiting]] = {}
        self._sender_bytes: dict[Hashable, int] = {}

    def __bool__(self) -> bool:
        return bool(self._senders)

    def __len__(self) -> int:
        return sum(map(len, self._senders.values()))

    def offer(self, sender: Hashable, frame: Frame, size: int, now: float) -> None:
        """An item for this connection from `sender` must wait: keep it, dropping others
        (or itself) when more than `max_waiting_bytes` would wait."""
        if self.episode_started is None:
            self.episode_started = now
        waiting = self._senders.get(sender)
        if waiting is None:
            waiting = self._senders[sender] = deque()
            self._sender_bytes[sender] = 0
        waiting.append((now, frame, size))
        self._sender_bytes[sender] += size
        self.waiting_bytes += size
        while self.waiting_bytes > self.limits.max_waiting_bytes:
            crowd = max(self._sender_bytes, key=self._sender_bytes.__getitem__)
            self._drop_first(crowd, stale=False)

    def take(self, now: float) -> tuple[Frame, int] | None:
        """The next frame to write and its size, senders in turn; items that waited too
        long are dropped on the way. None when nothing (fresh) waits."""
        oldest = now - self.limits.max_item_age_s
        senders = self._senders
        while senders:
            sender = next(iter(senders))
            waiting = senders[sender]
            since, frame, size = waiting[0]
            if since < oldest:
                self._drop_first(sender, stale=True)
                continue
            waiting.popleft()
            self.waiting_bytes -= size
            del senders[sender]
            if waiting:
                senders[sender] = waiting  # to the back of the turn
                self._sender_bytes[sender] -= size
            else:
                del self._sender_bytes[sender]
            return frame, size
        return None

    def clear(self) -> None:
        """Forget every waiting item without counting it as dropped (the connection left
        its channel or is gone: the items belong to nobody)."""
        self._senders.clear()
        self._sender_bytes.clear()
        self.waiting_bytes = 0

    def end_episode(self) -> float | None:
        """Nothing waits any more: the overload episode, if there was one, is over. Returns
        when it started, or None."""
        started, self.episode_started = self.episode_started, None
        return started

    def _drop_first(self, sender: Hashable, stale: bool) -> None:
        waiting = self._senders[sender]
        _, _, size = waiting.popleft()
        self.waiting_bytes -= size
        if waiting:
            self._sender_bytes[sender] -= size
        else:
            del self._senders[sender]
            del self._sender_bytes[sender]
        self.counts.add(size, stale)
        for count in self.shared:
            count.add(size, stale)


_RATE_MEMORY_S = 0.25
"""How long the read rate remembers: older samples weigh less, by exp(-age / this)."""
_SAMPLE_S = 0.05
"""Reports are gathered into samples of at least this long before a rate is read off
them: one report may come right after a pause, or right after another."""
_WINDOW_SHARE = 0.0625
"""The share of `max_item_age_s` a reporting receiver's in-flight bytes may take to read:
small, so that a receiver that suddenly reads slower still gets fresh items in time."""
_DELAY_MARGIN = 1.25
"""The read rate is an estimate and reading is bursty: the time in flight is taken this
much longer than the rate says, so that an item is dropped a little early, not sent late."""
_RESERVE_SHARE = 0.35
"""The share of `max_item_age_s` kept for what the host cannot see of a reporting receiver's
items: how long they took to reach the host, and the receiver's own queue."""


class ReceiveWindow:
    """What is in flight to a receiver that reports what it has read, and how fast it
    reads. Bytes are counted by `wire.frame_bytes`; the caller keeps the count written."""

    __slots__ = ("limits", "reporting", "read", "limit", "rate", "_read_at", "_backlog",
                 "_sample_bytes", "_sample_s", "_sample_busy")

    def __init__(self, limits: DeliveryLimits) -> None:
        self.limits = limits
        self.reporting = False
        """Whether the receiver has reported at all; until then nothing is bounded here."""
        self.read = 0
        """What it reported last."""
        self.limit = limits.min_window_bytes
        """In-flight bytes allowed now: `min_window_bytes` until the rate is known (a
        receiver that reports 0 at once is bounded from its first item)."""
        self.rate: float | None = None
        """Bytes per second it reads, seen while it had more to read than it could; None
        until seen."""
        self._read_at = 0.0
        self._backlog = 0  # what was in flight at the last report
        self._sample_bytes = 0
        self._sample_s = 0.0
        self._sample_busy = True  # whether it had more to read throughout the sample

    def report(self, total: int, written: int, now: float, waiting: bool = False) -> bool:
        """The receiver says it has read `total` bytes, of `written` sent, while items for
        it are `waiting` or not. True when that frees room (a report that goes back, or
        claims more than was sent, changes nothing beyond what was sent)."""
        total = min(total, written)
        if not self.reporting:
            self.reporting = True
        elif total <= self.read:
            return False
        else:
            read = total - self.read
            self._sample(read, now - self._read_at)
            if waiting and total == written:
                # It read all it was let have while more waited: the window, not the
                # receiver, held it back. Let it have as much more as it just read, as
                # TCP's slow start does, up to what its rate allows once that is known.
                self.limit = min(self._rate_limit(), self.limit + read)
        self.read, self._read_at = total, now
        self._backlog = written - total
        return True

    def full(self, written: int) -> bool:
        """Whether nothing more may be sent until the receiver reports (an item may go
        while the window is not full, so at most one item more than `limit` is in flight)."""
        return self.reporting and written - self.read >= self.limit

    def delay(self, written: int) -> float:
        """Seconds an item sent now will take to reach the receiver's app: what is in
        flight, read at its rate (while the rate is known), and a reserve for what the host
        cannot see; 0 for a receiver that does not report."""
        if not self.reporting:
            return 0.0
        reserve = _RESERVE_SHARE * self.limits.max_item_age_s
        rate = self.rate
        return reserve + (_DELAY_MARGIN * (written - self.read) / rate if rate else 0.0)

    def _sample(self, read: int, elapsed: float) -> None:
        # Only a receiver that had at least as much to read as it read shows its capacity;
        # one that read all it had shows only that it reads at least that fast.
        self._sample_busy = self._sample_busy and self._backlog >= read
        self._sample_bytes += read
        self._sample_s += elapsed
        if self._sample_s < _SAMPLE_S:
            return
        seen = self._sample_bytes / self._sample_s
        if not self._sample_busy:
            if self.rate is not None and seen > self.rate:
                self.rate = seen
        elif self.rate is None:
            self.rate = seen
        else:
            weight = 1.0 - math.exp(-self._sample_s / _RATE_MEMORY_S)
            self.rate += weight * (seen - self.rate)
        self._sample_bytes, self._sample_s, self._sample_busy = 0, 0.0, True
        if self.rate is not None:
            self.limit = self._rate_limit()

    def _rate_limit(self) -> int:
        """The window its rate allows: what it reads in a share of `max_item_age_s`
        (all of `receive_window_bytes` while the rate is unknown)."""
        limits = self.limits
        if self.rate is None:
            return limits.receive_window_bytes
        return int(min(limits.receive_window_bytes,
                       max(limits.min_window_bytes,
                           self.rate * limits.max_item_age_s * _WINDOW_SHARE)))
