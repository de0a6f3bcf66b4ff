"""Online backup and restore of a SQLite store.

A backup is SQLite's backup API run from a read-only connection: it copies the database as
one read transaction sees it, the newest commits in the write-ahead log included, while the
host goes on writing (in WAL mode readers and the writer do not wait for each other). A
plain copy of the database file would miss what is still in the `-wal` file.

A restore copies a backup over the data folder's database, then gives every page and home
page a fresh invite token (labels, `selfAddr`s, updates and messages are kept). A backup
holds the tokens that were valid when it was taken: without this, a link revoked or a
member removed after the backup would work again. Rotating every token costs each member a
new link (`webxdc-rt link show`), which a restore, rare and done by an operator, can afford;
it also makes the links in a backup file that leaked useless once restored.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ..api import StoreError
from .database import check_schema_version, store_error
from .files import create_private

__all__ = ["backup_database", "restore_database", "database_in_use"]

_SHM_DMS_BYTE = 128
"""The byte of a WAL database's `-shm` file on which every connection to it holds a shared
lock for as long as it is open (SQLite's unix VFS: `UNIX_SHM_DMS`). An exclusive lock on it
can be had only while no connection is open."""


def database_in_use(path: str | Path) -> bool:
    """Whether any process has the database at `path` open (a host or `serve`)."""
    try:
        descriptor = os.open(f"{path}-shm", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
    except OSError:
        return True
    finally:
        os.close(descriptor)  # closing releases the lock this process took
    return False


def backup_database(source: str | Path, destination: str | Path) -> None:
    """Copy the database at `source` (it may be in use) to a new file `destination`,
    readable by this user alone. StoreError if the source is not a webxdc-rt database this
    version knows; OSError if the destination exists or cannot be written."""
    target = Path(destination)
    with _open(source, read_only=True) as origin:
        _check_store(origin, str(source))
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.close(fd)
        try:
            with _open(target, read_only=False) as copy:
                origin.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one file, nothing beside it
        except BaseException:
            target.unlink(missing_ok=True)
            raise


def restore_database(source: str | Path, path: str | Path) -> int:
    """Replace the database at `path` (created if missing; it must not be in use) with the
    backup at `source`, and give every page and home page a fresh token. Returns how many
    tokens were replaced. StoreError if the backup is not a webxdc-rt database this version
    knows."""
    with _open(source, read_only=True) as origin:
        _check_store(origin, str(source))
        create_private(Path(path))
        with _open(path, read_only=False) as database:
            origin.backup(database)
            database.execute("PRAGMA journal_mode=WAL")
            return _rotate_tokens(database)


def _rotate_tokens(database: sqlite3.Connection) -> int:
    rotated = 0
    database.execute("BEGIN IMMEDIATE")  # one transaction: every old token goes, or none
    for table in ("pages", "homes"):
        labels = [row[0] for row in database.execute(f"SELECT label FROM {table}")]
        database.executemany(f"UPDATE {table} SET token = ? WHERE label = ?",
                             [(secrets.token_urlsafe(32), label) for label in labels])
        rotated += len(labels)
    database.execute("COMMIT")
    return rotated


def _check_store(database: sqlite3.Connection, name: str) -> None:
    """Refuse what is not a webxdc-rt database, or one of a newer schema."""
    check_schema_version(database.execute("PRAGMA user_version").fetchone()[0], name)
    tables = {row[0] for row in database.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"meta", "chats", "pages", "homes"} <= tables:
        raise StoreError(f"{name} is not a webxdc-rt database", "damaged")


@contextlib.contextmanager
def _open(path: str | Path, *, read_only: bool) -> Iterator[sqlite3.Connection]:
    """A connection to `path`, its sqlite3 errors as StoreError, closed on the way out."""
    try:
        if read_only:
            if not Path(path).is_file():
                raise StoreError(f"{path} does not exist or is not a file", "failed")
            database = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro",
                                       uri=True, isolation_level=None)
        else:
            database = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(exc) from exc
    try:
        yield database
    except sqlite3.Error as exc:
        raise store_error(exc) from exc
    finally:
        database.close()
