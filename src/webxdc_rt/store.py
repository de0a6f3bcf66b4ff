"""Where chats, pages, status updates and chat messages live: SQLite.

A file under the data directory by default (`webxdc-rt.sqlite3`), or `:memory:` for a host
that keeps nothing. Writes are committed before they are acted on: an update is stored
before anyone is sent it, and by default durably (WAL with `synchronous=FULL`: the log is
fsynced at every commit), so what the host delivered survives a power loss, not only a crash.
Commits are made on the event loop without a thread hop, which keeps serial order and
delivery order the same; `bench/store_durability.py` measures what a durable commit costs.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .chats import Chat, Member, Page, Registry, SharedApp
from .updates import Update

__all__ = ["DB_FILE_NAME", "Store", "StoredUpdate", "ChatMessage", "Synchronous"]

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
CREATE TABLE IF NOT EXISTS apps (
    id TEXT PRIMARY KEY, chat_id TEXT NOT NULL REFERENCES chats(id), name TEXT NOT NULL,
    key TEXT NOT NULL, sender TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    label TEXT PRIMARY KEY, token TEXT NOT NULL, app_id TEXT NOT NULL REFERENCES apps(id),
    member_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    serial INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL, member_id TEXT NOT NULL,
    payload TEXT NOT NULL, info TEXT, href TEXT, document TEXT, summary TEXT, notify TEXT,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS updates_by_app ON updates (app_id, serial);
CREATE TABLE IF NOT EXISTS chat_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id TEXT NOT NULL, app_id TEXT NOT NULL,
    member TEXT NOT NULL, text TEXT, file_name TEXT, file_data BLOB, created REAL NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class StoredUpdate:
    """An update as stored, with its serial."""

    serial: int
    update: Update


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A message an app posted to the chat with `sendToChat`."""

    id: int
    app_id: str
    member: str
    """The display name of the member whose page posted it."""
    text: str | None
    file_name: str | None
    file_data: bytes | None


