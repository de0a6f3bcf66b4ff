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

import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from . import wire
from .chats import Chat, Member, Page, Registry, SharedApp
from .updates import Update

__all__ = ["DB_FILE_NAME", "Store", "StoredUpdate", "ChatMessage", "Synchronous"]

log = logging.getLogger(__name__)

DB_FILE_NAME = "webxdc-rt.sqlite3"

Synchronous = Literal["FULL", "NORMAL"]
"""SQLite's `synchronous` setting in WAL mode. FULL: every commit is on disk when it returns
(fsync of the log per commit). NORMAL: commits survive a crash of the process but the last
ones may be lost on power loss (fsync only at checkpoints)."""
_SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

PAYLOAD_DEPTH: Final = wire.MAX_JSON_DEPTH - 2
"""Nesting a stored payload may have: an update frame's own two objects hold the rest."""

_CHAT_MESSAGE_BYTES = "coalesce(length(CAST(text AS BLOB)), 0) + coalesce(length(file_data), 0)"
"""SQL: the bytes of a chat message's text (UTF-8) and file, as quotas and pages count them."""

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
        self._checked_to: dict[str, int] = {}
        """Per app copy, the serial up to which every stored payload was checked."""
        self._flawed: set[int] = set()
        """Serials of the rows whose payload is repaired each time it is read."""
        self._repair_logged = False

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
        for chat_id, name, members in self._db.execute(
                "SELECT id, CAST(name AS BLOB), CAST(members AS BLOB) FROM chats"):
            registry.add_chat(Chat(chat_id, self._text(name, "a chat's name") or "",
                                   self._members(self._text(members, "a member list"))))
        for app_id, chat_id, name, key, sender in self._db.execute(
                "SELECT id, chat_id, CAST(name AS BLOB), key, sender FROM apps"):
            registry.add_app(SharedApp(app_id, chat_id,
                                       self._text(name, "an app's name") or "", key, sender))
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
        return _leading_within((size for (size,) in rows), max_bytes)

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
            f"SELECT id, {_CHAT_MESSAGE_BYTES} FROM chat_messages"
            " WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (chat_id, 2**63 - 1 if before is None else before, limit + 1)).fetchall()
        count = _leading_within((size for _, size in rows[:limit]), max_bytes)
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
        return _Transaction(self._db)


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
    """BEGIN ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _leading_within(sizes: Iterable[int], max_bytes: int | None) -> int:
    """How many of the first `sizes` fit in `max_bytes` together (no bound when None);
    always at least one when there is one, so that a large row is never stuck."""
    count = total = 0
    for size in sizes:
        total += size
        if count and max_bytes is not None and total > max_bytes:
            break
        count += 1
    return count
