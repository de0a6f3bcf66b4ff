"""A live host's reads from PostgreSQL, on an asynchronous connection of their own, so the
event loop never waits for the server: updates (`StoreApi.read_updates`: one statement, one
round trip per chunk, which sizes the chunk, reads its rows and the app copy's highest serial
in one snapshot), and the other reads made while pages are served (a page's chat bytes, chat
messages and their list and files, notifications, the highest serial, app copies and their
containers, a chat or every chat read back: `rows`, and `snapshot` for several statements
that must agree). Reads asked for at once take turns, each whole: psycopg's own lock holds
the connection for one statement, not for the several statements of a snapshot (a pipeline
and a transaction spanning awaits), nor for making the connection. A connection lost is
made again for the next read. The store has two readers: one for
updates, one for the other reads, so that neither holds up the other.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg

from ...core.updates import Update
from ..api import StoredUpdate, UpdateChunk
from .columns import text
from .connection import AsyncUser, Connection, Lost
from .updates import UPDATE_BYTES

__all__ = ["Reader"]

# The rows after the serial asked for, with the running total of their bytes, as many as
# fit (the first always does); joined to the app copy's highest serial, so that an empty
# chunk is still one row (with NULL columns) that carries it.
_READ_CHUNK = (
    "WITH s AS (SELECT serial, payload, info, href, document, summary, notify,"
    f" sum({UPDATE_BYTES}) OVER (ORDER BY serial) AS running,"
    " row_number() OVER (ORDER BY serial) AS n"
    " FROM updates WHERE app_id = %s AND serial > %s ORDER BY serial LIMIT %s)"
    " SELECT m.newest, s.serial, s.payload, s.info, s.href, s.document, s.summary, s.notify"
    " FROM (SELECT max(serial) FROM updates WHERE app_id = %s) AS m(newest)"
    " LEFT JOIN s ON s.running <= %s OR s.n = 1 ORDER BY s.serial")


class Reader(AsyncUser):
    """Reads on an asynchronous connection, made when first needed: chunks of updates
    (`read`), and any other statements (`rows`, `snapshot`), one read at a time."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._turn = asyncio.Lock()
        """Held for the whole of one read (`snapshot`)."""

    async def read(self, app_id: str, serial: int, max_bytes: int,
                   max_rows: int = 1000) -> UpdateChunk:
        """The updates after `serial` that hold at most `max_bytes` together (always at
        least one), and the app copy's highest serial, as one snapshot shows them."""
        rows = await self.rows(_READ_CHUNK, (app_id, serial, max_rows, app_id, max_bytes))
        newest = int(rows[0][0] or 0) if rows else 0
        return UpdateChunk([StoredUpdate(row[1], Update(
            row[2], text(row[3]), text(row[4]), text(row[5]), text(row[6]),
            None if row[7] is None else json.loads(row[7])))
            for row in rows if row[1] is not None], newest)

    async def rows(self, query: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Every row `query` returns, read on the reader's connection."""
        return (await self.snapshot([(query, parameters)]))[0]

    async def snapshot(self, queries: list[tuple[str, tuple[object, ...]]]
                       ) -> list[list[tuple[Any, ...]]]:
        """The rows of each of `queries`, all read in one snapshot (one transaction, in
        one round trip). Reads made on a connection found lost (the server restarted since
        the last read) are made once more on a new connection: reading twice does no
        harm. `StoreError` (`StoreUnavailable` at once during a known outage) if the
        server cannot answer."""
        self._connection.connection()  # StoreUnavailable at once during a known outage
        async with self._turn:
            try:
                return await self._snapshot(queries)
            except Lost:
                try:
                    return await self._snapshot(queries)
                except Lost as again:
                    raise self._connection.failed(again.error, True) from None

    async def _snapshot(self, queries: list[tuple[str, tuple[object, ...]]]
                        ) -> list[list[tuple[Any, ...]]]:
        """`snapshot` on the reader's connection (made if needed); `Lost` if that
        connection was found lost."""
        db = await self._open()
        try:
            if len(queries) == 1:  # one statement is one snapshot already
                cursor = await db.execute(*queries[0])
                return [await cursor.fetchall()]
            async with db.pipeline(), db.transaction():
                await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursors = [await db.execute(*query) for query in queries]
            return [await cursor.fetchall() for cursor in cursors]
        except psycopg.Error as exc:
            raise self._failed(db, exc) from None

