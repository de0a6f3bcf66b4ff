"""`SqliteStore`: the store interface over one SQLite file, made of four parts sharing one
connection: the registry of chats and pages (`chats`), app copies with their containers
(`apps`), status updates (`updates`) and chat messages (`messages`). It runs the changes
that span parts in one transaction. What pages send is committed by its writer thread, in
groups (`commits.GroupCommit`); the reads a live host makes while it serves (updates, chat
bytes, chat messages and their list and files, notifications, app copies and containers)
run on its reader thread, with a connection of its own (`database.ReadConnection`; the one
connection, under its lock, for a database in memory, which a second connection would not
see). The highest serial of each app copy is read once, as it opens, and kept in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ...model.chats import Chat, HomePage, Member, Page, Registry, SharedApp
from ..api import (
    Appended,
    AppUsage,
    ChatMessage,
    MessageSummary,
    Notification,
    Resync,
    StoredApp,
    StoreLimits,
    UpdateChunk,
    UpdateWrite,
    Write,
)
from ..commits import GroupCommit
from ..composed import ComposedStore
from .apps import SqliteApps
from .chats import SqliteChats
from .database import DB_FILE_NAME, Database, ReadConnection, Rows, Synchronous
from .files import make_private_dir
from .messages import SqliteMessages
from .repair import Repair
from .updates import SqliteUpdates

__all__ = ["SqliteStore"]

T = TypeVar("T")


class SqliteStore(ComposedStore):
    """The host's SQLite database (see `StoreApi` for what each method does). Raises
    `StoreError` for what SQLite refuses."""

    shared = False
    """Only this process writes to it (see `StoreApi.shared`)."""
    _updates: SqliteUpdates
    _messages: SqliteMessages

    def __init__(self, path: str | Path = ":memory:", *, synchronous: Synchronous = "FULL",
                 limits: StoreLimits | None = None) -> None:
        """Open (creating it if needed) the database at `path`; `synchronous` says how
        durable each commit is, `limits` how many writes may wait and share a commit.
        Raises `StoreError` or `OSError` if it cannot be used."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = str(path)
        self._db = Database(self.path, synchronous)
        repair = Repair()
        self._chats = SqliteChats(self._db, repair)
        self._apps = SqliteApps(self._db)
        self._updates = SqliteUpdates(self._db, repair)
        self._messages = SqliteMessages(self._db, repair)
        self.latency = self._db.latency
        """How long each write of a status update, a chat message or a change to chats
        took, commit included (one group's commit counts once)."""
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="webxdc-rt-sqlite-writer")
        self.commits = GroupCommit(self._commit, limits or StoreLimits(), self._reported)
        """The writes pages send, committed in groups by the writer thread."""
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="webxdc-rt-sqlite-reader")
        self._reading: ReadConnection | None = (
            None if self.path == ":memory:" else ReadConnection(self.path))

    @classmethod
    def in_directory(cls, data_dir: str | Path, *, synchronous: Synchronous = "FULL",
                     limits: StoreLimits | None = None) -> SqliteStore:
        """Open (creating it if needed) the database in a data directory."""
        directory = make_private_dir(data_dir)
        return cls(directory / DB_FILE_NAME, synchronous=synchronous, limits=limits)

    @property
    def synchronous(self) -> str:
        """The durability of commits in force: `FULL` or `NORMAL` (see `Synchronous`)."""
        return self._db.synchronous

    async def follow(self, on_appended: Appended, on_resync: Resync) -> None:
        """Return at once: every update was stored by this process, which knows of it."""

    async def watch(self, app_id: str) -> None:
        """Return at once: there are no announcements to ask for."""

    def unwatch(self, app_id: str) -> None:
        """Nothing to undo."""

    async def drain(self) -> None:
        """Let the writes already waiting be committed and their listeners told."""
        await self.commits.close()

    def close(self) -> None:
        """Close the database once the commit in flight, if any, has ended."""
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        if self._reading is not None:
            self._reading.close()
        self._db.close()

    # -- registry ----------------------------------------------------------------------

    def secret(self) -> bytes:
        """The host's secret for deriving `selfAddr`."""
        return self._chats.secret()

    def load_registry(self) -> Registry:
        """Every stored chat, app copy and page."""
        return self._chats.load_registry()

    def save_chat(self, chat: Chat) -> None:
        """Store a chat and its members."""
        self._chats.save_chat(chat)

    def save_shared_app(self, app: SharedApp, pages: list[Page],
                        container: tuple[str, bytes] | None = None) -> None:
        """Store a new app copy with its pages and container, in one transaction."""
        with self._db.transaction():
            self._apps.add(app, pages, container)

    def create_chat(self, chat: Chat, homes: list[HomePage]) -> None:
        """Store a new chat with its members' home pages, in one transaction."""
        with self._db.transaction():
            self._chats.save_chat(chat)
            self._chats.insert_homes(homes)

    def add_member(self, chat: Chat, member: Member, pages: list[Page],
                   home: HomePage) -> None:
        """Store a new member with their pages and home page, in one transaction."""
        with self._db.transaction():
            self._chats.add_member(chat, member, pages, home)

    def remove_member(self, chat: Chat, member: Member) -> None:
        """Forget a member with their pages and home page, in one transaction."""
        with self._db.transaction():
            self._chats.remove_member(chat, member)

    def remove_app(self, app_id: str) -> None:
        """Forget an app copy and what is kept per copy, in one transaction."""
        with self._db.transaction():
            self._apps.remove("id = ?", (app_id,))
        self._updates.forget([app_id])

    def delete_chat(self, chat_id: str) -> None:
        """Forget a chat and everything in it, in one transaction."""
        app_ids = self._apps.ids_in_chat(chat_id)
        with self._db.transaction():
            self._apps.remove("chat_id = ?", (chat_id,))
            self._messages.delete_chat(chat_id)
            self._chats.delete_chat(chat_id)
        self._updates.forget(app_ids)

    def replace_tokens(self, pages: list[Page], homes: list[HomePage]) -> None:
        """Store new tokens for pages and home pages, in one transaction."""
        with self._db.transaction():
            self._chats.replace_tokens(pages, homes)

    def add_homes(self, homes: list[HomePage]) -> None:
        """Store home pages, in one transaction."""
        with self._db.transaction():
            self._chats.insert_homes(homes)

    def stored_apps(self) -> list[StoredApp]:
        """Where each app copy's files come from, oldest copy first."""
        return self._apps.stored(self._db)

    async def read_stored_apps(self) -> list[StoredApp]:
        """`stored_apps`, read on the reader thread."""
        return await self._read(self._apps.stored, self._reading_rows())

    def container(self, digest: str) -> bytes | None:
        """The bytes of a stored `.xdc`, if it is stored."""
        return self._apps.container(self._db, digest)

    async def read_container(self, digest: str) -> bytes | None:
        """`container`, read on the reader thread."""
        return await self._read(self._apps.container, self._reading_rows(), digest)

    def app_usage(self, chat_id: str, member_id: str) -> AppUsage:
        """What the stored app copies of the host, of a chat and of a member amount to."""
        return self._apps.app_usage(chat_id, member_id)

    def share(self, registry: Registry, chat_name: str, member_names: list[str],
              app_name: str, app_key: str) -> list[Page]:
        """The pages of the app in the chat with exactly these members, stored ones if it
        was shared there before, else new ones, stored."""
        chat = registry.find_chat(chat_name, member_names)
        if chat is None:
            chat = registry.create_chat(chat_name, member_names)
            self._chats.save_chat(chat)
        app = registry.find_app(chat, app_key)
        if app is not None:
            return registry.pages_of(app)
        pages = registry.share_app(chat, app_name, app_key)
        self.save_shared_app(pages[0].app, pages)
        return pages

    # -- status updates ----------------------------------------------------------------

    async def _commit(self, writes: list[Write]) -> list[int]:
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self._write_group, writes)

    def _write_group(self, writes: list[Write]) -> list[int]:
        """On the writer thread: one transaction, one fsync for every write of a group."""
        with self._db.transaction():
            return [self._updates.insert(w.app_id, w.member_id, w.update, w.update_id)
                    if isinstance(w, UpdateWrite) else
                    self._messages.insert(w.chat_id, w.app_id, w.member, w.text, w.file_name,
                                          w.file_data)
                    for w in writes]

    def _reported(self, write: Write, written: int) -> None:
        if isinstance(write, UpdateWrite):
            self._updates.reported(write.app_id, written)

    async def read_updates(self, app_id: str, serial: int, max_bytes: int) -> UpdateChunk:
        """A bounded chunk of the updates after `serial`, read on the reader thread, up to
        the highest serial reported now (see `StoreApi.read_updates`)."""
        return await self._read(self._updates.chunk, self._reading_rows(), app_id, serial,
                                self._updates.max_serial(app_id), max_bytes)

    def _reading_rows(self) -> Rows:
        """The connection reads off the event loop use (on the reader thread)."""
        return self._db if self._reading is None else self._reading

    async def _read(self, read: Callable[..., T], *args: Any) -> T:
        """`read(*args)` on the reader thread."""
        return await asyncio.get_running_loop().run_in_executor(self._reader, read, *args)

    async def read_max_serial(self, app_id: str) -> int:
        """`max_serial`: known in memory, nothing is read."""
        return self._updates.max_serial(app_id)

    async def read_notifications(self, member_id: str, addresses: dict[str, str],
                                 limit: int) -> list[Notification]:
        """The latest updates that notify one member, read on the reader thread."""
        return await self._read(self._updates.notifications, self._reading_rows(), member_id,
                                addresses, limit)

    async def read_chat_messages(self, chat_id: str, limit: int = 1000,
                                 before: int | None = None, max_bytes: int | None = None
                                 ) -> tuple[list[ChatMessage], bool]:
        """The most recent messages of a chat, read on the reader thread."""
        return await self._read(self._messages.recent, self._reading_rows(), chat_id, limit,
                                before, max_bytes)

    async def read_chat_bytes(self, app_id: str, member: str) -> int:
        """Bytes one member's page of one app copy posted, read on the reader thread."""
        return await self._read(self._messages.bytes_of, self._reading_rows(), app_id, member)

    async def read_message_summaries(self, chat_id: str, limit: int,
                                     max_text_bytes: int) -> list[MessageSummary]:
        """The latest messages of a chat without their files' bytes, read on the reader
        thread."""
        return await self._read(self._messages.summaries, self._reading_rows(), chat_id,
                                limit, max_text_bytes)

    async def read_message_file(self, chat_id: str,
                                message_id: int) -> tuple[str, bytes] | None:
        """A chat message's file, read on the reader thread."""
        return await self._read(self._messages.file, self._reading_rows(), chat_id,
                                message_id)
