"""The one SQLite connection a store's parts share: opening the file with the schema,
transactions, and SQLite's errors as `StoreError`.

The connection is used from two threads: the store's writer thread commits what pages send
(in groups, see `commits`), the event loop reads and makes management's changes. One lock
held for each statement, and for the whole of a transaction, keeps them apart: a read never
sees a group that is not committed, and waits at most for one commit in flight.

Every statement goes through `Database`, so that nothing of `sqlite3` reaches the host: a
`sqlite3.Error` comes out as a `StoreError` with the same message and a code saying what
kind of failure it is. Reads fetch their rows at once, inside that translation, since
SQLite may fail on any row of a result, not only the first.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Literal, Protocol

from ...core.stats import LatencyHistogram
from ..api import StoreError, StoreErrorCode
from .files import create_private

__all__ = ["DB_FILE_NAME", "SCHEMA_VERSION", "Synchronous", "Database", "ReadConnection",
           "Rows", "store_error", "check_schema_version"]

DB_FILE_NAME = "webxdc-rt.sqlite3"

Synchronous = Literal["FULL", "NORMAL"]
"""SQLite's `synchronous` setting in WAL mode. FULL: every commit is on disk when it returns
(fsync of the log per commit). NORMAL: commits survive a crash of the process but the last
ones may be lost on power loss (fsync only at checkpoints)."""
_SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, members TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS containers (digest TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS apps (
    id TEXT PRIMARY KEY, chat_id TEXT NOT NULL REFERENCES chats(id), name TEXT NOT NULL,
    key TEXT NOT NULL, sender TEXT NOT NULL,
    container TEXT REFERENCES containers(digest));
CREATE TABLE IF NOT EXISTS homes (
    label TEXT PRIMARY KEY, token TEXT NOT NULL, chat_id TEXT NOT NULL REFERENCES chats(id),
    member_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    label TEXT PRIMARY KEY, token TEXT NOT NULL, app_id TEXT NOT NULL REFERENCES apps(id),
    member_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    serial INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL, member_id TEXT NOT NULL,
    payload TEXT NOT NULL, info TEXT, href TEXT, document TEXT, summary TEXT, notify TEXT,
    created REAL NOT NULL, update_id TEXT);
CREATE INDEX IF NOT EXISTS updates_by_app ON updates (app_id, serial);
CREATE INDEX IF NOT EXISTS updates_notifying ON updates (app_id, serial)
    WHERE notify IS NOT NULL;
CREATE TABLE IF NOT EXISTS chat_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id TEXT NOT NULL, app_id TEXT NOT NULL,
    member TEXT NOT NULL, text TEXT, file_name TEXT, file_data BLOB, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS chat_messages_by_chat ON chat_messages (chat_id, id);
"""
_MIGRATIONS = (
    # Added with uploaded apps: the container an app copy is served from (NULL: the path
    # in `key`, as `serve` shares it).
    ("apps", "container", "ALTER TABLE apps ADD COLUMN container TEXT"
                          " REFERENCES containers(digest)"),
    # Added with named updates: the name a member gave an update (NULL: none, as every
    # update stored before had), unique per app copy and member (`_AFTER_MIGRATIONS`).
    ("updates", "update_id", "ALTER TABLE updates ADD COLUMN update_id TEXT"),
)
"""Columns that databases written by older versions lack: (table, column, statement)."""

_AFTER_MIGRATIONS = """
CREATE UNIQUE INDEX IF NOT EXISTS updates_by_id ON updates (app_id, member_id, update_id)
    WHERE update_id IS NOT NULL;
"""
"""What needs the columns `_MIGRATIONS` add."""

SCHEMA_VERSION = 2
"""The version of `SCHEMA` with `_MIGRATIONS`, kept in the database's `user_version`. 0 is
a database of a release before versioning (the same tables, upgraded in place); a database
with a higher version was written by a newer webxdc-rt and is refused, since this one
could not know what its tables mean. Raise it with every change to the schema."""

_CODES: dict[int, StoreErrorCode] = {
    sqlite3.SQLITE_FULL: "full", sqlite3.SQLITE_CORRUPT: "damaged",
    sqlite3.SQLITE_NOTADB: "damaged", sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy", sqlite3.SQLITE_READONLY: "read-only",
}
"""SQLite's primary result codes that say more than "failed"."""


def store_error(exc: sqlite3.Error) -> StoreError:
    """What SQLite said, as a `StoreError` with the same message."""
    primary = getattr(exc, "sqlite_errorcode", None)
    code = _CODES.get(primary & 0xFF, "failed") if primary is not None else "failed"
    return StoreError(str(exc), code)


