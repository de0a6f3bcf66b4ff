"""What pages send, committed to PostgreSQL in groups (`commits.GroupCommit`) on an
asynchronous connection of its own, so the event loop never waits for the server: one
transaction and one round trip (a pipeline) for every write of a group.

The updates of one app copy commit in serial order whichever process stores them: the group
takes the transaction-scoped lock of each app copy it writes to before drawing serials, in
the order of the locks' keys (so two processes' groups never wait for each other in a
cycle), and holds them to the commit. A lost connection fails its group with `StoreError`
(`unavailable`) and is made again for the next group; while the store's own connection
knows the server to be unreachable, groups are refused at once (`StoreUnavailable`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg

from ..api import MessageWrite, UpdateWrite, Write
from .columns import utf8
from .connection import Connection

__all__ = ["GroupWriter"]

_LOCK_APPS = ("SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT"
              " hashtextextended(app_id, 0) AS key FROM unnest(%s::text[]) AS a(app_id)"
              " ORDER BY key) AS keys")
_INSERT_UPDATE = ("INSERT INTO updates (app_id, member_id, payload, info, href, document,"
                  " summary, notify, notify_keys, created)"
                  " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING serial")
_INSERT_MESSAGE = ("INSERT INTO chat_messages (chat_id, app_id, member, text, file_name,"
                   " file_data, created) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id")


class GroupWriter:
    """Commits groups of writes on an asynchronous connection, made when first needed."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._db: psycopg.AsyncConnection[Any] | None = None

    async def commit(self, writes: list[Write]) -> list[int]:
        """Commit `writes` in one transaction; the serial or id of each, in order."""
        self._connection.connection()  # StoreUnavailable at once during a known outage
        db = await self._open()
        started = time.perf_counter()
        apps = sorted({w.app_id for w in writes if isinstance(w, UpdateWrite)})
        try:
            async with db.pipeline(), db.transaction():
                if apps:
                    await db.execute(_LOCK_APPS, (apps,))
                cursors = []
                for write in writes:
                    cursor = db.cursor()
                    await cursor.execute(*_insert(write))
                    cursors.append(cursor)
            ids = []
            for cursor in cursors:
                row = await cursor.fetchone()
                assert row is not None
                ids.append(int(row[0]))
        except psycopg.Error as exc:
            broken = db.closed or db.broken
            if broken or isinstance(exc, psycopg.OperationalError):
                self.close()
            raise self._connection.failed(exc, broken) from None
        self._connection.latency.observe(time.perf_counter() - started)
        return ids

    def close(self) -> None:
        """Close the connection (a new one is made for the next group)."""
        db, self._db = self._db, None
        if db is not None and not db.closed:
            # Closing needs no round trip: done at once, from wherever the store is closed.
            db.pgconn.finish()

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        db = self._db
        if db is None or db.closed or db.broken:
            self.close()
            try:
                db = await psycopg.AsyncConnection.connect(self._connection.url,
                                                           **self._connection.params())
            except psycopg.Error as exc:
                raise self._connection.failed(exc, True) from None
            self._db = db
        return db


def _insert(write: Write) -> tuple[str, tuple[object, ...]]:
    """The statement that inserts `write`, with its parameters."""
    if isinstance(write, MessageWrite):
        return _INSERT_MESSAGE, (write.chat_id, write.app_id, write.member.encode(),
                                 utf8(write.text), utf8(write.file_name), write.file_data,
                                 time.time())
    update, notify = write.update, write.update.notify
    keys = None if notify is None else [key for key in notify if "\0" not in key]
    return _INSERT_UPDATE, (write.app_id, write.member_id, update.payload_json,
                            utf8(update.info), utf8(update.href), utf8(update.document),
                            utf8(update.summary),
                            None if notify is None else json.dumps(notify), keys, time.time())
