"""What a running host counts, as plain numbers, with no I/O.

The host bumps these where things happen (an int increment, at most once per realtime item
and never per receiver); `metrics.py` reads them when `/metrics` is scraped and turns them
into Prometheus metrics. Nothing on the hot path touches the metrics library.

A new counter plugs in by adding a field here (an `int`, or a `Counter` for one labelled
by a code) and a line to the collector in `metrics.py`.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from .delivery import DropCount

__all__ = ["STORE_LATENCY_BOUNDS_S", "LatencyHistogram", "SessionCounts", "HostStats"]

STORE_LATENCY_BOUNDS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                          0.1, 0.25, 0.5, 1.0)
"""Upper bounds of the store latency buckets, in seconds: a durable commit takes about
0.2 ms on a local SSD and tens of milliseconds on a slow or busy disk."""


@dataclass(slots=True)
class LatencyHistogram:
    """How long operations took: a count per bucket (the last one has no upper bound) and
    the sum, as Prometheus histograms keep them."""

    bounds: tuple[float, ...] = STORE_LATENCY_BOUNDS_S
    """Upper bound of each bucket but the last, increasing."""
    counts: list[int] = field(default_factory=list)
    """Operations per bucket (not cumulative), one more than `bounds`."""
    total_s: float = 0.0
    """Seconds of all operations together."""

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        """Count one operation that took `seconds`."""
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total_s += seconds

    @property
    def count(self) -> int:
        """Operations counted."""
        return sum(self.counts)


@dataclass(slots=True)
class SessionCounts:
    """What the sessions of a host count: their refusals and their slowed senders."""

    refused: Counter[str] = field(default_factory=Counter)
    """Requests refused, by the error code the client was sent (`payload-too-large`,
    `update-rate`, `chat-quota`, ...)."""
    rate_limited: Counter[str] = field(default_factory=Counter)
    """Times a page began to be paced, by budget (`items`: realtime items and bytes,
    `control`: control messages): each is one `rate-limited` episode of one connection."""


@dataclass(slots=True)
class HostStats:
    """The counters of one host process since it started (all only ever grow)."""

    realtime_items_in: int = 0
    """Realtime items read from connections and published to their channel."""
    realtime_bytes_in: int = 0
    """Payload bytes of those items."""
    realtime_items_out: int = 0
    """Realtime items handed to receivers (one per receiver)."""
    realtime_bytes_out: int = 0
    """Bytes of the frames carrying those items (payload and WebSocket header, counted once
    per receiver)."""
    drops: DropCount = field(default_factory=DropCount)
    """Realtime items not delivered to a receiver because it did not keep up (stale, or
    crowded out), counted once per receiver, with their bytes."""
    slow_receivers_cut_off: int = 0
    """Connections cut off because too much was waiting to be sent to them."""
    updates_appended: int = 0
    """Status updates stored (and so sent to the app copy's listeners)."""
    chat_messages_stored: int = 0
    """Messages apps posted to their chat with sendToChat, stored."""
    connections_refused: Counter[str] = field(default_factory=Counter)
    """WebSockets refused before they opened, by reason (`host-full`, `page-full`)."""
    sessions: SessionCounts = field(default_factory=SessionCounts)
    """What the connections' sessions count (refusals, rate limiting)."""
