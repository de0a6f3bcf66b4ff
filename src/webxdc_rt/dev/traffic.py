"""What the simulator's log shows, no I/O: exact counts per peer, and a bounded, sampled
record of events (realtime items, joins and leaves, status updates, chat messages,
refusals, losses) drained in batches for the dashboard.

Counting an item is a few dictionary increments; describing one (its first bytes) is done
for at most `TrafficLimits.item_samples_per_s` items a second, so a flood of 1,000 items a
second costs the realtime path little and the dashboard a bounded amount of work.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ..core.limits import require_positive

__all__ = ["TrafficLimits", "TrafficLog", "preview"]


@dataclass(frozen=True)
class TrafficLimits:
    """Bounds of the simulator's log."""

    item_samples_per_s: int = 50
    """Realtime items described in the log per second at most; all are counted."""
    max_events: int = 2_000
    """Events waiting for the dashboard; more and the oldest are dropped (counted)."""
    preview_bytes: int = 32
    """First bytes of an item or update shown in the log."""

    def __post_init__(self) -> None:
        require_positive(self)


def preview(data: bytes | memoryview, limit: int) -> dict[str, str]:
    """The first `limit` bytes of `data` as text when they are printable UTF-8, else hex."""
    head = bytes(data[:limit])
    # A multi-byte character cut at the limit still leaves text: up to 3 bytes are trimmed.
    for cut in range(4 if len(data) > limit else 1):
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if all(ch.isprintable() or ch in "\n\r\t" for ch in text):
            return {"text": text}
        break
    return {"hex": head.hex(" ")}


@dataclass
class PeerCounts:
    """Exact counts of one peer since the simulator started (or was reset)."""

    items_sent: int = 0
    bytes_sent: int = 0
    items_received: int = 0
    bytes_received: int = 0
    lost: Counter[str] = field(default_factory=Counter)
    """Items for this peer lost by the faults, by reason (`faults.LOSS_REASONS`)."""


class TrafficLog:
    """Counts and events of the simulator, drained by the dashboard's pump."""

    def __init__(self, limits: TrafficLimits | None = None) -> None:
        self.limits = limits or TrafficLimits()
        self.counts: dict[str, PeerCounts] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=self.limits.max_events)
        self.events_dropped = 0
        """Events pushed out of the queue before the dashboard took them."""
        self.items_not_described = 0
        """Items counted but not described (over the sampling rate)."""
        self._samples_left = self.limits.item_samples_per_s
        self._window_start = 0.0
        self._last: dict[str, tuple[int, int, int, int]] = {}
        self._last_time: float | None = None

    def peer(self, peer: str) -> PeerCounts:
        """The counts of one peer (made on first use)."""
        counts = self.counts.get(peer)
        if counts is None:
            counts = self.counts[peer] = PeerCounts()
        return counts

    def reset(self) -> None:
        """Forget every count and event (a fresh chat)."""
        self.counts.clear()
        self.events.clear()
        self._last.clear()

    def event(self, kind: str, now: float, **fields: Any) -> None:
        """Record one event for the dashboard."""
        if len(self.events) == self.events.maxlen:
            self.events_dropped += 1
        fields["kind"] = kind
        fields["t"] = now
        self.events.append(fields)

    def item(self, sender: str, receivers: list[str], payload: bytes | memoryview, size: int,
             now: float) -> None:
        """A realtime item left `sender` for `receivers`: counted, described if the
        sampling rate allows."""
        counts = self.peer(sender)
        counts.items_sent += 1
        counts.bytes_sent += size
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._samples_left = self.limits.item_samples_per_s
        if self._samples_left <= 0:
            self.items_not_described += 1
            return
        self._samples_left -= 1
        self.event("item", now, sender=sender, receivers=receivers, size=len(payload),
                   **preview(payload, self.limits.preview_bytes))

    def delivered(self, receiver: str, size: int) -> None:
        """An item was handed to `receiver`'s connection."""
        counts = self.peer(receiver)
        counts.items_received += 1
        counts.bytes_received += size

    def lost(self, receiver: str, reason: str) -> None:
        """An item for `receiver` was lost to a fault."""
        self.peer(receiver).lost[reason] += 1

    def drain(self) -> list[dict[str, Any]]:
        """The events recorded since the last drain, oldest first."""
        events = list(self.events)
        self.events.clear()
        return events

    def rates(self, now: float) -> dict[str, dict[str, Any]]:
        """Per peer: exact totals, and items and bytes per second since the last call."""
        elapsed = None if self._last_time is None else now - self._last_time
        self._last_time = now
        result: dict[str, dict[str, Any]] = {}
        for peer, counts in self.counts.items():
            totals = (counts.items_sent, counts.bytes_sent, counts.items_received,
                      counts.bytes_received)
            before = self._last.get(peer, (0, 0, 0, 0))
            self._last[peer] = totals
            per_s = [0.0] * 4
            if elapsed:
                per_s = [(now_value - then) / elapsed
                         for now_value, then in zip(totals, before, strict=True)]
            result[peer] = {
                "items_sent": counts.items_sent, "bytes_sent": counts.bytes_sent,
                "items_received": counts.items_received,
                "bytes_received": counts.bytes_received, "lost": dict(counts.lost),
                "items_sent_per_s": per_s[0], "bytes_sent_per_s": per_s[1],
                "items_received_per_s": per_s[2], "bytes_received_per_s": per_s[3],
            }
        return result
