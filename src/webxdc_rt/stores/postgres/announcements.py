"""The announcements of other processes' changes, each on a NOTIFY channel once committed.

Stored updates: every transaction that inserts into `updates` is announced as
`<app copy> <serial>` (its highest serial of that copy) on the NOTIFY channel of each app
copy it wrote to (`migrations.updates_channel`). A process LISTENs only to the channels of
the app copies it has listeners of (`Announcements.watch` / `unwatch`), so updates of other
copies cost it nothing: its server backend does not forward them, and the process reads
nothing back. Chats: every change to a chat is announced as its id (`follow_chats`).

Each kind arrives on a connection of its own in an asyncio task, which reconnects by
itself; announcements made while it was away are lost, so the host is told to read back what
it missed each time the connection is made (and, for updates, listens again to every copy
watched)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from ..api import Appended, ChatChanged, Resync
from ..migrations import CHATS_CHANNEL, updates_channel
from .connection import Connection, reason

__all__ = ["Announcements", "follow_chats", "MAX_CHAT_ID_CHARS"]

log = logging.getLogger(__name__)

MAX_CHAT_ID_CHARS = 64
"""Longest chat id an announcement may carry (ids are `chat-` and 16 hex digits); longer
payloads are not from a host and are ignored."""


class Announcements:
    """Which app copies' announcements this process listens to, and the task that hears
    them (`follow`)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._watchers: dict[str, int] = {}
        """How many of this process's listeners want each app copy's announcements."""
        self._listening: set[str] = set()
        """The app copies whose LISTEN the server acknowledged on the current connection."""
        self._acknowledged: asyncio.Event | None = None
        """Set, and replaced, each time the LISTENs asked for are acknowledged (or the
        connection is lost: then the resync after reconnecting covers the watchers)."""
        self._changed: asyncio.Event | None = None
        """Set when the app copies watched changed, to wake `follow`."""

    async def watch(self, app_id: str) -> None:
        """Be told of `app_id`'s updates until as many `unwatch` calls: returns once every
        update committed from then on is sure to be announced to this process (at once
        while `follow` is not connected: it announces a resync once it is)."""
        self._watchers[app_id] = self._watchers.get(app_id, 0) + 1
        if app_id in self._listening or self._changed is None:
            return
        self._changed.set()
        # Until its LISTEN is acknowledged, or it is no longer watched, or the connection
        # is lost (then the resync after reconnecting covers it).
        while (app_id in self._watchers and app_id not in self._listening
               and self._acknowledged is not None):
            await self._acknowledged.wait()

    def unwatch(self, app_id: str) -> None:
        """One listener of `app_id` less; the last one stops its announcements."""
        count = self._watchers.get(app_id, 0) - 1
        if count > 0:
            self._watchers[app_id] = count
            return
        self._watchers.pop(app_id, None)
        if self._changed is not None:
            self._changed.set()

    async def follow(self, on_appended: Appended, on_resync: Resync) -> None:
        """Until cancelled: call `on_appended(app_id, serial)` for every update stored by
        any process of the app copies watched, in commit order, and `on_resync()` each time
        the announcements' connection is (re)made and listens to them, with the server and
        limits of the store's connection."""
        wait = 0.1
        outage = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._connection.url,
                                                             **self._connection.params())
            except psycopg.Error:
                await asyncio.sleep(wait)
                wait = min(wait * 2, self._connection.settings.reconnect_max_s)
                continue
            try:
                async with conn:
                    self._changed = asyncio.Event()
                    self._acknowledged = asyncio.Event()
                    await self._listen(conn)
                    wait = 0.1
                    if outage:
                        log.info("update announcements from PostgreSQL resumed")
                        outage = False
                    on_resync()
                    await self._hear(conn, on_appended)
            except psycopg.Error as exc:
                if not outage:
                    log.warning("update announcements from PostgreSQL interrupted (%s); "
                                "reconnecting", reason(exc))
                outage = True
                await asyncio.sleep(wait)
                wait = min(wait * 2, self._connection.settings.reconnect_max_s)
            finally:
                self._disconnected()

    async def _hear(self, conn: psycopg.AsyncConnection[Any], on_appended: Appended) -> None:
        """Hand on announcements, and change what is listened to whenever the app copies
        watched change, until the connection fails."""
        assert self._changed is not None
        while True:
            reading = asyncio.create_task(_read(conn, on_appended))
            # Its error is raised below when it matters; not when this task is cancelled.
            reading.add_done_callback(_retrieved)
            changed = asyncio.create_task(self._changed.wait())
            try:
                await asyncio.wait((reading, changed), return_when=asyncio.FIRST_COMPLETED)
            finally:
                reading.cancel()
                changed.cancel()
                # Waited for, not awaited: awaiting a cancelled task raises a
                # CancelledError that cannot be told from this task's own cancellation
                # arriving meanwhile, and ignoring it would ignore that too (the host
                # would wait forever for this task to end).
                await asyncio.wait((reading, changed))
            if not reading.cancelled():
                reading.result()  # raises the reader's error: the connection failed
            await self._listen(conn)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """LISTEN to every app copy watched and UNLISTEN the others, until that holds, then
        wake the watchers waiting."""
        assert self._changed is not None and self._acknowledged is not None
        while True:
            self._changed.clear()
            wanted = set(self._watchers)
            start, stop = sorted(wanted - self._listening), sorted(self._listening - wanted)
            if not start and not stop:
                break
            statements = [sql.SQL("LISTEN {}").format(sql.Identifier(updates_channel(a)))
                          for a in start]
            statements += [sql.SQL("UNLISTEN {}").format(sql.Identifier(updates_channel(a)))
                           for a in stop]
            # Not listened to from now: a watch that starts again meanwhile waits for the
            # next round, which LISTENs after this UNLISTEN.
            self._listening -= set(stop)
            # Several statements in one round trip (the simple query protocol).
            await conn.execute(sql.SQL("; ").join(statements))
            self._listening |= set(start)
        acknowledged, self._acknowledged = self._acknowledged, asyncio.Event()
        acknowledged.set()

    def _disconnected(self) -> None:
        """The connection ended: nothing is listened to, and no watcher waits for it."""
        self._listening = set()
        self._changed = None
        acknowledged, self._acknowledged = self._acknowledged, None
        if acknowledged is not None:
            acknowledged.set()


