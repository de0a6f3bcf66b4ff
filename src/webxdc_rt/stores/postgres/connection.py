"""The one PostgreSQL connection of a store: connecting with the store's limits, bringing
the schema up to date, reconnecting in the background after an outage, and psycopg's errors
as `StoreError`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import psycopg

from ...core.stats import LatencyHistogram
from ..api import StoreError, StoreErrorCode, StoreLimits, StoreUnavailable
from ..migrations import MIGRATION_LOCK, MIGRATIONS

__all__ = ["Connection", "Cursor", "Lost", "AsyncUser", "AsyncRows", "reason"]

log = logging.getLogger(__name__)

Cursor = psycopg.Cursor[Any]
"""A cursor of the store's connection, as the parts' changes inside a transaction take it."""

_CODES: dict[str, StoreErrorCode] = {
    "53100": "full", "25006": "read-only", "XX001": "damaged", "XX002": "damaged",
    "57014": "busy", "55P03": "busy",
}
"""SQLSTATEs that say more than "failed": disk full, read-only transaction, data or index
corrupted, statement cancelled (its timeout), lock not available."""


def reason(exc: BaseException) -> str:
    """psycopg's message, first line only."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Lost(Exception):
    """An asynchronous connection was found lost while it was used."""

    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.error = error


class AsyncRows(Protocol):
    """What reads off the event loop need of the store's reader (`reads.Reader`)."""

    async def rows(self, query: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Every row `query` returns, read on an asynchronous connection."""

    async def snapshot(self, queries: list[tuple[str, tuple[object, ...]]]
                       ) -> list[list[tuple[Any, ...]]]:
        """The rows of each of `queries`, all read in one snapshot."""


class AsyncUser:
    """A part of the store with an asynchronous connection of its own (the writer's, the
    reader's), made when first needed and made again after it was lost."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._db: psycopg.AsyncConnection[Any] | None = None

    def close(self) -> None:
        """Close the connection (a new one is made when next needed)."""
        db, self._db = self._db, None
        if db is not None and not db.closed:
            # Closing needs no round trip: done at once, from wherever the store is closed.
            db.pgconn.finish()

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        db = self._db
        if db is None or db.closed or db.broken:
            self.close()
            db = self._db = await self._connection.connect_async()
        return db

    def _failed(self, db: psycopg.AsyncConnection[Any], exc: psycopg.Error) -> Exception:
        """What to raise for `exc` from `db`: `Lost` (and the connection closed) when the
        connection is lost, else the `StoreError`."""
        broken = db.closed or db.broken
        if broken or isinstance(exc, psycopg.OperationalError):
            self.close()
            return Lost(exc)
        return self._connection.failed(exc, broken)


class Connection:
    """A store's connection to PostgreSQL. While the server is unreachable, statements are
    refused at once with `StoreUnavailable` and a background thread reconnects with backoff,
    saying so in the log once per outage."""

    def __init__(self, url: str, settings: StoreLimits) -> None:
        """Connect to the database at `url` and bring its schema up to date. Raises
        `StoreError` if it cannot be reached or set up."""
        self.url = url
        self.settings = settings
        self.latency = LatencyHistogram()
        """How long each write took, commit included."""
        self._closed = False
        self._reconnecting = threading.Lock()
        self._db: psycopg.Connection[Any] | None = self._connect()
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def params(self) -> dict[str, Any]:
        """psycopg's connection parameters for the store's limits."""
        s = self.settings
        return {"autocommit": True, "connect_timeout": max(1, round(s.connect_timeout_s)),
                "options": f"-c statement_timeout={round(s.statement_timeout_s * 1000)}",
                # A server that vanishes from the network is noticed in seconds, not when
                # the kernel gives up on the connection (minutes).
                "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                "keepalives_count": 3,
                "tcp_user_timeout": round(s.statement_timeout_s * 1000)}

    def connection(self) -> psycopg.Connection[Any]:
        """The open connection; `StoreUnavailable` while there is none."""
        db = self._db
        if db is None or db.closed:
            self._lost(None)
            raise StoreUnavailable("PostgreSQL is unreachable; reconnecting")
        return db

    @contextmanager
    def cursor(self, *, write: bool = False,
               transaction: bool = False) -> Iterator[Cursor]:
        """A cursor on the connection, inside a transaction if asked; psycopg's errors come
        out as `StoreError`, and a broken connection is replaced in the background. The
        time of a `write` is counted in `latency`."""
        db = self.connection()
        started = time.perf_counter()
        try:
            if transaction:
                with db.transaction(), db.cursor() as cursor:
                    yield cursor
            else:
                with db.cursor() as cursor:
                    yield cursor
        except psycopg.Error as exc:
            raise self.failed(exc, db.closed or db.broken) from None
        if write:
            self.latency.observe(time.perf_counter() - started)

    async def connect_async(self) -> psycopg.AsyncConnection[Any]:
        """A new asynchronous connection to the store's server, with the same parameters;
        `StoreError` (and reconnecting) when it cannot be made."""
        try:
            return await psycopg.AsyncConnection.connect(self.url, **self.params())
        except psycopg.Error as exc:
            raise self.failed(exc, True) from None

    def failed(self, exc: psycopg.Error, broken: bool) -> StoreError:
        """What a statement's failure is as a `StoreError`; a lost connection (`broken`, or
        an operational error) starts reconnecting in the background."""
        lost = isinstance(exc, psycopg.OperationalError) or broken
        if lost:
            self._lost(exc)
        log.debug("PostgreSQL statement failed", exc_info=True)
        code = "unavailable" if lost else _CODES.get(exc.sqlstate or "", "failed")
        return StoreError(f"PostgreSQL: {reason(exc)}", code)

    @property
    def schema_version(self) -> int:
        """The highest migration applied to the database."""
        with self.cursor() as cur:
            row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    def close(self) -> None:
        """Close the connection and stop reconnecting."""
        self._closed = True
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, **self.params())
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {reason(exc)}",
                             "unavailable") from None

    def _migrate(self) -> None:
        with self.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer)")
                row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
                applied = int(row[0] or 0) if row else 0
                if applied > len(MIGRATIONS):
                    raise StoreError(f"the database's schema is version {applied}, newer than "
                                     f"this webxdc-rt knows ({len(MIGRATIONS)})", "too-new")
                for version in range(applied + 1, len(MIGRATIONS) + 1):
                    with self.connection().transaction():
                        cur.execute(MIGRATIONS[version - 1])
                        cur.execute("INSERT INTO schema_version VALUES (%s)", (version,))
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    def _lost(self, exc: BaseException | None) -> None:
        """The connection is broken: drop it and reconnect in the background."""
        if self._closed or not self._reconnecting.acquire(blocking=False):
            return
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except psycopg.Error:
                pass
        why = reason(exc) if exc is not None else "connection closed"
        log.warning("PostgreSQL unreachable (%s); status updates and chat changes are "
                    "refused until it is back, reconnecting", why)
        threading.Thread(target=self._reconnect, name="webxdc-rt-pg-reconnect",
                         daemon=True).start()

    def _reconnect(self) -> None:
        wait = 0.1
        started = time.monotonic()
        try:
            while not self._closed:
                try:
                    db = psycopg.connect(self.url, **self.params())
                except psycopg.Error:
                    time.sleep(wait)
                    wait = min(wait * 2, self.settings.reconnect_max_s)
                    continue
                if self._closed:
                    db.close()
                    return
                self._db = db
                log.warning("PostgreSQL reachable again after %.1f s",
                            time.monotonic() - started)
                return
        finally:
            self._reconnecting.release()
