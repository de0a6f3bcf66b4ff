"""What pages send, committed to PostgreSQL in groups (`commits.GroupCommit`) on an
asynchronous connection of its own, so the event loop never waits for the server: one
transaction and one round trip (a pipeline) for every write of a group, and one statement
for all its updates (a multi-row INSERT from arrays, one per column): a statement costs the
event loop about 0.1 ms of psycopg's own work, so one per update capped a process at a few
thousand updates per second whatever the group size.

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
from collections.abc import Callable
from typing import Any

import psycopg

from ..api import AlreadyStored, MessageWrite, StoreError, UpdateWrite, Write
from .columns import utf8
from .connection import AsyncUser, Lost

__all__ = ["GroupWriter"]

log = logging.getLogger(__name__)

_LOCK_APPS = ("SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT"
              " hashtextextended(app_id, 0) AS key FROM unnest(%s::text[]) AS a(app_id)"
              " ORDER BY key) AS keys")
# One statement for all the updates of a group. The rows go in in the order of the arrays
# (ORDER BY the ordinal), so the serials the sequence gives them rise in that order; a row
# whose (app copy, member, name) is stored already is skipped, as is a second of the same
# name in the group. What it returns is the new rows (true), then the rows stored before
# under the names of those skipped (false): those the statement's snapshot shows, committed
# before the app copy's lock was taken (it waited for any other process's group that wrote
# to the app copy). A row's notify_keys arrive as a JSON array (arrays of arrays cannot be
# passed as one parameter).
_INSERT_UPDATES = (
    "WITH w AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[],"
    " %s::bytea[], %s::bytea[], %s::bytea[], %s::text[], %s::text[], %s::float8[],"
    " %s::text[]) WITH ORDINALITY AS w(app_id, member_id, payload, info, href, document,"
    " summary, notify, keys, created, update_id, ordinal)),"
    " inserted AS (INSERT INTO updates (app_id, member_id, payload, info, href, document,"
    " summary, notify, notify_keys, created, update_id)"
    " SELECT app_id, member_id, payload, info, href, document, summary, notify,"
    " CASE WHEN keys IS NULL THEN NULL"
    " ELSE ARRAY(SELECT json_array_elements_text(keys::json)) END, created, update_id"
    " FROM w ORDER BY ordinal ON CONFLICT DO NOTHING"
    " RETURNING serial, app_id, member_id, update_id)"
    " SELECT serial, app_id, member_id, update_id, true FROM inserted"
    " UNION ALL SELECT u.serial, u.app_id, u.member_id, u.update_id, false FROM updates AS u"
    " JOIN (SELECT app_id, member_id, update_id FROM w EXCEPT"
    " SELECT app_id, member_id, update_id FROM inserted) AS skipped"
    " USING (app_id, member_id, update_id)")
_INSERT_MESSAGE = ("INSERT INTO chat_messages (chat_id, app_id, member, text, file_name,"
                   " file_data, created) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id")


class GroupWriter(AsyncUser):
    """Commits groups of writes on an asynchronous connection, made when first needed."""

    async def commit(self, writes: list[Write]) -> list[int]:
        """Commit `writes` in one transaction; the serial or id of each, in order
        (`AlreadyStored` for an update stored before under its name)."""
        self._connection.connection()  # StoreUnavailable at once during a known outage
        started = time.perf_counter()
        try:
            ids = await self._commit_once(writes)
        except Lost as lost:
            if not _can_retry(writes):
                raise self._connection.failed(lost.error, True) from None
            log.info("the connection was lost while committing %d updates; committing them "
                     "again on a new connection (those kept are found by name)", len(writes))
            try:
                ids = await self._commit_once(writes)
            except Lost as again:
                raise self._connection.failed(again.error, True) from None
        self._connection.latency.observe(time.perf_counter() - started)
        return ids

    async def _commit_once(self, writes: list[Write]) -> list[int]:
        """One attempt at `commit` on the writer's connection (made if needed); `Lost`
        if the connection was lost, with the group's fate unknown."""
        db = await self._open()
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
            stored = _update_serials(await inserted.fetchall() if apps else [])
            ids = []
            for write in writes:  # back in the order of the writes
                if isinstance(write, UpdateWrite):
                    ids.append(stored(write))
                else:
                    row = await messages.pop(0).fetchone()
                    assert row is not None
                    ids.append(int(row[0]))
            return ids
        except psycopg.Error as exc:
            raise self._failed(db, exc) from None


def _can_retry(writes: list[Write]) -> bool:
    """Whether committing `writes` again keeps each once whatever the first attempt did:
    only if each is found by its name."""
    return all(isinstance(w, UpdateWrite) and w.update_id is not None for w in writes)


def _update_serials(rows: list[tuple[Any, ...]]) -> Callable[[UpdateWrite], int]:
    """From the rows `_INSERT_UPDATES` returned, what each update write of the group came
    to, looked up by its (app copy, member, name): the serial of the row it inserted, or
    `AlreadyStored` with the serial of the row stored before under its name (by an earlier
    group, or by a write before it in this one)."""
    new: dict[tuple[str, str, str | None], int] = {}
    old: dict[tuple[str, str, str | None], int] = {}
    for serial, app_id, member_id, update_id, inserted in rows:
        (new if inserted else old)[app_id, member_id, update_id] = int(serial)

    def stored(write: UpdateWrite) -> int:
        key = (write.app_id, write.member_id, write.update_id)
        serial = new.pop(key, None)
        if serial is not None:
            old[key] = serial  # a second write of the name in this group finds this row
            return serial
        if key not in old:  # only if the row found under a name vanished in between
            raise StoreError("PostgreSQL: an update's row was neither inserted nor found",
                             "failed")
        return AlreadyStored(old[key])

    return stored


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
                     None if notify is None else json.dumps(notify), keys, now,
                     write.update_id))
    return tuple(list(column) for column in zip(*rows, strict=True))
