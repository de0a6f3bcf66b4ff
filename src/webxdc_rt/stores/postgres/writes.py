"""What pages send, committed to PostgreSQL in groups (`commits.GroupCommit`) on an
asynchronous connection of its own, so the event loop never waits for the server: one
transaction and one round trip (a pipeline) for every write of a group, and one statement
for all its updates (a multi-row INSERT from arrays, one per column): a statement costs the
event loop about 0.1 ms of psycopg's own work, so one per update capped a process at a few
thousand updates per second whatever the group size.

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
# The rows go in in the order of the arrays (ORDER BY the ordinal), so the serials the
# sequence gives them rise in that order. A row's notify_keys arrive as a JSON array (arrays
# of arrays cannot be passed as one parameter).
_INSERT_UPDATES = (
    "INSERT INTO updates (app_id, member_id, payload, info, href, document, summary,"
    " notify, notify_keys, created)"
    " SELECT app_id, member_id, payload, info, href, document, summary, notify,"
    " CASE WHEN keys IS NULL THEN NULL"
    " ELSE ARRAY(SELECT json_array_elements_text(keys::json)) END, created"
    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[], %s::bytea[], %s::bytea[],"
    " %s::bytea[], %s::text[], %s::text[], %s::float8[]) WITH ORDINALITY"
    " AS w(app_id, member_id, payload, info, href, document, summary, notify, keys, created,"
    " ordinal) ORDER BY ordinal RETURNING serial")
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
            updates = [w for w in writes if isinstance(w, UpdateWrite)]
            async with db.pipeline(), db.transaction():
                if apps:
                    await db.execute(_LOCK_APPS, (apps,))
                    inserted = db.cursor()
                    await inserted.execute(_INSERT_UPDATES, _update_columns(updates))
                messages = []
                for write in writes:
                    if isinstance(write, MessageWrite):
                        cursor = db.cursor()
                        await cursor.execute(*_insert_message(write))
                        messages.append(cursor)
            serials = iter(sorted([int(row[0]) for row in await inserted.fetchall()])
                           if apps else [])
            ids = []
            for write in writes:  # back in the order of the writes
                if isinstance(write, UpdateWrite):
                    ids.append(next(serials))
                else:
                    row = await messages.pop(0).fetchone()
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


def _insert_message(write: MessageWrite) -> tuple[str, tuple[object, ...]]:
    """The statement that inserts the chat message `write`, with its parameters."""
    return _INSERT_MESSAGE, (write.chat_id, write.app_id, write.member.encode(),
                             utf8(write.text), utf8(write.file_name), write.file_data,
                             time.time())


def _update_columns(writes: list[UpdateWrite]) -> tuple[list[object], ...]:
    """The parameters of `_INSERT_UPDATES` for `writes`: one list per column, in order."""
    now = time.time()
    rows = []
    for write in writes:
        update, notify = write.update, write.update.notify
        # A key with NUL is kept in notify but cannot be in a text[] (nor in JSON's text).
        keys = None if notify is None else json.dumps(
            [key for key in notify if "\0" not in key], ensure_ascii=False)
        rows.append((write.app_id, write.member_id, update.payload_json, utf8(update.info),
                     utf8(update.href), utf8(update.document), utf8(update.summary),
                     None if notify is None else json.dumps(notify), keys, now))
    return tuple(list(column) for column in zip(*rows, strict=True))
