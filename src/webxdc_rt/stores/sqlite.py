"""Where chats, pages, status updates and chat messages live: SQLite.

A file under the data directory by default (`webxdc-rt.sqlite3`), or `:memory:` for a host
that keeps nothing. Writes are committed before they are acted on: an update is stored
before anyone is sent it, and by default durably (WAL with `synchronous=FULL`: the log is
fsynced at every commit), so what the host delivered survives a power loss, not only a crash.
Commits are made on the event loop without a thread hop, which keeps serial order and
delivery order the same; `bench/store_durability.py` measures what a durable commit costs.

What is read back is sent to members as it is, so reading never trusts the file: rows written
by older versions (which stored `NaN`, escaped lone surrogates in `notify` and member names),
by other programs, or damaged on disk are repaired as they are read, never refused. Text that
is not UTF-8 and lone surrogates become U+FFFD, the replacement character; `NaN` and
infinities become `null`. The first repair is logged. A payload is checked the first time
this process reads its row.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from ..core import wire
from ..core.stats import LatencyHistogram
from ..core.updates import Update
from ..model.chats import Chat, HomePage, Member, Page, Registry, SharedApp
from ..model.names import shown

__all__ = ["DB_FILE_NAME", "PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "Store",
           "make_private_dir", "shared_dir_warning", "StoredUpdate", "ChatMessage",
           "MessageSummary", "Notification", "StoredApp", "AppUsage", "APP_USAGE_SQL",
           "app_usage_parameters", "Synchronous", "leading_within"]

log = logging.getLogger(__name__)

DB_FILE_NAME = "webxdc-rt.sqlite3"
PRIVATE_DIR_MODE: Final = 0o700
"""The data folder holds the host's secret and every invite token: its user's alone."""
PRIVATE_FILE_MODE: Final = 0o600
"""The database, and the log and shared-memory files SQLite makes beside it with its mode."""

Synchronous = Literal["FULL", "NORMAL"]
"""SQLite's `synchronous` setting in WAL mode. FULL: every commit is on disk when it returns
(fsync of the log per commit). NORMAL: commits survive a crash of the process but the last
ones may be lost on power loss (fsync only at checkpoints)."""
_SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

PAYLOAD_DEPTH: Final = wire.MAX_JSON_DEPTH - 2
"""Nesting a stored payload may have: an update frame's own two objects hold the rest."""

_CHAT_MESSAGE_BYTES = "coalesce(length(CAST(text AS BLOB)), 0) + coalesce(length(file_data), 0)"
"""SQL: the bytes of a chat message's text (UTF-8) and file, as quotas and pages count them."""

APP_USAGE_SQL = (
    "SELECT count(*), coalesce(sum(length(c.data)), 0),"
    " coalesce(sum(CASE WHEN a.chat_id = {p} THEN 1 END), 0),"
    " coalesce(sum(CASE WHEN a.chat_id = {p} THEN length(c.data) END), 0),"
    " coalesce(sum(CASE WHEN a.chat_id = {p} AND a.sender = {p} THEN 1 END), 0),"
    " coalesce(sum(CASE WHEN a.chat_id = {p} AND a.sender = {p} THEN length(c.data) END), 0)"
    " FROM apps a JOIN containers c ON c.digest = a.container")
"""SQL for `AppUsage` (SQLite and PostgreSQL alike; `{p}` is the placeholder), given
`app_usage_parameters(chat_id, member_id)` (member ids are a chat's own). `length` of a
blob is read from its header, not by loading it."""


def app_usage_parameters(chat_id: str, member_id: str) -> tuple[str, ...]:
    """The parameters of `APP_USAGE_SQL`, in order."""
    return (chat_id, chat_id, chat_id, member_id, chat_id, member_id)

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
    created REAL NOT NULL);
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
)
"""Columns that databases written by older versions lack: (table, column, statement)."""


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


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """A chat message as a list shows it: its file's name and size, not its bytes."""

    id: int
    app_id: str
    member: str
    text: str | None
    file_name: str | None
    file_size: int | None
    created: float
    """When it was posted (seconds since the epoch)."""


@dataclass(frozen=True, slots=True)
class Notification:
    """A stored update that asked for members to be notified (`notify`)."""

    serial: int
    app_id: str
    member_id: str
    """Who sent the update."""
    text: str
    """What the member is told."""
    created: float


