"""Finding dead WebSocket links without a timer per read.

aiohttp's own heartbeat resets a timer on every read, through a callback it schedules for
the next turn of the event loop: at realtime rates that is one more loop turn (one more
`epoll_wait`) for every item a page sends. A `Heartbeat` looks instead, once every
`heartbeat_s`, at how many reads the connection has had (`GuardedRequestHandler.reads`,
one integer increment per read): a link that brought nothing since the last look is sent
a ping, and one that still brings nothing (not even the pong) within half the interval is
dropped, which counts as having left (R17). Same rule as aiohttp's: any data proves the
link alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Heartbeat", "PING_FRAME"]

PING_FRAME = b"\x89\x00"
"""A WebSocket ping with no payload, as a server sends it (final, unmasked)."""


class Heartbeat:
    """Pings a link that has been silent for `interval` seconds; calls `dead` when it
    stays silent for half an interval more."""

    __slots__ = ("_loop", "_interval", "_reads", "_ping", "_dead", "_seen", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float,
                 reads: Callable[[], int], ping: Callable[[], None],
                 dead: Callable[[], None]) -> None:
        self._loop = loop
        self._interval = interval
        self._reads = reads
        self._ping = ping
        self._dead = dead
        self._seen = reads()
        self._timer: asyncio.TimerHandle | None = loop.call_later(interval, self._look)

    def stop(self) -> None:
        """The link is over: look no more (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _look(self) -> None:
        reads = self._reads()
        if reads != self._seen:
            self._seen = reads
            self._timer = self._loop.call_later(self._interval, self._look)
            return
        self._ping()
        self._timer = self._loop.call_later(self._interval / 2, self._answered)

    def _answered(self) -> None:
        reads = self._reads()
        if reads == self._seen:
            self._timer = None
            self._dead()
            return
        self._seen = reads
        self._timer = self._loop.call_later(self._interval, self._look)
