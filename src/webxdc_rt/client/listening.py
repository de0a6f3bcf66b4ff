"""A peer's status-update listener: which updates it has passed on, so that it can be
restarted on a new link after the last one, and whose backlog the program waits for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..core import wire

__all__ = ["UpdateListener", "UpdateListening"]

log = logging.getLogger(__name__.rpartition(".")[0])

UpdateListener = Callable[[dict[str, Any]], object]
"""What `set_update_listener` takes: called with each update."""


class UpdateListening:
    """The current update listener: its number on the wire (`listen`), the program's
    callback, and the serial of the last update passed to it. Each update is passed on
    once, in serial order, whatever the host sends again."""

    def __init__(self) -> None:
        self._counter = 0
        self._current: tuple[int, UpdateListener, int] | None = None
        self._backlog_waiters: list[tuple[int, asyncio.Future[None]]] = []

    def start(self, callback: UpdateListener, serial: int,
              done: asyncio.Future[None] | None = None) -> str:
        """Listen anew after `serial` (replacing any listener); the frame that asks the
        host. `done` is set once the host sent the stored updates."""
        self._counter += 1
        listen = self._counter
        self._current = (listen, callback, serial)
        if done is not None:
            self._backlog_waiters.append((listen, done))
        return wire.encode_update_listen(listen, serial)

    def restart(self) -> str | None:
        """The frame that restarts the listener after the last serial passed on (on a new
        link), or None when there is no listener."""
        if self._current is None:
            return None
        _, callback, serial = self._current
        return self.start(callback, serial)

    def on_update(self, message: wire.Update) -> None:
        """One update from the host: to the callback, unless it was passed on already."""
        current = self._current
        if current is None or message.listen != current[0]:
            return  # meant for a listener that was replaced
        listen, callback, last_serial = current
        if message.serial <= last_serial:
            return  # passed on already
        self._current = (listen, callback, message.serial)
        try:
            callback(message.update)
        except Exception:
            log.exception("update listener raised; the update is skipped")

    def on_backlog_done(self, listen: int) -> None:
        """The host sent the stored updates of listener `listen`."""
        # A replaced listener's backlog may never finish: its waiter is done with the newer.
        for waiting_listen, done in self._backlog_waiters:
            if waiting_listen <= listen and not done.done():
                done.set_result(None)
        self._backlog_waiters = [w for w in self._backlog_waiters if w[0] > listen]