class Store:
    """The host's SQLite database."""

    def __init__(self, path: str | Path = ":memory:", *,
                 synchronous: Synchronous = "FULL") -> None:
        """Open (creating it if needed) the database at `path`; `synchronous` says how
        durable each commit is. Raises `sqlite3.Error` or `OSError` if it cannot be used."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except BaseException:
            self._db.close()  # a damaged or unwritable database: no connection left open
            raise
        self._max_serial: dict[str, int] = {}

    @classmethod
    def in_directory(cls, data_dir: str | Path, *, synchronous: Synchronous = "FULL") -> Store:
        """Open (creating it if needed) the database in a data directory."""
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / DB_FILE_NAME, synchronous=synchronous)

    @property
    def synchronous(self) -> str:
        """The durability of commits in force: `FULL` or `NORMAL` (see `Synchronous`)."""
        level = self._db.execute("PRAGMA synchronous").fetchone()[0]
        return _SYNCHRONOUS_NAMES.get(level, str(level))

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # -- registry ----------------------------------------------------------------------

    def secret(self) -> bytes:
        """The host's secret for deriving `selfAddr`, created on first use."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
        if row is not None:
            return bytes(row[0])
        secret = Registry.new_secret()
        self._db.execute("INSERT INTO meta (key, value) VALUES ('secret', ?)", (secret,))
        return secret

    def load_registry(self) -> Registry:
        """Every stored chat, app copy and page, in a registry with the stored secret."""
        registry = Registry(self.secret())
        for chat_id, name, members in self._db.execute("SELECT id, name, members FROM chats"):
            registry.add_chat(Chat(chat_id, name, [Member(**m) for m in json.loads(members)]))
        for row in self._db.execute("SELECT id, chat_id, name, key, sender FROM apps"):
            registry.add_app(SharedApp(*row))
        for label, token, app_id, member_id in self._db.execute(
                "SELECT label, token, app_id, member_id FROM pages"):
            registry.add_page(label, token, app_id, member_id)
        return registry

    def save_chat(self, chat: Chat) -> None:
        """Store a chat and its members (replacing what was stored)."""
        members = json.dumps([{"id": m.id, "name": m.name} for m in chat.members])
        self._db.execute("INSERT OR REPLACE INTO chats (id, name, members) VALUES (?, ?, ?)",
                         (chat.id, chat.name, members))

    def save_shared_app(self, app: SharedApp, pages: list[Page]) -> None:
        """Store a newly shared app copy with its pages, in one transaction."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO apps (id, chat_id, name, key, sender) VALUES (?, ?, ?, ?, ?)",
                (app.id, app.chat_id, app.name, app.key, app.sender))
            self._db.executemany(
                "INSERT INTO pages (label, token, app_id, member_id) VALUES (?, ?, ?, ?)",
                [(p.label, p.token, p.app.id, p.member.id) for p in pages])

    def share(self, registry: Registry, chat_name: str, member_names: list[str],
              app_name: str, app_key: str) -> list[Page]:
        """The pages of the app known by `app_key` in the chat `chat_name` with exactly
        these members: the stored ones if it was shared there before (same invite links,
        same `selfAddr`, same updates), else a new chat and/or copy, stored."""
        chat = registry.find_chat(chat_name, member_names)
        if chat is None:
            chat = registry.create_chat(chat_name, member_names)
            self.save_chat(chat)
        app = registry.find_app(chat, app_key)
        if app is not None:
            return registry.pages_of(app)
        pages = registry.share_app(chat, app_name, app_key)
        self.save_shared_app(pages[0].app, pages)
        return pages

    # -- status updates ----------------------------------------------------------------

    def append_update(self, app_id: str, member_id: str, update: Update) -> int:
        """Store an update (committed before this returns); return its serial."""
        cursor = self._db.execute(
            "INSERT INTO updates (app_id, member_id, payload, info, href, document, summary,"
            " notify, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (app_id, member_id, update.payload_json, update.info, update.href,
             update.document, update.summary,
             None if update.notify is None else json.dumps(update.notify), time.time()))
        serial = int(cursor.lastrowid or 0)
        self._max_serial[app_id] = serial
        return serial

    def updates_after(self, app_id: str, serial: int, limit: int) -> list[StoredUpdate]:
        """Up to `limit` updates of an app copy with a serial above `serial`, in order."""
        rows = self._db.execute(
            "SELECT serial, payload, info, href, document, summary, notify FROM updates"
            " WHERE app_id = ? AND serial > ? ORDER BY serial LIMIT ?", (app_id, serial, limit))
        return [StoredUpdate(row[0], Update(row[1], row[2], row[3], row[4], row[5],
                                            None if row[6] is None else json.loads(row[6])))
                for row in rows]

    def backlog_chunk(self, app_id: str, serial: int, max_bytes: int,
                      max_rows: int = 1000) -> int:
        """How many of the updates after `serial` to load at once so that they hold at
        most `max_bytes` of text (always at least one): the backlog is streamed in chunks
        of bounded memory, whatever the updates' sizes."""
        rows = self._db.execute(
            "SELECT length(CAST(payload AS BLOB)) + coalesce(length(CAST(info AS BLOB)), 0)"
            " + coalesce(length(CAST(href AS BLOB)), 0)"
            " + coalesce(length(CAST(document AS BLOB)), 0)"
            " + coalesce(length(CAST(summary AS BLOB)), 0)"
            " + coalesce(length(CAST(notify AS BLOB)), 0)"
            " FROM updates WHERE app_id = ? AND serial > ? ORDER BY serial LIMIT ?",
            (app_id, serial, max_rows))
        count = total = 0
        for (size,) in rows:
            total += size
            if count and total > max_bytes:
                break
            count += 1
        return count

    def max_serial(self, app_id: str) -> int:
        """The highest serial of an app copy's updates (0 when it has none)."""
        cached = self._max_serial.get(app_id)
        if cached is None:
            row = self._db.execute("SELECT MAX(serial) FROM updates WHERE app_id = ?",
                                   (app_id,)).fetchone()
            cached = self._max_serial[app_id] = int(row[0] or 0)
        return cached

    # -- chat messages -----------------------------------------------------------------

    def add_chat_message(self, chat_id: str, app_id: str, member: str, text: str | None,
                         file_name: str | None, file_data: bytes | None) -> int:
        """Record a message an app posted to its chat; return its id."""
        cursor = self._db.execute(
            "INSERT INTO chat_messages (chat_id, app_id, member, text, file_name, file_data,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (chat_id, app_id, member, text, file_name, file_data, time.time()))
        return int(cursor.lastrowid or 0)

    def chat_messages(self, chat_id: str, limit: int = 1000, before: int | None = None,
                      max_bytes: int | None = None) -> tuple[list[ChatMessage], bool]:
        """The most recent messages posted to a chat (before the message id `before`, if
        given), oldest first, at most `limit` of them holding at most `max_bytes` of text
        and files (always at least one); and whether older ones remain."""
        rows = self._db.execute(
            "SELECT id, coalesce(length(CAST(text AS BLOB)), 0)"
            " + coalesce(length(file_data), 0) FROM chat_messages"
            " WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (chat_id, 2**63 - 1 if before is None else before, limit + 1)).fetchall()
        chosen: list[int] = []
        total = 0
        for message_id, size in rows[:limit]:
            total += size
            if chosen and max_bytes is not None and total > max_bytes:
                break
            chosen.append(message_id)
        more = len(rows) > len(chosen)
        if not chosen:
            return [], more
        messages = self._db.execute(
            "SELECT id, app_id, member, text, file_name, file_data FROM chat_messages"
            " WHERE chat_id = ? AND id BETWEEN ? AND ? ORDER BY id",
            (chat_id, chosen[-1], chosen[0])).fetchall()
        return [ChatMessage(*row) for row in messages], more

    def chat_bytes(self, app_id: str, member: str) -> int:
        """Bytes of text and files one member's page of one app copy posted to its chat."""
        row = self._db.execute(
            "SELECT sum(coalesce(length(CAST(text AS BLOB)), 0) + coalesce(length(file_data),"
            " 0)) FROM chat_messages WHERE app_id = ? AND member = ?",
            (app_id, member)).fetchone()
        return int(row[0] or 0)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