def _retrieved(task: asyncio.Task[None]) -> None:
    """Mark the error `task` ended with, if any, as seen (asyncio logs those never seen)."""
    if not task.cancelled():
        task.exception()


async def _read(conn: psycopg.AsyncConnection[Any], on_appended: Appended) -> None:
    """Hand on the announcements as they arrive, until cancelled or the connection fails.
    Cancelling loses none: psycopg keeps what arrives meanwhile for the next reading."""
    async for notice in conn.notifies():
        app_id, _, serial = notice.payload.rpartition(" ")
        if app_id and serial.isdigit():
            on_appended(app_id, int(serial))


async def follow_chats(connection: Connection, on_changed: ChatChanged,
                       on_resync: Resync) -> None:
    """Until cancelled: call `on_changed(chat_id)` for every change to a chat committed by
    any process, in commit order, and `on_resync()` each time the announcements'
    connection is (re)made."""

    def changed(payload: str) -> None:
        if 0 < len(payload) <= MAX_CHAT_ID_CHARS and payload.isprintable():
            on_changed(payload)

    await _listen(connection, CHATS_CHANNEL, "chat", changed, on_resync)


async def _listen(connection: Connection, channel: str, what: str,
                  on_notice: Callable[[str], None], on_resync: Resync) -> None:
    """LISTEN on `channel` until cancelled, handing each payload to `on_notice`; reconnect
    with backoff after a failure, saying so once per outage, and call `on_resync` each time
    the connection is made."""
    wait = 0.1
    outage = False
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(connection.url, **connection.params())
        except psycopg.Error:
            await asyncio.sleep(wait)
            wait = min(wait * 2, connection.settings.reconnect_max_s)
            continue
        try:
            async with conn:
                await conn.execute(f"LISTEN {channel}")
                wait = 0.1
                if outage:
                    log.info("%s announcements from PostgreSQL resumed", what)
                    outage = False
                on_resync()
                async for notice in conn.notifies():
                    on_notice(notice.payload)
        except psycopg.Error as exc:
            if not outage:
                log.warning("%s announcements from PostgreSQL interrupted (%s); "
                            "reconnecting", what, reason(exc))
            outage = True
            await asyncio.sleep(wait)
            wait = min(wait * 2, connection.settings.reconnect_max_s)
