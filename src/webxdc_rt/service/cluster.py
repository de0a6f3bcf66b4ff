"""One service on several processes: `webxdc-rt host` processes (on one machine or many,
and the workers of `--workers N`) that share one `--store postgresql://` keep their chats
the same, whichever of them a management command was given to.

Every change to a chat is announced by the transaction that stores it (a PostgreSQL NOTIFY
of the chat's id, delivered once the change is committed and never for one rolled back), so
an announcement cannot arrive before what it announces can be read. Each process reads the
announced chat back from the store, the truth, and makes its own registry hold what the
store holds: new chats, members and app copies are served; the pages and home pages that
are gone are forgotten and their sockets closed; those whose link was revoked are refused
their old token and their sockets closed too. The process that made a change hears its own
announcement as well; reading the chat back then changes nothing. Each time the
announcements' connection is (re)made (at start, and after PostgreSQL or the network was
away, when announcements may have been missed) every chat is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..model.chats import Registry
from ..stores.api import SharedChats, StoreError
from .manage import Manager, read_stored_sources

__all__ = ["ChatFollower"]

log = logging.getLogger(__name__)


class ChatFollower:
    """Keeps one process's chats what the shared store holds (see the module docstring):
    announced chats are collected (at most `home.max_pending_chat_reloads`, beyond which
    every chat is read again) and read back one batch at a time."""

    def __init__(self, manager: Manager, store: SharedChats) -> None:
        self.manager = manager
        self.store = store
        self.limits = manager.host.settings.home
        self._pending: set[str] = set()
        self._everything = False
        self._wake = asyncio.Event()

    def changed(self, chat_id: str) -> None:
        """Another process (or this one) changed the chat `chat_id`: read it back soon."""
        if self._everything:
            return  # every chat is to be read already
        if len(self._pending) >= self.limits.max_pending_chat_reloads:
            self.resync()
            return
        self._pending.add(chat_id)
        self._wake.set()

    def resync(self) -> None:
        """Announcements may have been missed: read every chat back soon."""
        self._everything = True
        self._pending.clear()
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled: follow the store's announcements and apply them."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.store.follow_chats(self.changed, self.resync),
                              name="follow chat changes")
            tasks.create_task(self._apply(), name="apply chat changes")

    async def _apply(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            everything, chat_ids = self._everything, self._pending
            self._everything, self._pending = False, set()
            try:
                await self.reload(None if everything else chat_ids)
            except (StoreError, OSError) as exc:
                log.warning("cannot read changed chats back from the store (%s); trying "
                            "again in %g s", exc, self.limits.chat_reload_retry_s)
                if everything:
                    self.resync()
                for chat_id in chat_ids:
                    self.changed(chat_id)
                await asyncio.sleep(self.limits.chat_reload_retry_s)

    async def reload(self, chat_ids: set[str] | None) -> int:
        """Read these chats (every chat, for None) back from the store and make this
        process serve them as stored; return how many sockets were closed."""
        manager = self.manager
        registry = manager.registry
        had_apps = set(registry.apps)
        # Read off the event loop (every chat in one snapshot, or one chat at a time): a
        # slow server holds up this read-back, not every socket. A command this process
        # runs while chats are read may be taken over by an older snapshot; its commit is
        # announced after it, so the next read-back (at once) takes the chat over as stored.
        if chat_ids is None:
            everything = await self.store.read_registry()
            stored = {chat_id: everything for chat_id in set(everything.chats) | set(
                registry.chats)}
        else:
            stored = {chat_id: await self.store.read_chat(chat_id) for chat_id in chat_ids}
        stale: list[str] = []
        for chat_id, holding in stored.items():
            stale += registry.adopt_chat(holding, chat_id)
            if chat_id not in registry.chats:
                with contextlib.suppress(OSError):  # a stale choice names no chat: harmless
                    manager.uploads.forget(chat_id)
        await self._serve_apps(registry, set(registry.apps) - had_apps)
        if not stale:
            return 0
        revoked = [label for label in stale
                   if registry.page(label) is not None or registry.home(label) is not None]
        gone = [label for label in stale if label not in revoked]
        log.info("chats read back from the store: %d pages gone, %d with a revoked link; "
                 "closing their sockets", len(gone), len(revoked))
        closed = await asyncio.gather(
            manager.host.retire(gone, "no longer in the chat"),
            *(manager.host.disconnect(label, "link revoked") for label in revoked))
        return sum(closed)

    async def _serve_apps(self, registry: Registry, new_apps: set[str]) -> None:
        """Serve the app copies `new_apps` from the store, and stop serving those gone."""
        sources = self.manager.host.sources
        for app_id in [app_id for app_id in sources if app_id not in registry.apps]:
            del sources[app_id]
        if not new_apps:
            return
        found, problems = await read_stored_sources(self.manager.store, registry,
                                                    self.manager.container_limits, new_apps)
        # Served only if still in the chats: a read-back while they were read may have
        # taken an app copy away.
        sources.update({app_id: source for app_id, source in found.items()
                        if app_id in registry.apps})
        for problem in problems:
            log.warning("%s", problem)