@dataclass(frozen=True, slots=True)
class StoredApp:
    """Where an app copy's files come from: a stored container, or the path it was shared
    from (`key`)."""

    app_id: str
    digest: str | None
    """The stored `.xdc` (see `Store.container`), or None for an app shared by its path."""
    key: str


@dataclass(frozen=True, slots=True)
class AppUsage:
    """The app copies served from stored containers (uploaded, or shared with `webxdc-rt app
    share`) and their containers' bytes, each copy counting its container's size: on the
    whole host, in one chat, and shared by one member."""

    host_apps: int
    host_bytes: int
    chat_apps: int
    chat_bytes: int
    member_apps: int
    member_bytes: int


class Store:
    """The host's SQLite database."""

    shared = False
    """Only this process writes to it (see `store_api.StoreApi.shared`)."""

    async def follow(self, on_appended: Callable[[str, int], None],
                     on_resync: Callable[[], None]) -> None:
        """Nothing to follow: no other process writes to this store."""

    def __init__(self, path: str | Path = ":memory:", *,
                 synchronous: Synchronous = "FULL") -> None:
        """Open (creating it if needed) the database at `path`; `synchronous` says how
        durable each commit is. Raises `sqlite3.Error` or `OSError` if it cannot be used."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = str(path)
        if self.path != ":memory:":
            _create_private(Path(self.path))
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            for table, column, statement in _MIGRATIONS:
                columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self._db.execute(statement)
        except BaseException:
            self._db.close()  # a damaged or unwritable database: no connection left open
            raise
        self._max_serial: dict[str, int] = {}
        self._checked_to: dict[str, int] = {}
        """Per app copy, the serial up to which every stored payload was checked."""
        self._flawed: set[int] = set()
        """Serials of the rows whose payload is repaired each time it is read."""
        self._repair_logged = False
        self.latency = LatencyHistogram()
        """How long each write of a status update, a chat message or a change to chats
        took, commit included."""

    @classmethod
    def in_directory(cls, data_dir: str | Path, *, synchronous: Synchronous = "FULL") -> Store:
        """Open (creating it if needed) the database in a data directory."""
        directory = make_private_dir(data_dir)
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
        for chat_id, name, members in self._db.execute(
                "SELECT id, CAST(name AS BLOB), CAST(members AS BLOB) FROM chats"):
            registry.add_chat(Chat(chat_id, self._text(name, "a chat's name") or "",
                                   self._members(self._text(members, "a member list"))))
        for app_id, chat_id, name, key, sender in self._db.execute(
                "SELECT id, chat_id, CAST(name AS BLOB), key, sender FROM apps"):
            registry.add_app(SharedApp(app_id, chat_id,
                                       self._text(name, "an app's name") or "", key, sender))
        for label, token, app_id, member_id in self._db.execute(
                "SELECT label, token, app_id, member_id FROM pages ORDER BY rowid"):
            registry.add_page(label, token, app_id, member_id)
        for label, token, chat_id, member_id in self._db.execute(
                "SELECT label, token, chat_id, member_id FROM homes"):
            chat = registry.chats.get(chat_id)
            member = next((m for m in chat.members if m.id == member_id), None) if chat else None
            if member is not None:
                registry.add_homes([HomePage(label, token, chat_id, member)])
        return registry

    def save_chat(self, chat: Chat) -> None:
        """Store a chat and its members (replacing what was stored)."""
        members = json.dumps([{"id": m.id, "name": m.name} for m in chat.members])
        self._db.execute("INSERT OR REPLACE INTO chats (id, name, members) VALUES (?, ?, ?)",
                         (chat.id, chat.name, members))

    def save_shared_app(self, app: SharedApp, pages: list[Page],
                        container: tuple[str, bytes] | None = None) -> None:
        """Store a newly shared app copy with its pages and, if given, the container it is
        served from (`(digest, bytes)`, kept once however many copies share it), in one
        transaction."""
        with self._transaction():
            if container is not None:
                self._db.execute("INSERT OR IGNORE INTO containers (digest, data)"
                                 " VALUES (?, ?)", container)
            self._db.execute(
                "INSERT INTO apps (id, chat_id, name, key, sender, container)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (app.id, app.chat_id, app.name, app.key, app.sender,
                 None if container is None else container[0]))
            self._insert_pages(pages)

    def create_chat(self, chat: Chat, homes: list[HomePage]) -> None:
        """Store a new chat with its members' home pages, in one transaction."""
        with self._transaction():
            self.save_chat(chat)
            self._insert_homes(homes)

    def add_member(self, chat: Chat, member: Member, pages: list[Page],
                   home: HomePage) -> None:
        """Store a new member of `chat` with their pages of its app copies and their home
        page, in one transaction."""
        with self._transaction():
            self.save_chat(Chat(chat.id, chat.name, [*chat.members, member]))
            self._insert_pages(pages)
            self._insert_homes([home])

    def remove_member(self, chat: Chat, member: Member) -> None:
        """Forget a member of `chat` with their pages and home page, in one transaction.
        What they sent (updates, chat messages) stays: it is part of the chat."""
        with self._transaction():
            self.save_chat(Chat(chat.id, chat.name,
                                [m for m in chat.members if m.id != member.id]))
            self._db.execute("DELETE FROM pages WHERE member_id = ? AND app_id IN"
                             " (SELECT id FROM apps WHERE chat_id = ?)", (member.id, chat.id))
            self._db.execute("DELETE FROM homes WHERE chat_id = ? AND member_id = ?",
                             (chat.id, member.id))

    def remove_app(self, app_id: str) -> None:
        """Forget an app copy: its pages, its status updates and its container once no
        other copy uses it, in one transaction. The messages it posted to the chat stay:
        members posted them to the chat."""
        with self._transaction():
            self._delete_apps("id = ?", (app_id,))
        self._forget_serials([app_id])

    def delete_chat(self, chat_id: str) -> None:
        """Forget a chat and everything in it: app copies, pages, updates, home pages,
        chat messages, in one transaction."""
        app_ids = [row[0] for row in
                   self._db.execute("SELECT id FROM apps WHERE chat_id = ?", (chat_id,))]
        with self._transaction():
            self._delete_apps("chat_id = ?", (chat_id,))
            self._db.execute("DELETE FROM homes WHERE chat_id = ?", (chat_id,))
            self._db.execute("DELETE FROM chat_messages WHERE chat_id = ?", (chat_id,))
            self._db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
        self._forget_serials(app_ids)

    def replace_tokens(self, pages: list[Page], homes: list[HomePage]) -> None:
        """Store new tokens for pages and home pages, in one transaction."""
        with self._transaction():
            self._db.executemany("UPDATE pages SET token = ? WHERE label = ?",
                                 [(page.token, page.label) for page in pages])
            self._db.executemany("UPDATE homes SET token = ? WHERE label = ?",
                                 [(home.token, home.label) for home in homes])

    def add_homes(self, homes: list[HomePage]) -> None:
        """Store home pages (for chats made before home pages existed)."""
        with self._transaction():
            self._insert_homes(homes)

    def stored_apps(self) -> list[StoredApp]:
        """Where each app copy's files come from, oldest copy first."""
        return [StoredApp(app_id, digest, key) for app_id, digest, key in self._db.execute(
            "SELECT id, container, key FROM apps ORDER BY rowid")]

    def container(self, digest: str) -> bytes | None:
        """The bytes of a stored `.xdc`, if it is stored."""
        row = self._db.execute("SELECT data FROM containers WHERE digest = ?",
                               (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def app_usage(self, chat_id: str, member_id: str) -> AppUsage:
        """What the stored app copies of the host, of a chat and of a member (its sender)
        amount to, as `AppUsage` counts them."""
        row = self._db.execute(APP_USAGE_SQL.format(p="?"),
                               app_usage_parameters(chat_id, member_id)).fetchone()
        return AppUsage(*(int(value) for value in row))

    def _insert_pages(self, pages: list[Page]) -> None:
        self._db.executemany(
            "INSERT INTO pages (label, token, app_id, member_id) VALUES (?, ?, ?, ?)",
            [(p.label, p.token, p.app.id, p.member.id) for p in pages])

    def _insert_homes(self, homes: list[HomePage]) -> None:
        self._db.executemany(
            "INSERT INTO homes (label, token, chat_id, member_id) VALUES (?, ?, ?, ?)",
            [(h.label, h.token, h.chat_id, h.member.id) for h in homes])

    def _delete_apps(self, where: str, parameters: tuple[str, ...]) -> None:
        """Delete the app copies `where` selects, with their pages and updates, and the
        containers no copy uses any more (inside a transaction)."""
        selected = f"SELECT id FROM apps WHERE {where}"
        self._db.execute(f"DELETE FROM pages WHERE app_id IN ({selected})", parameters)
        self._db.execute(f"DELETE FROM updates WHERE app_id IN ({selected})", parameters)
        self._db.execute(f"DELETE FROM apps WHERE {where}", parameters)
        self._db.execute("DELETE FROM containers WHERE digest NOT IN"
                         " (SELECT container FROM apps WHERE container IS NOT NULL)")

    def _forget_serials(self, app_ids: list[str]) -> None:
        for app_id in app_ids:
            self._max_serial.pop(app_id, None)
            self._checked_to.pop(app_id, None)

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
        started = time.perf_counter()
        cursor = self._db.execute(
            "INSERT INTO updates (app_id, member_id, payload, info, href, document, summary,"
            " notify, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (app_id, member_id, update.payload_json, update.info, update.href,
             update.document, update.summary,
             None if update.notify is None else json.dumps(update.notify), time.time()))
        serial = int(cursor.lastrowid or 0)
        self._max_serial[app_id] = serial
        self.latency.observe(time.perf_counter() - started)
        return serial

    def updates_after(self, app_id: str, serial: int, limit: int) -> list[StoredUpdate]:
        """Up to `limit` updates of an app copy with a serial above `serial`, in order,
        repaired where the stored row is not strict JSON text (see the module docstring)."""
        rows = self._db.execute(
            "SELECT serial, CAST(payload AS BLOB), CAST(info AS BLOB), CAST(href AS BLOB),"
            " CAST(document AS BLOB), CAST(summary AS BLOB), CAST(notify AS BLOB) FROM updates"
            " WHERE app_id = ? AND serial > ? ORDER BY serial LIMIT ?", (app_id, serial, limit))
        checked_to = self._checked_to.get(app_id, 0)
        updates = []
        for row in rows:
            where = f"update {row[0]} of app copy {app_id}"
            payload = self._text(row[1], where) or "null"
            if row[0] > checked_to or row[0] in self._flawed:
                payload = self._checked_payload(row[0], payload, where)
            info, href, document, summary = (self._text(value, where) for value in row[2:6])
            notify_text = self._text(row[6], where)
            notify = None if notify_text is None else self._notify(notify_text, where)
            updates.append(StoredUpdate(row[0], Update(payload, info, href, document, summary,
                                                       notify)))
        if updates and serial <= checked_to:  # every row up to the last one is checked now
            self._checked_to[app_id] = max(checked_to, updates[-1].serial)
        return updates

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
        return leading_within((size for (size,) in rows), max_bytes)

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
        started = time.perf_counter()
        cursor = self._db.execute(
            "INSERT INTO chat_messages (chat_id, app_id, member, text, file_name, file_data,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (chat_id, app_id, member, text, file_name, file_data, time.time()))
        self.latency.observe(time.perf_counter() - started)
        return int(cursor.lastrowid or 0)

    def message_summaries(self, chat_id: str, limit: int,
                          max_text_bytes: int) -> list[MessageSummary]:
        """The latest messages posted to a chat without their files' bytes, oldest first:
        at most `limit` of them holding at most `max_text_bytes` of text (always at least
        one)."""
        rows = self._db.execute(
            "SELECT id, app_id, CAST(member AS BLOB), CAST(text AS BLOB),"
            " CAST(file_name AS BLOB), length(file_data), created FROM chat_messages"
            " WHERE chat_id = ? ORDER BY id DESC LIMIT ?", (chat_id, limit)).fetchall()
        count = leading_within((len(row[3] or b"") for row in rows), max_text_bytes)
        where = "a chat message"
        return [MessageSummary(message_id, app_id, self._text(member, where) or "",
                               self._text(text, where), self._text(file_name, where),
                               None if size is None else int(size), float(created))
                for message_id, app_id, member, text, file_name, size, created
                in reversed(rows[:count])]

    def message_file(self, chat_id: str, message_id: int) -> tuple[str, bytes] | None:
        """The name and bytes of a chat message's file, if it has one."""
        row = self._db.execute(
            "SELECT CAST(file_name AS BLOB), file_data FROM chat_messages"
            " WHERE chat_id = ? AND id = ? AND file_data IS NOT NULL",
            (chat_id, message_id)).fetchone()
        if row is None:
            return None
        return self._text(row[0], "a chat message") or "file", bytes(row[1])

    def notifications(self, member_id: str, addresses: dict[str, str],
                      limit: int) -> list[Notification]:
        """The latest updates that notify one member, oldest first, at most `limit`: those
        of the app copies in `addresses` (app copy id to the member's `selfAddr` there)
        whose `notify` names that address or "*", sent by someone else."""
        if not addresses:
            return []
        pairs = ",".join("(?, ?)" for _ in addresses)
        # A damaged `notify` (not JSON) is passed over, never an error: json_type would
        # raise on it, so it is only asked of valid JSON.
        rows = self._db.execute(
            f"WITH addressed(app_id, path) AS (VALUES {pairs})"
            " SELECT serial, updates.app_id, member_id, CAST(notify AS BLOB), created"
            " FROM updates JOIN addressed ON updates.app_id = addressed.app_id"
            " WHERE notify IS NOT NULL AND member_id != ? AND CASE WHEN json_valid(notify)"
            " THEN json_type(notify, '$.\"*\"') IS NOT NULL"
            " OR json_type(notify, addressed.path) IS NOT NULL ELSE 0 END"
            " ORDER BY serial DESC LIMIT ?",
            (*(value for app_id, addr in addresses.items()
               for value in (app_id, f'$."{addr}"')), member_id, limit)).fetchall()
        found = []
        for serial, app_id, sender, notify_text, created in reversed(rows):
            where = f"update {serial} of app copy {app_id}"
            notify = self._notify(self._text(notify_text, where) or "null", where) or {}
            text = notify.get(addresses[app_id], notify.get("*"))
            if text is not None:
                found.append(Notification(serial, app_id, sender, text, float(created)))
        return found

    def chat_messages(self, chat_id: str, limit: int = 1000, before: int | None = None,
                      max_bytes: int | None = None) -> tuple[list[ChatMessage], bool]:
        """The most recent messages posted to a chat (before the message id `before`, if
        given), oldest first, at most `limit` of them holding at most `max_bytes` of text
        and files (always at least one); and whether older ones remain."""
        rows = self._db.execute(
            f"SELECT id, {_CHAT_MESSAGE_BYTES} FROM chat_messages"
            " WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (chat_id, 2**63 - 1 if before is None else before, limit + 1)).fetchall()
        count = leading_within((size for _, size in rows[:limit]), max_bytes)
        chosen = [message_id for message_id, _ in rows[:count]]
        more = len(rows) > count
        if not chosen:
            return [], more
        rows = self._db.execute(
            "SELECT id, app_id, CAST(member AS BLOB), CAST(text AS BLOB),"
            " CAST(file_name AS BLOB), file_data FROM chat_messages"
            " WHERE chat_id = ? AND id BETWEEN ? AND ? ORDER BY id",
            (chat_id, chosen[-1], chosen[0])).fetchall()
        return [ChatMessage(message_id, app_id, self._text(member, "a chat message") or "",
                            self._text(text, "a chat message"),
                            self._text(file_name, "a chat message"),
                            None if data is None else bytes(data))
                for message_id, app_id, member, text, file_name, data in rows], more

    def chat_bytes(self, app_id: str, member: str) -> int:
        """Bytes of text and files one member's page of one app copy posted to its chat."""
        row = self._db.execute(
            f"SELECT sum({_CHAT_MESSAGE_BYTES}) FROM chat_messages"
            " WHERE app_id = ? AND member = ?",
            (app_id, member)).fetchone()
        return int(row[0] or 0)

    # -- reading what older versions, other programs or a damaged disk wrote ------------

    def _text(self, stored: bytes | None, where: str) -> str | None:
        """A text column read as bytes: UTF-8, with U+FFFD for what is not."""
        if stored is None:
            return None
        try:
            return stored.decode()
        except UnicodeDecodeError:
            self._repaired(where, "text that is not UTF-8")
            return stored.decode(errors="replace")

    def _checked_payload(self, serial: int, payload: str, where: str) -> str:
        """The stored payload, or its repair if it is not strict JSON. The full check, which
        costs as much as decoding, is made only when the text may hold what older versions
        let through: `NaN`, infinities, escaped surrogates. Integers beyond a double and
        nesting beyond the limit, which they also stored, and payloads damaged into text
        that is not JSON are sent as they are: they cost their readers that one update (the
        Python peer logs and skips it), never the replay."""
        if "NaN" not in payload and "Infinity" not in payload and "\\u" not in payload:
            return payload
        try:
            wire.decode_json(payload, PAYLOAD_DEPTH)
        except wire.WireError as exc:
            self._flawed.add(serial)
            self._repaired(where, exc.code)
            return json.dumps(_repaired_json(payload, PAYLOAD_DEPTH), separators=(",", ":"),
                              ensure_ascii=False, allow_nan=False)
        return payload

    def _notify(self, stored: str, where: str) -> dict[str, str] | None:
        """A stored `notify`: address (or "*") to text, repaired and left out if bad."""
        try:
            notify = wire.decode_json(stored)
        except wire.WireError as exc:
            self._repaired(where, exc.code)
            notify = _repaired_json(stored, 1)
        if not isinstance(notify, dict):
            return None
        return {key: text for key, text in notify.items() if isinstance(text, str)}

    def _members(self, stored: str | None) -> list[Member]:
        """A chat's stored member list (JSON: a list of `{"id", "name"}`)."""
        try:
            members = wire.decode_json(stored or "[]")
        except wire.WireError as exc:
            self._repaired("a member list", exc.code)
            members = _repaired_json(stored or "[]", 2)
        return [Member(str(m.get("id")), str(m.get("name"))) for m in members or ()
                if isinstance(m, dict)]

    def _repaired(self, where: str, problem: str) -> None:
        if not self._repair_logged:
            self._repair_logged = True
            log.warning("%s in %s: repaired as it is read (bad characters as U+FFFD, NaN and "
                        "infinities as null); further repairs are not logged", problem, where)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.latency)


_LENIENT_DECODER: Final = json.JSONDecoder(parse_constant=lambda name: None)
"""Reads what older versions wrote: `NaN`, `Infinity` and `-Infinity` as null."""


def _repaired_json(text: str, max_depth: int) -> Any:
    """The value of stored JSON text that the strict decoder refuses, with every string
    valid text, every number finite (else null) and nesting within `max_depth` (deeper
    arrays and objects become null); null if the text is not JSON at all."""
    try:
        value = _LENIENT_DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    holder = [value]
    level: list[Any] = [holder]  # the holder is level 0, the value level 1
    depth = 0
    while level:
        below: list[Any] = []
        for node in level:
            if type(node) is dict:
                items = [(wire.as_text(key), item) for key, item in node.items()]
                node.clear()
                node.update(items)
                keys: Any = list(node)
            else:
                keys = range(len(node))
            for key in keys:
                item = node[key]
                kind = type(item)
                if kind is str:
                    node[key] = wire.as_text(item)
                elif kind is dict or kind is list:
                    if depth + 1 > max_depth:
                        node[key] = None
                    else:
                        below.append(item)
                elif (kind is float or kind is int) and not wire.is_finite_number(item):
                    node[key] = None
        level = below
        depth += 1
    return holder[0]


class _Transaction:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises; a commit's time is counted."""

    def __init__(self, db: sqlite3.Connection, latency: LatencyHistogram) -> None:
        self._db = db
        self._latency = latency
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type:
            self._db.execute("ROLLBACK")
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            # A commit that failed (a full disk) may leave the transaction open.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._latency.observe(time.perf_counter() - self._started)


def make_private_dir(data_dir: str | Path) -> Path:
    """The data folder, created readable by this user alone (`PRIVATE_DIR_MODE`) if it does
    not exist yet (the folders above it as usual). An existing folder is left as it is: see
    `shared_dir_warning`. OSError if it cannot be created."""
    directory = Path(data_dir)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=PRIVATE_DIR_MODE)
    return directory


def shared_dir_warning(data_dir: str | Path) -> str | None:
    """A line for the log when other users may enter or read the data folder (group or
    world permissions), with the command that fixes it; None when it is private. The folder
    is not changed: its permissions may be someone's choice (a backup group)."""
    try:
        mode = stat.S_IMODE(os.stat(data_dir).st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return shown(f"the data folder {data_dir} (mode {mode:04o}) lets other users of this "
                 "machine read the invite links and the host's secret in it; fix: chmod 700 "
                 f"{shlex.quote(str(data_dir))}")


def _create_private(path: Path) -> None:
    """Create the database file with `PRIVATE_FILE_MODE` before SQLite opens it, if it does
    not exist: SQLite gives its log and shared-memory files the mode of the database."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(descriptor)


def leading_within(sizes: Iterable[int], max_bytes: int | None) -> int:
    """How many of the first `sizes` fit in `max_bytes` together (no bound when None);
    always at least one when there is one, so that a large row is never stuck."""
    count = total = 0
    for size in sizes:
        total += size
        if count and max_bytes is not None and total > max_bytes:
            break
        count += 1
    return count
