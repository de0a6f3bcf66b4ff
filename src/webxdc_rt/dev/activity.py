"""What the simulator's dashboards are told: every `log_interval_s` one batch of the log (who
joined or left the realtime channel, what the host refused, the rates, the events), the
simulator's state whenever it changes, and a reload when a file of the app folder changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.messages import ChatMessageDraft
from ..host.app import Host
from ..model.chats import Page
from .limits import SimulatorLimits
from .traffic import TrafficLog

__all__ = ["Activity", "Listener"]

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]
"""Takes one message for the dashboards (a batch, the state, a reload), as JSON."""


class Activity:
    """The log's batches and the messages to every dashboard.

    `host` gives the running host, `names` the member name of each page label now, and
    `state` the simulator's state as the dashboards show it."""

    def __init__(self, limits: SimulatorLimits, traffic: TrafficLog, host: Callable[[], Host],
                 names: Callable[[], Mapping[str, str]],
                 state: Callable[[], dict[str, Any]]) -> None:
        self.limits = limits
        self.traffic = traffic
        self._host = host
        self._names = names
        self._state = state
        self.joined: set[str] = set()
        """Labels of the pages joined to the realtime channel when last looked."""
        self._refused: Counter[str] = Counter()
        self.listeners: set[Listener] = set()
        """Told of every batch and change (the dashboard's sockets)."""

    def send(self, message: dict[str, Any]) -> None:
        """Tell every dashboard."""
        for listener in tuple(self.listeners):
            listener(message)

    def changed(self) -> None:
        """Tell every dashboard the simulator's state."""
        self.send(self._state())

    def reset(self) -> None:
        """A new chat: nobody is joined."""
        self.joined.clear()

    def left(self, label: str, member: str, now: float) -> None:
        """A peer was taken out of the chat: it left the channel, if it was joined."""
        if label in self.joined:
            self.joined.discard(label)
            self.traffic.event("leave", now, peer=member)

    def batch(self) -> dict[str, Any]:
        """One batch of the log (also what tests read)."""
        host = self._host()
        now = asyncio.get_running_loop().time()
        changed = self.observe_joins(now)
        for code, count in host.stats.sessions.refused.items():
            if count > self._refused[code]:
                self.traffic.event("refused", now, code=code, count=count - self._refused[code])
                self._refused[code] = count
        rates = self.traffic.rates(now)
        if changed:
            self.changed()
        return {"type": "batch", "rates": rates, "joined": self.joined_members(),
                "events": self.traffic.drain(), "events_dropped": self.traffic.events_dropped,
                "items_not_described": self.traffic.items_not_described}

    def joined_members(self) -> list[str]:
        """Members joined to the realtime channel when last looked."""
        names = self._names()
        return sorted(names[label] for label in self.joined if label in names)

    def observe_joins(self, now: float) -> bool:
        """Log who joined or left the realtime channel since last asked; whether any did."""
        names = self._names()
        joined = {stats.page for stats in self._host().connection_stats() if stats.joined}
        joined &= set(names)
        for label in sorted(joined - self.joined):
            self.traffic.event("join", now, peer=names[label])
        for label in sorted(self.joined - joined):
            self.traffic.event("leave", now, peer=names.get(label, label))
        changed = joined != self.joined
        self.joined = joined
        return changed

    def on_message(self, page: Page, message: ChatMessageDraft) -> None:
        """Log a message an app posted to the chat."""
        now = asyncio.get_running_loop().time()
        names = self._names()
        self.traffic.event("message", now, sender=names.get(page.label, page.label),
                           text=(message.text or "")[:200], file_name=message.file_name,
                           file_size=None if message.file_data is None
                           else len(message.file_data))

    async def pump(self) -> None:
        """Every `log_interval_s`: one batch to every dashboard."""
        while True:
            await asyncio.sleep(self.limits.log_interval_s)
            try:
                self.send(self.batch())
            except Exception as exc:  # the log must not take the simulator down
                log.error("the dashboard's log failed: %r", exc)

    async def watch(self, root: Path) -> None:
        """Reload every frame when a file of the app folder changes."""
        seen = _snapshot(root, self.limits.max_watched_files)
        while True:
            await asyncio.sleep(self.limits.reload_poll_s)
            now = await asyncio.to_thread(_snapshot, root, self.limits.max_watched_files)
            if now != seen:
                seen = now
                log.info("app files changed: reloading every peer")
                self.send({"type": "reload"})


def _snapshot(root: Path, limit: int) -> dict[str, tuple[float, int]]:
    """Modification time and size of the app folder's files (at most `limit`)."""
    files: dict[str, tuple[float, int]] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if len(files) >= limit:
                return files
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                stat = os.stat(path)
                files[path] = (stat.st_mtime, stat.st_size)
    return files
