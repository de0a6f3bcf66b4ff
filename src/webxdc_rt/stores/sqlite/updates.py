"""Status updates in a SQLite store: appended with their serial, read back in order and in
chunks of bounded size, repaired where older versions stored what is not strict JSON."""

from __future__ import annotations

import json
import time

from ...core.updates import Update
from ..api import AlreadyStored, Notification, StoredUpdate, UpdateChunk, leading_within
from .database import Database, Rows
from .repair import Repair

__all__ = ["SqliteUpdates"]


class SqliteUpdates:
    """The `updates` table, with the highest serial of each app copy kept in memory (only
    this process writes to the file). That serial is the highest one reported: reads show
    no update above it, so an update committed by the writer thread is read only once the
    event loop was told of it (`reported`)."""

    def __init__(self, db: Database, repair: Repair) -> None:
        """Read the highest serial of every app copy (once, as the store opens): from then
        on this process knows each one, and `max_serial` never reads the file."""
        self._db = db
        self._repair = repair
        self._max_serial = _highest_serials(db)
        self._checked_to: dict[str, int] = {}
        """Per app copy, the serial up to which every stored payload was checked."""
        self._flawed: set[int] = set()
        """Serials of the rows whose payload is repaired each time it is read."""

    def append(self, app_id: str, member_id: str, update: Update) -> int:
        """Store an update (committed before this returns, its time counted); return its
        serial."""
        started = time.perf_counter()
        serial = self.insert(app_id, member_id, update)
        self._max_serial[app_id] = serial
        self._db.latency.observe(time.perf_counter() - started)
        return serial

    def insert(self, app_id: str, member_id: str, update: Update,
               update_id: str | None = None) -> int:
        """Insert an update (committed with the transaction, if one is open); its serial.
        Readable once `reported`. One whose `update_id` the member stored already in this
        app copy (before, or earlier in the transaction) is not inserted: `AlreadyStored`
        with the serial it has."""
        cursor = self._db.execute(
            "INSERT INTO updates (app_id, member_id, payload, info, href, document, summary,"
            " notify, created, update_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (app_id, member_id, update.payload_json, update.info, update.href,
             update.document, update.summary,
             None if update.notify is None else json.dumps(update.notify), time.time(),
             update_id))
        if cursor.rowcount == 0:
            row = self._db.row("SELECT serial FROM updates WHERE app_id = ? AND member_id = ?"
                               " AND update_id = ?", (app_id, member_id, update_id))
            return AlreadyStored(row[0])
        return int(cursor.lastrowid or 0)

    def reported(self, app_id: str, serial: int) -> None:
        """The update `serial` of `app_id` is committed and its listeners are being told:
        reads show it from now on."""
        self._max_serial[app_id] = max(serial, self._max_serial.get(app_id, 0))

    def chunk(self, db: Rows, app_id: str, serial: int, newest: int, max_bytes: int,
              max_rows: int = 1000) -> UpdateChunk:
        """On `db` (the reader's connection, on the reader's thread): the updates after
        `serial` up to `newest` (the highest serial reported when the read was asked for)
        that hold at most `max_bytes` of text together (always at least one)."""
        count = self._fitting(db, app_id, serial, newest, max_bytes, max_rows)
        updates = self.read(db, app_id, serial, newest, count) if count else []
        return UpdateChunk(updates, newest)

    def read(self, db: Rows, app_id: str, serial: int, newest: int,
             limit: int) -> list[StoredUpdate]:
        """On `db`: up to `limit` updates after `serial` up to `newest`, repaired where the
        stored row is not strict JSON text (see `repair`; a payload is checked the first
        time this process reads its row). The checks' bookkeeping is kept by the reader
        thread and dropped by the loop (`forget`): each change to it is one step (dict and
        set operations), and a row checked twice is only checked twice."""
        rows = db.rows(
            "SELECT serial, CAST(payload AS BLOB), CAST(info AS BLOB), CAST(href AS BLOB),"
            " CAST(document AS BLOB), CAST(summary AS BLOB), CAST(notify AS BLOB) FROM updates"
            " WHERE app_id = ? AND serial > ? AND serial <= ? ORDER BY serial LIMIT ?",
            (app_id, serial, newest, limit))
        checked_to = self._checked_to.get(app_id, 0)
        text = self._repair.text
        updates = []
        for row in rows:
            where = f"update {row[0]} of app copy {app_id}"
            payload = text(row[1], where) or "null"
            if row[0] > checked_to or row[0] in self._flawed:
                repaired = self._repair.payload(payload, where)
                if repaired is not None:
                    self._flawed.add(row[0])
                    payload = repaired
            info, href, document, summary = (text(value, where) for value in row[2:6])
            notify_text = text(row[6], where)
            notify = None if notify_text is None else self._repair.notify(notify_text, where)
            updates.append(StoredUpdate(row[0], Update(payload, info, href, document, summary,
                                                       notify)))
        if updates and serial <= checked_to:  # every row up to the last one is checked now
            self._checked_to[app_id] = max(checked_to, updates[-1].serial)
        return updates

    @staticmethod
    def _fitting(db: Rows, app_id: str, serial: int, newest: int, max_bytes: int,
                 max_rows: int) -> int:
        rows = db.rows(
            "SELECT length(CAST(payload AS BLOB)) + coalesce(length(CAST(info AS BLOB)), 0)"
            " + coalesce(length(CAST(href AS BLOB)), 0)"
            " + coalesce(length(CAST(document AS BLOB)), 0)"
            " + coalesce(length(CAST(summary AS BLOB)), 0)"
            " + coalesce(length(CAST(notify AS BLOB)), 0)"
            " FROM updates WHERE app_id = ? AND serial > ? AND serial <= ? ORDER BY serial"
            " LIMIT ?", (app_id, serial, newest, max_rows))
        return leading_within((size for (size,) in rows), max_bytes)

    def max_serial(self, app_id: str) -> int:
        """The highest serial of an app copy's updates reported (0 when it has none), from
        memory: read as the store opened, and kept since."""
        return self._max_serial.get(app_id, 0)

    def notifications(self, db: Rows, member_id: str, addresses: dict[str, str],
                      limit: int) -> list[Notification]:
        """On `db` (the reader's connection, on the reader's thread): the latest updates
        that notify one member, oldest first (see `StoreApi.read_notifications`)."""
        if not addresses:
            return []
        pairs = ",".join("(?, ?)" for _ in addresses)
        # A damaged `notify` (not JSON) is passed over, never an error: json_type would
        # raise on it, so it is only asked of valid JSON.
        rows = db.rows(
            f"WITH addressed(app_id, path) AS (VALUES {pairs})"
            " SELECT serial, updates.app_id, member_id, CAST(notify AS BLOB), created"
            " FROM updates JOIN addressed ON updates.app_id = addressed.app_id"
            " WHERE notify IS NOT NULL AND member_id != ? AND CASE WHEN json_valid(notify)"
            " THEN json_type(notify, '$.\"*\"') IS NOT NULL"
            " OR json_type(notify, addressed.path) IS NOT NULL ELSE 0 END"
            " ORDER BY serial DESC LIMIT ?",
            (*(value for app_id, addr in addresses.items()
               for value in (app_id, f'$."{addr}"')), member_id, limit))
        found = []
        for serial, app_id, sender, notify_text, created in reversed(rows):
            where = f"update {serial} of app copy {app_id}"
            notify = self._repair.notify(self._repair.text(notify_text, where) or "null",
                                         where) or {}
            text = notify.get(addresses[app_id], notify.get("*"))
            if text is not None:
                found.append(Notification(serial, app_id, sender, text, float(created)))
        return found

    def forget(self, app_ids: list[str]) -> None:
        """The app copies were deleted: drop what is kept of them in memory."""
        for app_id in app_ids:
            self._max_serial.pop(app_id, None)
            self._checked_to.pop(app_id, None)


def _highest_serials(db: Rows) -> dict[str, int]:
    """The highest serial of each app copy with updates, found through the index by app
    copy (two look-ups per app copy), not by a scan of every update: a large file opens as
    fast as one with few updates."""
    found: dict[str, int] = {}
    [(app_id,)] = db.rows("SELECT min(app_id) FROM updates")
    while app_id is not None:
        [(serial,)] = db.rows("SELECT max(serial) FROM updates WHERE app_id = ?", (app_id,))
        found[app_id] = int(serial)
        [(app_id,)] = db.rows("SELECT min(app_id) FROM updates WHERE app_id > ?", (app_id,))
    return found
