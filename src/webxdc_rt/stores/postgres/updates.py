"""Status updates in a PostgreSQL store, appended by several processes: serials come from
one sequence, and the updates of one app copy commit in serial order."""

from __future__ import annotations

import json
import time
from typing import Any, Final

from ...core.updates import Update
from ..api import Notification
from .columns import utf8
from .connection import AsyncRows, Connection

__all__ = ["PostgresUpdates", "UPDATE_BYTES"]

UPDATE_BYTES: Final = ("octet_length(payload) + coalesce(octet_length(info), 0)"
                        " + coalesce(octet_length(href), 0)"
                        " + coalesce(octet_length(document), 0)"
                        " + coalesce(octet_length(summary), 0)"
                        " + coalesce(octet_length(notify), 0)")
"""SQL: the bytes of an update's text, as a backlog chunk counts them."""


class PostgresUpdates:
    """The `updates` table (see `StoreApi` for what each read returns)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def append(self, app_id: str, member_id: str, update: Update) -> int:
        """Store an update (committed before this returns); return its serial. The lock on
        the app copy, taken before the serial is drawn and held to the commit, makes the
        copy's updates commit in serial order whichever process stores them."""
        notify = update.notify
        keys = None if notify is None else [key for key in notify if "\0" not in key]
        with self._connection.cursor(write=True) as cur:
            row = cur.execute(
                "WITH locked AS (SELECT pg_advisory_xact_lock(hashtextextended(%s, 0)))"
                " INSERT INTO updates (app_id, member_id, payload, info, href, document,"
                " summary, notify, notify_keys, created)"
                " SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM locked RETURNING serial",
                (app_id, app_id, member_id, update.payload_json, utf8(update.info),
                 utf8(update.href), utf8(update.document), utf8(update.summary),
                 None if notify is None else json.dumps(notify), keys,
                 time.time())).fetchone()
        assert row is not None
        return int(row[0])

    def max_serial(self, app_id: str) -> int:
        """The highest serial of an app copy's updates (0 when it has none)."""
        with self._connection.cursor() as cur:
            row = cur.execute(_MAX_SERIAL, (app_id,)).fetchone()
        return int(row[0] or 0) if row else 0

    @staticmethod
    async def read_max_serial(reader: AsyncRows, app_id: str) -> int:
        """`max_serial`, read on `reader`'s asynchronous connection."""
        rows = await reader.rows(_MAX_SERIAL, (app_id,))
        return int(rows[0][0] or 0) if rows else 0

    @staticmethod
    async def read_notifications(reader: AsyncRows, member_id: str,
                                 addresses: dict[str, str], limit: int) -> list[Notification]:
        """The latest updates that notify one member, oldest first, at most `limit` (see
        `StoreApi.read_notifications`), read on `reader`'s asynchronous connection."""
        if not addresses:
            return []
        rows = await reader.rows(_NOTIFICATIONS, _notifications_parameters(
            member_id, addresses, limit))
        return _notifications(rows, addresses)


_MAX_SERIAL: Final = "SELECT max(serial) FROM updates WHERE app_id = %s"

_NOTIFICATIONS = (
    "SELECT serial, u.app_id, member_id, notify, created FROM updates u"
    " JOIN unnest(%s::text[], %s::text[]) AS a(app_id, addr) ON u.app_id = a.app_id"
    " WHERE notify_keys IS NOT NULL AND member_id != %s"
    " AND notify_keys && ARRAY['*', a.addr] ORDER BY serial DESC LIMIT %s")


def _notifications_parameters(member_id: str, addresses: dict[str, str],
                              limit: int) -> tuple[object, ...]:
    """The parameters of `_NOTIFICATIONS` (app copies and addresses as two arrays)."""
    apps = list(addresses)
    return (apps, [addresses[app_id] for app_id in apps], member_id, limit)


def _notifications(rows: list[tuple[Any, ...]],
                   addresses: dict[str, str]) -> list[Notification]:
    """The notifications of the rows of `_NOTIFICATIONS` (newest first), oldest first:
    those whose text for the member's address, or for everyone, is a string."""
    found = []
    for serial, app_id, sender, notify_text, created in reversed(rows):
        notify = json.loads(notify_text)
        said = notify.get(addresses[app_id], notify.get("*"))
        if isinstance(said, str):
            found.append(Notification(serial, app_id, sender, said, float(created)))
    return found
