"""What pages send, committed to PostgreSQL in groups (`commits.GroupCommit`) on an
asynchronous connection of its own, so the event loop never waits for the server: one
transaction and one round trip (a pipeline) for every write of a group.

The updates of one app copy commit in serial order whichever process stores them: the group
takes the transaction-scoped lock of each app copy it writes to before drawing serials, in
the order of the locks' keys (so two processes' groups never wait for each other in a
cycle), and holds them to the commit. Each update is inserted unless its member stored its
`update_id` in that app copy already (then its serial is read back, `AlreadyStored`).

A connection lost during a group's commit leaves it unknown whether the group was kept (the
answer to COMMIT may be what was lost). A group of updates only, each named (the store
names those its sender did not), is then committed once more on a new connection: what the
first attempt kept is found by name and nothing is stored twice. A group with a chat
message (which has no name to be found by) fails with `StoreError` (`unavailable`), as does
a second loss; the connection is made again for the next group. While the store's own
connection knows the server to be unreachable, groups are refused at once
(`StoreUnavailable`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import psycopg

from ..api import AlreadyStored, MessageWrite, StoreError, UpdateWrite, Write
from .columns import utf8
from .connection import Connection

__all__ = ["GroupWriter"]

log = logging.getLogger(__name__)

_LOCK_APPS = ("SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT"
              " hashtextextended(app_id, 0) AS key FROM unnest(%s::text[]) AS a(app_id)"
              " ORDER BY key) AS keys")
# One statement, so that a group stays one round trip: the new row's serial and true, or
# the serial of the row stored before under the same name and false. That row is one an
# earlier statement committed or wrote in this transaction: the app copy's lock, taken
# before, waited for any other process's group that wrote to it.
_INSERT_UPDATE = ("WITH inserted AS (INSERT INTO updates (app_id, member_id, payload, info,"
                  " href, document, summary, notify, notify_keys, created, update_id)"
                  " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                  " ON CONFLICT DO NOTHING RETURNING serial)"
                  " SELECT serial, true FROM inserted UNION ALL SELECT serial, false"
                  " FROM updates WHERE app_id = %s AND member_id = %s AND update_id = %s"
                  " AND NOT EXISTS (SELECT FROM inserted)")
_INSERT_MESSAGE = ("INSERT INTO chat_messages (chat_id, app_id, member, text, file_name,"
                   " file_data, created) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id")


class GroupWriter:
    """Commits groups of writes on an asynchronous connection, made when first needed."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._db: psycopg.AsyncConnection[Any] | None = None

    async def commit(self, writes: list[Write]) -> list[int]:
        """Commit `writes` in one transaction; the serial or id of each, in order
        (`AlreadyStored` for an update stored before under its name)."""
        self._connection.connection()  # StoreUnavailable at once during a known outage
        started = time.perf_counter()
        try:
            ids = await self._commit_once(writes)
        except _Lost as lost:
            if not _can_retry(writes):
                raise self._connection.failed(lost.error, True) from None
            log.info("the connection was lost while committing %d updates; committing them "
                     "again on a new connection (those kept are found by name)", len(writes))
            try:
                ids = await self._commit_once(writes)
            except _Lost as again:
                raise self._connection.failed(again.error, True) from None
        self._connection.latency.observe(time.perf_counter() - started)
        return ids

    async def _commit_once(self, writes: list[Write]) -> list[int]:
        """One attempt at `commit` on the writer's connection (made if needed); `_Lost`
        if the connection was lost, with the group's fate unknown."""
        db = await self._open()
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
            return [_written(await cursor.fetchone()) for cursor in cursors]
        except psycopg.Error as exc:
            broken = db.closed or db.broken
            if broken or isinstance(exc, psycopg.OperationalError):
                self.close()
                raise _Lost(exc) from None
            raise self._connection.failed(exc, broken) from None

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


class _Lost(Exception):
    """The connection was lost during a commit: whether it was kept is unknown."""

    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.error = error


def _can_retry(writes: list[Write]) -> bool:
    """Whether committing `writes` again keeps each once whatever the first attempt did:
    only if each is found by its name."""
    return all(isinstance(w, UpdateWrite) and w.update_id is not None for w in writes)


def _written(row: tuple[Any, ...] | None) -> int:
    """The serial or id a write's statement returned."""
    if row is None:  # only if the row found under a name vanished in between
        raise StoreError("PostgreSQL: an update's row was neither inserted nor found",
                         "failed")
    if len(row) == 2 and not row[1]:
        return AlreadyStored(row[0])
    return int(row[0])


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
                            None if notify is None else json.dumps(notify), keys, time.time(),
                            write.update_id, write.app_id, write.member_id, write.update_id)
