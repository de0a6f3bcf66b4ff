"""App copies in a SQLite store, and the uploaded `.xdc` containers they are served from."""

from __future__ import annotations

from ...model.chats import Page, SharedApp
from ..api import APP_USAGE_SQL, AppUsage, StoredApp, app_usage_parameters
from .chats import insert_pages
from .database import Database, Rows

__all__ = ["SqliteApps"]


class SqliteApps:
    """The rows of app copies and of containers, each container kept once however many
    copies share it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, app: SharedApp, pages: list[Page],
            container: tuple[str, bytes] | None) -> None:
        """Store a new app copy with its pages and, if given, its container (`(digest,
        bytes)`), in a transaction."""
        if container is not None:
            self._db.execute("INSERT OR IGNORE INTO containers (digest, data) VALUES (?, ?)",
                             container)
        self._db.execute(
            "INSERT INTO apps (id, chat_id, name, key, sender, container)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (app.id, app.chat_id, app.name, app.key, app.sender,
             None if container is None else container[0]))
        insert_pages(self._db, pages)

    def ids_in_chat(self, chat_id: str) -> list[str]:
        """The ids of a chat's app copies."""
        return [row[0] for row in
                self._db.rows("SELECT id FROM apps WHERE chat_id = ?", (chat_id,))]

    def remove(self, where: str, parameters: tuple[str, ...]) -> None:
        """Delete the app copies `where` selects (SQL on `apps`) with everything kept per
        copy, its pages and status updates, and the containers no copy uses any more (in a
        transaction)."""
        selected = f"SELECT id FROM apps WHERE {where}"
        self._db.execute(f"DELETE FROM pages WHERE app_id IN ({selected})", parameters)
        self._db.execute(f"DELETE FROM updates WHERE app_id IN ({selected})", parameters)
        self._db.execute(f"DELETE FROM apps WHERE {where}", parameters)
        self._db.execute("DELETE FROM containers WHERE digest NOT IN"
                         " (SELECT container FROM apps WHERE container IS NOT NULL)")

    @staticmethod
    def stored(db: Rows) -> list[StoredApp]:
        """On `db` (the store's connection, or the reader's on the reader's thread): where
        each app copy's files come from, oldest copy first."""
        return [StoredApp(app_id, digest, key) for app_id, digest, key in db.rows(
            "SELECT id, container, key FROM apps ORDER BY rowid")]

    @staticmethod
    def container(db: Rows, digest: str) -> bytes | None:
        """On `db` (as `stored`): the bytes of a stored `.xdc`, if it is stored."""
        rows = db.rows("SELECT data FROM containers WHERE digest = ?", (digest,))
        return bytes(rows[0][0]) if rows else None

    def app_usage(self, chat_id: str, member_id: str) -> AppUsage:
        """What the stored app copies of the host, of a chat and of a member amount to."""
        row = self._db.row(APP_USAGE_SQL.format(p="?"),
                           app_usage_parameters(chat_id, member_id))
        assert row is not None  # an aggregate without GROUP BY is one row
        return AppUsage(*(int(value) for value in row))
