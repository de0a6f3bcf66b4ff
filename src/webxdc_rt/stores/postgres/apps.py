"""App copies in a PostgreSQL store, and the uploaded `.xdc` containers they are served
from."""

from __future__ import annotations

from ...model.chats import Page, SharedApp
from ..api import APP_USAGE_SQL, AppUsage, StoredApp, app_usage_parameters
from .chats import insert_pages
from .connection import AsyncRows, Connection, Cursor

__all__ = ["PostgresApps"]

_STORED = "SELECT id, container, key FROM apps ORDER BY added"
_CONTAINER = "SELECT data FROM containers WHERE digest = %s"


class PostgresApps:
    """The rows of app copies and of containers, each container kept once however many
    copies share it. The changes take the cursor of the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @staticmethod
    def add(cur: Cursor, app: SharedApp, pages: list[Page],
            container: tuple[str, bytes] | None) -> None:
        """Store a new app copy with its pages and, if given, its container (`(digest,
        bytes)`)."""
        if container is not None:
            cur.execute("INSERT INTO containers (digest, data) VALUES (%s, %s)"
                        " ON CONFLICT DO NOTHING", container)
        cur.execute("INSERT INTO apps (id, chat_id, name, key, sender, container)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (app.id, app.chat_id, app.name.encode(), app.key, app.sender,
                     None if container is None else container[0]))
        insert_pages(cur, pages)

    @staticmethod
    def remove(cur: Cursor, where: str, parameters: tuple[str, ...]) -> None:
        """Delete the app copies `where` selects (SQL on `apps`) with everything kept per
        copy, its pages and status updates, and the containers no copy uses any more."""
        selected = f"SELECT id FROM apps WHERE {where}"
        cur.execute(f"DELETE FROM pages WHERE app_id IN ({selected})", parameters)
        cur.execute(f"DELETE FROM updates WHERE app_id IN ({selected})", parameters)
        cur.execute(f"DELETE FROM apps WHERE {where}", parameters)
        cur.execute("DELETE FROM containers WHERE digest NOT IN"
                    " (SELECT container FROM apps WHERE container IS NOT NULL)")

    def stored(self) -> list[StoredApp]:
        """Where each app copy's files come from, oldest copy first."""
        with self._connection.cursor() as cur:
            rows = cur.execute(_STORED).fetchall()
        return [StoredApp(app_id, digest, key) for app_id, digest, key in rows]

    @staticmethod
    async def read_stored(reader: AsyncRows) -> list[StoredApp]:
        """`stored`, read on `reader`'s asynchronous connection."""
        return [StoredApp(app_id, digest, key)
                for app_id, digest, key in await reader.rows(_STORED, ())]

    def container(self, digest: str) -> bytes | None:
        """The bytes of a stored `.xdc`, if it is stored."""
        with self._connection.cursor() as cur:
            row = cur.execute(_CONTAINER, (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    @staticmethod
    async def read_container(reader: AsyncRows, digest: str) -> bytes | None:
        """`container`, read on `reader`'s asynchronous connection."""
        rows = await reader.rows(_CONTAINER, (digest,))
        return bytes(rows[0][0]) if rows else None

    def app_usage(self, chat_id: str, member_id: str) -> AppUsage:
        """What the stored app copies of the host, of a chat and of a member amount to."""
        with self._connection.cursor() as cur:
            row = cur.execute(APP_USAGE_SQL.format(p="%s"),
                              app_usage_parameters(chat_id, member_id)).fetchone()
        assert row is not None  # an aggregate without GROUP BY is one row
        return AppUsage(*(int(value) for value in row))