def check_schema_version(version: int, path: str) -> None:
    """Refuse (`StoreError`, code `too-new`) a database whose schema is newer than this
    webxdc-rt's."""
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has schema version {version}, newer than this webxdc-rt "
                         f"knows ({SCHEMA_VERSION}): upgrade webxdc-rt, or restore a backup "
                         "taken before the upgrade", "too-new")


class Database:
    """The store's SQLite connection, in autocommit mode unless in a `transaction`."""

    def __init__(self, path: str, synchronous: Synchronous) -> None:
        """Open (creating it if needed) the database at `path` with the schema in place.
        Raises `StoreError` if it cannot be used."""
        self.latency = LatencyHistogram()
        """How long each timed write took, commit included."""
        self.lock = threading.RLock()
        """Held for each statement and for the whole of a transaction (see above)."""
        try:
            if path != ":memory:":
                create_private(Path(path))
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror or exc}", "failed") from exc
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
        try:
            self.execute("PRAGMA journal_mode=WAL")
            self.execute(f"PRAGMA synchronous={synchronous}")
            self.execute("PRAGMA foreign_keys=ON")
            version = self.row("PRAGMA user_version")[0]
            check_schema_version(version, path)
            self._script(SCHEMA)
            for table, column, statement in _MIGRATIONS:
                columns = {row[1] for row in self.rows(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self.execute(statement)
            self._script(_AFTER_MIGRATIONS)
            if version < SCHEMA_VERSION:
                self.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            self._db.close()  # a damaged or unwritable database: no connection left open
            raise

    @property
    def synchronous(self) -> str:
        """The durability of commits in force: `FULL` or `NORMAL` (see `Synchronous`)."""
        level = self.row("PRAGMA synchronous")[0]
        return _SYNCHRONOUS_NAMES.get(level, str(level))

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        """Run one statement (a write: its rows are not read)."""
        try:
            with self.lock:
                return self._db.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def executemany(self, sql: str, rows: Any) -> None:
        """Run one statement for each of `rows`."""
        try:
            with self.lock:
                self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def rows(self, sql: str, parameters: Any = ()) -> list[Any]:
        """Every row a query returns."""
        try:
            with self.lock:
                return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def row(self, sql: str, parameters: Any = ()) -> Any:
        """The first row a query returns, or None."""
        try:
            with self.lock:
                return self._db.execute(sql, parameters).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def transaction(self) -> Transaction:
        """BEGIN ... COMMIT around a block, or ROLLBACK when it raises; a commit's time is
        counted in `latency`."""
        return Transaction(self, self.latency)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self._db.close()

    @property
    def in_transaction(self) -> bool:
        """A transaction is open (a failed commit may leave one so)."""
        return self._db.in_transaction

    def _script(self, script: str) -> None:
        try:
            with self.lock:
                self._db.executescript(script)
        except sqlite3.Error as exc:
            raise store_error(exc) from exc


class Rows(Protocol):
    """What reads need of a connection: the rows of a query."""

    def rows(self, sql: str, parameters: Any = ()) -> list[Any]:
        """Every row a query returns."""


class ReadConnection:
    """A second connection to a store's file, for reading on a thread of its own: in WAL
    mode its reads run beside the writer's commits, never waiting for one, and each sees
    the commits that ended before it began. Opened on first use, on the thread that uses
    it; used by that thread only."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    def rows(self, sql: str, parameters: Any = ()) -> list[Any]:
        """Every row a query returns (in a read transaction of its own)."""
        try:
            db = self._db
            if db is None:
                db = self._db = sqlite3.connect(self._path, isolation_level=None,
                                                check_same_thread=False)
                db.execute("PRAGMA query_only=ON")
            return db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def close(self) -> None:
        """Close the connection, if it was opened (from any thread, once reads ended)."""
        db, self._db = self._db, None
        if db is not None:
            db.close()


class Transaction:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises; a commit's time is counted."""

    def __init__(self, db: Database, latency: LatencyHistogram) -> None:
        self._db = db
        self._latency = latency
        self._started = 0.0

    def __enter__(self) -> None:
        self._db.lock.acquire()
        try:
            self._started = time.perf_counter()
            self._db.execute("BEGIN")
        except BaseException:
            self._db.lock.release()
            raise

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            self._end(bool(exc_type))
        finally:
            self._db.lock.release()

    def _end(self, failed: bool) -> None:
        if failed:
            self._db.execute("ROLLBACK")
            return
        try:
            self._db.execute("COMMIT")
        except StoreError:
            # A commit that failed (a full disk) may leave the transaction open.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._latency.observe(time.perf_counter() - self._started)

