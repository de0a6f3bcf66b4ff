"""A live host's reads of updates from PostgreSQL (`StoreApi.read_updates`), on an
asynchronous connection of their own, so the event loop never waits for the server: one
statement, one round trip per chunk, which sizes the chunk, reads its rows and the app
copy's highest serial in one snapshot. Reads asked for at once take turns on the
connection (psycopg's own lock); a connection lost is made again for the next read.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from ...core.updates import Update
from ..api import StoredUpdate, UpdateChunk
from .columns import text
from .connection import AsyncUser, Lost
from .updates import UPDATE_BYTES

__all__ = ["UpdateReader"]

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


class UpdateReader(AsyncUser):
    """Reads chunks of updates on an asynchronous connection, made when first needed."""

    async def read(self, app_id: str, serial: int, max_bytes: int,
                   max_rows: int = 1000) -> UpdateChunk:
        """The updates after `serial` that hold at most `max_bytes` together (always at
        least one), and the app copy's highest serial, as one snapshot shows them. A read
        on a connection found lost (the server restarted since the last read) is made
        once more on a new connection: reading twice does no harm."""
        self._connection.connection()  # StoreUnavailable at once during a known outage
        parameters = (app_id, serial, max_rows, app_id, max_bytes)
        try:
            rows = await self._rows(parameters)
        except Lost:
            try:
                rows = await self._rows(parameters)
            except Lost as again:
                raise self._connection.failed(again.error, True) from None
        newest = int(rows[0][0] or 0) if rows else 0
        return UpdateChunk([StoredUpdate(row[1], Update(
            row[2], text(row[3]), text(row[4]), text(row[5]), text(row[6]),
            None if row[7] is None else json.loads(row[7])))
            for row in rows if row[1] is not None], newest)

    async def _rows(self, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """The rows of `_READ_CHUNK` on the reader's connection (made if needed); `Lost`
        if that connection was found lost."""
        db = await self._open()
        try:
            cursor = await db.execute(_READ_CHUNK, parameters)
            return await cursor.fetchall()
        except psycopg.Error as exc:
            raise self._failed(db, exc) from None

