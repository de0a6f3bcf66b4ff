"""What a peer has yet to write to its link: a bounded queue of control frames and realtime
items, and the counts of what was sent, received and dropped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import aiohttp

__all__ = ["PeerStats", "SendQueue"]

log = logging.getLogger(__name__.rpartition(".")[0])


@dataclass(slots=True)
class PeerStats:
    """What this peer sent, received and dropped on its realtime channel."""

    items_sent: int = 0
    """Items written to the host."""
    bytes_sent: int = 0
    items_received: int = 0
    """Items read from the host (whether a listener took them or not)."""
    bytes_received: int = 0
    items_dropped: int = 0
    """Items dropped before they were written: they waited too long, or too much was
    queued already."""
    bytes_dropped: int = 0
    items_expired: int = 0
    """Items read older than the host's age bound (by their stamps): not for the listener."""
    items_dropped_offline: int = 0
    """Items sent while a reconnecting peer had no link, or still queued when it was lost:
    realtime is ephemeral, so they are dropped, never sent late."""


class SendQueue:
    """What a peer has yet to hand to its connection, bounded: control frames (text) and
    realtime items (bytes), in the order sent, except read reports, which go first. An item
    that would take the items queued over their bound, or that waited longer than its age
    bound, is dropped and counted, with one warning per episode of drops."""

    def __init__(self, stats: PeerStats, max_bytes: int, max_item_bytes: int,
                 max_item_wait_s: float) -> None:
        self._stats = stats
        self._max_bytes = max_bytes
        self._max_item_bytes = max_item_bytes
        self._max_item_wait_s = max_item_wait_s
        self._frames: deque[str | bytes] = deque()
        self._bytes = 0
        self._item_bytes = 0
        self._item_times: deque[float] = deque()  # when each queued item was sent
        self._dropping = False  # an episode of dropped items is going on
        self._wakeup = asyncio.Event()
        self.drained = asyncio.Event()
        """Set while nothing the app sent waits to be handed to the connection."""
        self.drained.set()

    def put(self, frame: str | bytes) -> None:
        """Queue a frame; BufferError when the queue is full."""
        size = len(frame)
        if self._bytes + size > self._max_bytes:
            raise BufferError(f"send queue full ({self._bytes} bytes waiting, limit "
                              f"{self._max_bytes}); await drain() before sending more")
        self._frames.append(frame)
        self._bytes += size
        self.drained.clear()
        self._wakeup.set()

    def put_item(self, payload: bytes) -> None:
        """Queue a realtime item, or drop it when the items queued are at their bound."""
        size = len(payload)
        if self._item_bytes + size > self._max_item_bytes:
            self._drop_item(size)
            return
        self._item_bytes += size
        self._item_times.append(time.monotonic())
        self.put(payload)

    def put_first(self, frame: str) -> None:
        """Queue a control frame ahead of everything else; not part of what `drained` waits
        for (a read report: the host must not wait on this peer's own items for it)."""
        self._frames.appendleft(frame)
        self._bytes += len(frame)
        self._wakeup.set()

    async def write_to(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Wait for frames, then write all that are queued."""
        await self._wakeup.wait()
        self._wakeup.clear()
        stats = self._stats
        while self._frames:
            frame = self._frames.popleft()
            self._bytes -= len(frame)
            if isinstance(frame, bytes):
                self._item_bytes -= len(frame)
                if time.monotonic() - self._item_times.popleft() > self._max_item_wait_s:
                    self._drop_item(len(frame))
                    continue
                await ws.send_bytes(frame)
                stats.items_sent += 1
                stats.bytes_sent += len(frame)
            else:
                await ws.send_str(frame)
        self._dropping = False  # the queue emptied: the episode is over
        self.drained.set()

    def wake(self) -> None:
        """Let `write_to` return even with nothing queued (the link is closing)."""
        self._wakeup.set()

    def clear(self) -> None:
        """Forget everything queued (the link is gone); the items in it count as dropped
        for want of a link."""
        self._stats.items_dropped_offline += len(self._item_times)
        self._frames.clear()
        self._bytes = self._item_bytes = 0
        self._item_times.clear()

    def _drop_item(self, size: int) -> None:
        self._stats.items_dropped += 1
        self._stats.bytes_dropped += size
        if not self._dropping:
            self._dropping = True
            log.warning("realtime items dropped: the host, or the link to it, takes them "
                        "slower than they are sent (more than %.1f s or %d bytes queued)",
                        self._max_item_wait_s, self._max_item_bytes)
