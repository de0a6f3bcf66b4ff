"""The announcements of stored updates: every insert into `updates` is announced as
`<app copy> <serial>` on a NOTIFY channel once committed, by any process. They arrive on a
connection of their own in an asyncio task, which reconnects by itself; announcements made
while it was away are lost, so the host is told to read back what it missed."""

from __future__ import annotations

import asyncio
import logging

import psycopg

from ..api import Appended, Resync
from ..migrations import UPDATES_CHANNEL
from .connection import Connection, reason

__all__ = ["follow"]

log = logging.getLogger(__name__)


async def follow(connection: Connection, on_appended: Appended, on_resync: Resync) -> None:
    """Until cancelled: call `on_appended(app_id, serial)` for every update stored by any
    process, in commit order, and `on_resync()` each time the announcements' connection
    is (re)made, with the server and limits of `connection`."""
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
                await conn.execute(f"LISTEN {UPDATES_CHANNEL}")
                wait = 0.1
                if outage:
                    log.info("update announcements from PostgreSQL resumed")
                    outage = False
                on_resync()
                async for notice in conn.notifies():
                    app_id, _, serial = notice.payload.rpartition(" ")
                    if app_id and serial.isdigit():
                        on_appended(app_id, int(serial))
        except psycopg.Error as exc:
            if not outage:
                log.warning("update announcements from PostgreSQL interrupted (%s); "
                            "reconnecting", reason(exc))
            outage = True
            await asyncio.sleep(wait)
            wait = min(wait * 2, connection.settings.reconnect_max_s)
