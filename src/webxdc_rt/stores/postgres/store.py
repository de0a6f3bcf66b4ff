"""`PostgresStore`: the store interface over a PostgreSQL database that several host
processes share, made of parts on one connection (`connection`): the registry of chats and
pages (`chats`), app copies with their containers (`apps`), status updates (`updates`) and
chat messages (`messages`); the announcements of updates stored by any process arrive apart
(`announcements`). It runs the changes that span parts in one transaction."""

from __future__ import annotations

import secrets

from ...model.chats import Chat, HomePage, Member, Page, Registry, SharedApp
from ..api import (
    Appended,
    AppUsage,
    ChatChanged,
    ChatMessage,
    MessageSummary,
    Notification,
    Resync,
    StoredApp,
    StoreLimits,
    UpdateChunk,
)
from ..commits import GroupCommit
from ..composed import ComposedStore
from ..migrations import MIGRATION_LOCK
from .announcements import Announcements, follow_chats
from .apps import PostgresApps
from .chats import PostgresChats, announce, insert_homes
from .connection import Connection
from .messages import PostgresMessages
from .reads import Reader
from .updates import PostgresUpdates
from .writes import GroupWriter

__all__ = ["PostgresStore"]


class PostgresStore(ComposedStore):
    """The host's state in a PostgreSQL database shared with other host processes (see
    `StoreApi` for what each method does). Raises `StoreError` for what PostgreSQL
    refuses, and `StoreUnavailable` at once while it is unreachable."""

    shared = True
    """Other processes append updates too (see `StoreApi.shared`)."""
    _updates: PostgresUpdates
    _messages: PostgresMessages

    def __init__(self, url: str, settings: StoreLimits | None = None) -> None:
        """Connect to the database at `url` and bring its schema up to date. Raises
        `StoreError` if it cannot be reached or set up."""
        self.url = url
        self.settings = settings or StoreLimits()
        self._connection = Connection(url, self.settings)
        self._chats = PostgresChats(self._connection)
        self._apps = PostgresApps(self._connection)
        self._updates = PostgresUpdates(self._connection)
        self._messages = PostgresMessages(self._connection)
        self.latency = self._connection.latency
        """How long each write of a status update, a chat message or a change to chats
        took, commit included (one group's commit counts once)."""
        self._announcements = Announcements(self._connection)
        self._writer = GroupWriter(self._connection)
        self._reader = Reader(self._connection)
        # The other reads made while pages are served have a connection of their own: a
        # page listing megabytes of chat files, or a read a lock holds up, does not hold
        # up the updates read back for every listener.
        self._side_reader = Reader(self._connection)
        self.commits = GroupCommit(self._writer.commit, self.settings)
        """The writes pages send, committed in groups on an asynchronous connection."""

    @property
    def schema_version(self) -> int:
        """The highest migration applied to the database."""
        return self._connection.schema_version

    async def follow(self, on_appended: Appended, on_resync: Resync) -> None:
        """Until cancelled: hand on the announcements of updates of the app copies watched,
        stored by any process (see `Announcements.follow`)."""
        await self._announcements.follow(on_appended, on_resync)

    async def watch(self, app_id: str) -> None:
        """Announce `app_id`'s updates to `follow` from when this returns (see
        `StoreApi.watch`)."""
        await self._announcements.watch(app_id)

    def unwatch(self, app_id: str) -> None:
        """Undo one `watch` of `app_id`."""
        self._announcements.unwatch(app_id)

    async def follow_chats(self, on_changed: ChatChanged, on_resync: Resync) -> None:
        """Until cancelled: hand on the announcements of changes to chats made by any
        process (see `announcements.follow_chats`)."""
        await follow_chats(self._connection, on_changed, on_resync)

    async def drain(self) -> None:
        """Let the writes already waiting be committed and their listeners told."""
        await self.commits.close()

    def close(self) -> None:
        """Close the connections and stop reconnecting."""
        self._writer.close()
        self._reader.close()
        self._side_reader.close()
        self._connection.close()

    # -- registry ------------------------------------------------------------------------

    def secret(self) -> bytes:
        """The hosts' common secret for deriving `selfAddr`."""
        return self._chats.secret()

    def load_registry(self) -> Registry:
        """Every stored chat, app copy and page, read in one snapshot."""
        return self._chats.load_registry()

    def load_chat(self, chat_id: str) -> Registry:
        """The chat `chat_id` as stored now, with its app copies, pages and home pages, in
        a registry of its own (empty when it is not stored), read in one snapshot."""
        return self._chats.load_registry(chat_id)

    async def read_chat(self, chat_id: str) -> Registry:
        """`load_chat`, read on the reader's asynchronous connection."""
        return await self._chats.read_registry(self._side_reader, chat_id)

    async def read_registry(self) -> Registry:
        """`load_registry`, read in one snapshot on the reader's asynchronous connection."""
        return await self._chats.read_registry(self._side_reader)

    def save_chat(self, chat: Chat) -> None:
        """Store a chat and its members."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            self._chats.save_chat(cur, chat)
            announce(cur, [chat.id])

    def save_shared_app(self, app: SharedApp, pages: list[Page],
                        container: tuple[str, bytes] | None = None) -> None:
        """Store a new app copy with its pages and container, in one transaction."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            self._apps.add(cur, app, pages, container)
            announce(cur, [app.chat_id])

    def create_chat(self, chat: Chat, homes: list[HomePage]) -> None:
        """Store a new chat with its members' home pages, in one transaction."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            self._chats.save_chat(cur, chat)
            insert_homes(cur, homes)
            announce(cur, [chat.id])

    def add_member(self, chat: Chat, member: Member, pages: list[Page],
                   home: HomePage) -> None:
        """Store a new member with their pages and home page, in one transaction."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            self._chats.add_member(cur, chat, member, pages, home)
            announce(cur, [chat.id])

    def remove_member(self, chat: Chat, member: Member) -> None:
        """Forget a member with their pages and home page, in one transaction."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            self._chats.remove_member(cur, chat, member)
            announce(cur, [chat.id])

    def remove_app(self, app_id: str) -> None:
        """Forget an app copy and what is kept per copy, in one transaction."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            row = cur.execute("SELECT chat_id FROM apps WHERE id = %s", (app_id,)).fetchone()
            self._apps.remove(cur, "id = %s", (app_id,))
            announce(cur, [] if row is None else [row[0]])

    def delete_chat(self, chat_id: str) -> None:
        """Forget a chat and everything in it, in one transaction."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            self._apps.remove(cur, "chat_id = %s", (chat_id,))
            self._messages.delete_chat(cur, chat_id)
            self._chats.delete_chat(cur, chat_id)
            announce(cur, [chat_id])

    def replace_tokens(self, pages: list[Page], homes: list[HomePage]) -> None:
        """Store new tokens for pages and home pages, in one transaction."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            self._chats.replace_tokens(cur, pages, homes)
            announce(cur, [page.app.chat_id for page in pages] + [h.chat_id for h in homes])

    def add_homes(self, homes: list[HomePage]) -> None:
        """Store home pages, in one transaction, but none for a member who has one already:
        processes starting together (`--workers`) each give the chats `serve` made home
        pages, and the first to store them wins; the others read them back when announced."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            rows = cur.execute("SELECT chat_id, member_id FROM homes WHERE chat_id ="
                               " ANY(%s)", ([home.chat_id for home in homes],)).fetchall()
            have = set(rows)
            homes = [home for home in homes if (home.chat_id, home.member.id) not in have]
            insert_homes(cur, homes)
            announce(cur, [home.chat_id for home in homes])

    def stored_apps(self) -> list[StoredApp]:
        """Where each app copy's files come from, oldest copy first."""
        return self._apps.stored()

    async def read_stored_apps(self) -> list[StoredApp]:
        """`stored_apps`, read on the reader's asynchronous connection."""
        return await self._apps.read_stored(self._side_reader)

    def container(self, digest: str) -> bytes | None:
        """The bytes of a stored `.xdc`, if it is stored."""
        return self._apps.container(digest)

    async def read_container(self, digest: str) -> bytes | None:
        """`container`, read on the reader's asynchronous connection."""
        return await self._apps.read_container(self._side_reader, digest)

    def app_usage(self, chat_id: str, member_id: str) -> AppUsage:
        """What the stored app copies of the host, of a chat and of a member amount to."""
        return self._apps.app_usage(chat_id, member_id)

    def share(self, registry: Registry, chat_name: str, member_names: list[str],
              app_name: str, app_key: str) -> list[Page]:
        """The pages of the app in the chat with exactly these members, stored ones if any
        process shared it there before, else new ones, stored. Processes sharing at once
        agree on one chat (an advisory lock); `registry` is brought up to date with what
        the database holds."""
        with self._connection.cursor(write=True, transaction=True) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            fresh = self._chats.load_registry()
            chat = fresh.find_chat(chat_name, member_names)
            if chat is None:
                chat = fresh.create_chat(chat_name, member_names)
                self._chats.save_chat(cur, chat)
            app = fresh.find_app(chat, app_key)
            if app is None:
                pages = fresh.share_app(chat, app_name, app_key)
                self._apps.add(cur, pages[0].app, pages, None)
                announce(cur, [chat.id])
            else:
                pages = fresh.pages_of(app)
        for chat in fresh.chats.values():
            registry.add_chat(chat)
        for app in fresh.apps.values():
            registry.add_app(app)
            registry.add_pages(fresh.pages_of(app))
        return pages

    # -- status updates ----------------------------------------------------------------

    def _before_update(self, app_id: str, update_id: str | None) -> str | None:
        """An update sent without a name is given one here, so that a commit whose answer
        was lost can be made again without storing it twice (`writes`); it starts with
        `~`, which a member's names never hold, so no member can take it first."""
        return "~" + secrets.token_urlsafe(12) if update_id is None else update_id

    async def read_updates(self, app_id: str, serial: int, max_bytes: int) -> UpdateChunk:
        """A bounded chunk of the updates after `serial`, read on the reader's asynchronous
        connection (see `StoreApi.read_updates`)."""
        return await self._reader.read(app_id, serial, max_bytes)

    async def read_max_serial(self, app_id: str) -> int:
        """The highest serial of an app copy's updates, read on the reader's asynchronous
        connection."""
        return await self._updates.read_max_serial(self._side_reader, app_id)

    async def read_notifications(self, member_id: str, addresses: dict[str, str],
                                 limit: int) -> list[Notification]:
        """The latest updates that notify one member, read on the reader's asynchronous
        connection."""
        return await self._updates.read_notifications(self._side_reader, member_id, addresses,
                                                      limit)

    async def read_chat_messages(self, chat_id: str, limit: int = 1000,
                                 before: int | None = None, max_bytes: int | None = None
                                 ) -> tuple[list[ChatMessage], bool]:
        """The most recent messages of a chat, read on the reader's asynchronous
        connection."""
        return await self._messages.read_recent(self._side_reader, chat_id, limit, before,
                                                max_bytes)

    async def read_chat_bytes(self, app_id: str, member: str) -> int:
        """Bytes one member's page of one app copy posted, read on the reader's
        asynchronous connection."""
        return await self._messages.read_bytes_of(self._side_reader, app_id, member)

    async def read_message_summaries(self, chat_id: str, limit: int,
                                     max_text_bytes: int) -> list[MessageSummary]:
        """The latest messages of a chat without their files' bytes, read on the reader's
        asynchronous connection."""
        return await self._messages.read_summaries(self._side_reader, chat_id, limit,
                                                   max_text_bytes)

    async def read_message_file(self, chat_id: str,
                                message_id: int) -> tuple[str, bytes] | None:
        """A chat message's file, read on the reader's asynchronous connection."""
        return await self._messages.read_file(self._side_reader, chat_id, message_id)
