"""The announcements of other processes' changes, each on a NOTIFY channel once committed:
every insert into `updates` as `<app copy> <serial>` (`follow`), and every change to a chat
as its id (`follow_chats`). Each kind arrives on a connection of its own in an asyncio task,
which reconnects by itself; announcements made while it was away are lost, so the host is
told to read back what it missed each time the connection is made."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from ..api import Appended, ChatChanged, Resync
from ..migrations import CHATS_CHANNEL, UPDATES_CHANNEL
from .connection import Connection, reason

__all__ = ["follow", "follow_chats", "MAX_CHAT_ID_CHARS"]

log = logging.getLogger(__name__)

MAX_CHAT_ID_CHARS = 64
"""Longest chat id an announcement may carry (ids are `chat-` and 16 hex digits); longer
payloads are not from a host and are ignored."""


async def follow(connection: Connection, on_appended: Appended, on_resync: Resync) -> None:
    """Until cancelled: call `on_appended(app_id, serial)` for every update stored by any
    process, in commit order, and `on_resync()` each time the announcements' connection
    is (re)made, with the server and limits of `connection`."""

    def appended(payload: str) -> None:
        app_id, _, serial = payload.rpartition(" ")
        if app_id and serial.isdigit():
            on_appended(app_id, int(serial))

    await _listen(connection, UPDATES_CHANNEL, "update", appended, on_resync)


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
