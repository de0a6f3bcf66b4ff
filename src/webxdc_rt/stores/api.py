"""What the host needs of a store, whichever database holds it: SQLite in one process
(`sqlite.SqliteStore`), or PostgreSQL shared by several processes (`postgres.PostgresStore`).
Here too are what a store returns (its records), what it raises (`StoreError`, whatever the
database driver said) and what both implementations compute alike.

What pages send (status updates, chat messages) is committed off the event loop, with group
commit (`commit_update`, `commit_chat_message`, through `commits.GroupCommit`): writes that
arrive while a commit is in flight go into the next one, so one fsync makes many durable,
and the loop never waits for a disk or a server. Every read a live host makes while it
serves is asynchronous too (the `read_*` methods): updates (backlogs, and read-backs of a
shared store), a page's chat bytes, chat messages, the chat page's list of messages and a
message's file, notifications, the app copies and containers served, the highest serial, a
shared chat or every chat read back (`SharedChats`). SQLite reads on a thread of its own
with a connection of its own, PostgreSQL on asynchronous connections, so a slow disk or
server holds up those reads, not every socket of the process. Everything else is
synchronous: reads made before serving (the registry, the app copies served at start),
management's rare writes, and the highest serial a store that is not shared keeps in memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ..core.limits import require_positive
from ..core.stats import LatencyHistogram
from ..core.updates import Update
from ..model.chats import Chat, HomePage, Member, Page, Registry, SharedApp
from ..model.sharing import AppUsage

__all__ = ["StoreApi", "StoreError", "StoreErrorCode", "StoreUnavailable", "StoreOverloaded",
           "StoreLimits", "UpdateWrite", "MessageWrite", "Write", "AlreadyStored", "Committed",
           "StoredUpdate", "UpdateChunk", "ChatMessage", "MessageSummary", "Notification",
           "StoredApp", "AppUsage",
           "APP_USAGE_SQL", "app_usage_parameters",
           "Appended", "Resync", "ChatChanged", "SharedChats", "leading_within", "encode_members",
           "decode_members"]


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredUpdate:
    """An update as stored, with its serial."""

    serial: int
    update: Update


@dataclass(frozen=True, slots=True)
class UpdateChunk:
    """One bounded read of an app copy's updates (`StoreApi.read_updates`)."""

    updates: list[StoredUpdate]
    """The updates read, in serial order."""
    newest: int
    """The highest serial of the app copy that the read could show (0: none): every update
    up to it above the serial asked for is in `updates` or comes in a later chunk."""


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
    """The stored `.xdc` (see `StoreApi.read_container`), or None for an app shared by
    its path."""
    key: str


# -- settings and errors ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """How the host talks to a shared store's server (`--store postgresql://...`)."""

    connect_timeout_s: float = 5.0
    """How long a connection attempt may take before it counts as failed."""
    statement_timeout_s: float = 10.0
    """How long one statement may run before the server cancels it (and the page is told
    `storage-failed`): a stalled database never holds the host for longer."""
    reconnect_max_s: float = 5.0
    """Longest wait between two reconnection attempts (backoff doubles from 0.1 s)."""
    max_waiting_writes: int = 4096
    """Status updates and chat messages waiting for the commit in flight to end (any store);
    one more is refused at once (the page is told `storage-busy`), so a store slower than
    the pages never costs more memory than this."""
    max_group_writes: int = 1024
    """Writes committed together at most (one transaction, one fsync)."""
    told_per_turn: int = 16
    """Committed writes told (their listeners sent them, their senders answered) in one
    turn of the event loop; a bigger group is told over several turns, with what arrived
    meanwhile (realtime items) handled in between."""

    def __post_init__(self) -> None:
        require_positive(self, "connect_timeout_s", "statement_timeout_s", "reconnect_max_s",
                         below=3600)
        require_positive(self, "max_waiting_writes", "max_group_writes", "told_per_turn")


StoreErrorCode = Literal["failed", "unavailable", "full", "damaged", "busy", "read-only",
                         "too-new"]
"""What kind of failure a `StoreError` is: `failed` (a statement failed for another
reason), `unavailable` (the database server cannot be reached), `full` (no space left),
`damaged` (the database is not readable as one), `busy` (locked by another writer, or a
statement ran out of time), `read-only` (writes are refused), `too-new` (the database was
set up by a newer webxdc-rt)."""


class StoreError(Exception):
    """A store could not do what was asked (its file is damaged, its disk full, its server
    unreachable, a statement failed); nothing of it was kept. The message says what the
    database said; `code` says what kind of failure it is, in words that stay the same
    whichever database and driver the store uses."""

    def __init__(self, message: str, code: StoreErrorCode = "failed") -> None:
        super().__init__(message)
        self.code: StoreErrorCode = code


class StoreUnavailable(StoreError):
    """A shared store's server is known to be unreachable (the store said so once, when it
    found out, and is reconnecting): refused at once, with nothing more to log."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "unavailable")


class StoreOverloaded(StoreError):
    """More writes wait for the store than `StoreLimits.max_waiting_writes`: this one was
    refused at once, with nothing kept."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "busy")


# -- writes committed in groups --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpdateWrite:
    """A status update to append to an app copy; `update_id`, if given, names it for its
    member in that app copy: a write whose name is stored already stores nothing."""

    app_id: str
    member_id: str
    update: Update
    update_id: str | None = None


@dataclass(frozen=True, slots=True)
class MessageWrite:
    """A message an app posts to its chat (`sendToChat`)."""

    chat_id: str
    app_id: str
    member: str
    text: str | None
    file_name: str | None
    file_data: bytes | None


Write = UpdateWrite | MessageWrite
"""One write a page asked for, committed with the others of its group."""

class AlreadyStored(int):
    """What a backend's commit gives for an update whose `update_id` was stored already
    for that app copy and member (before, or earlier in the same group): the serial it was
    stored under. Nothing was written for it, and nobody is told of it again."""

    __slots__ = ()


Committed = Callable[[int], None]
"""Told the serial of an update once its commit is durable (see `StoreApi.commit_update`)."""


# -- the interface ---------------------------------------------------------------------


Appended = Callable[[str, int], None]
"""Told `(app_id, serial)` of each update stored, by any process (see `StoreApi.follow`)."""
Resync = Callable[[], None]
"""Told that announcements may have been missed (see `StoreApi.follow`)."""
ChatChanged = Callable[[str], None]
"""Told the id of a chat that some process changed (see `SharedChats.follow_chats`)."""


@runtime_checkable
class SharedChats(Protocol):
    """A store whose chats other processes change while this one serves them (PostgreSQL):
    each change is announced, and this process reads the changed chat back."""

    async def follow_chats(self, on_changed: ChatChanged, on_resync: Resync) -> None:
        """Until cancelled: call `on_changed(chat_id)` after each change to a chat committed
        by any process (this one included), and `on_resync()` each time announcements may
        have been missed (their connection was (re)made), after which every chat must be
        read again."""

    def load_chat(self, chat_id: str) -> Registry:
        """A registry holding the chat `chat_id` as stored now, with its app copies, pages
        and home pages, read in one snapshot; empty when no such chat is stored."""

    async def read_chat(self, chat_id: str) -> Registry:
        """`load_chat`, read off the event loop."""

    async def read_registry(self) -> Registry:
        """`StoreApi.load_registry` (every chat, in one snapshot), read off the event
        loop."""


class StoreApi(Protocol):
    """Chats, pages, status updates and chat messages, kept durably. Every method raises
    `StoreError` when the database cannot do what it asks."""

    latency: LatencyHistogram
    """How long each write of a status update, a chat message or a change to chats took,
    commit included."""

    @property
    def shared(self) -> bool:
        """True when other processes append updates to the same store: then the host must
        run `follow` to learn of them, and sends updates in serial order as read back, not
        as it stored them."""

    async def follow(self, on_appended: Appended, on_resync: Resync) -> None:
        """Until cancelled: call `on_appended(app_id, serial)` for every update stored by
        any process of the app copies watched (`watch`), in commit order, and
        `on_resync()` each time announcements may have been missed (their connection was
        remade). A store that is not `shared` returns at once: this process stored every
        update itself and knows of it."""

    async def watch(self, app_id: str) -> None:
        """Have `follow` announce the updates of `app_id` until as many `unwatch` calls
        (counted: the first asks for them, the last `unwatch` stops them). Returns once
        every update committed from then on is sure to be announced, so that a backlog
        read after it misses nothing; or at once while `follow` is not connected (it calls
        `on_resync` once it is)."""

    def unwatch(self, app_id: str) -> None:
        """Undo one `watch` of `app_id`."""

    async def drain(self) -> None:
        """Let the writes already waiting be committed and their listeners told; called
        before `close` once nothing sends new writes, so that no commit ends after it."""

    def close(self) -> None:
        """Close the database (and stop reconnecting to it)."""

    def secret(self) -> bytes:
        """The host's secret for deriving `selfAddr`, created on first use."""

    def load_registry(self) -> Registry:
        """Every stored chat, app copy and page, in a registry with the stored secret."""

    def save_chat(self, chat: Chat) -> None:
        """Store a chat and its members (replacing what was stored)."""

    def save_shared_app(self, app: SharedApp, pages: list[Page],
                        container: tuple[str, bytes] | None = None) -> None:
        """Store a newly shared app copy with its pages and, if given, the container it is
        served from (`(digest, bytes)`, kept once however many copies share it), in one
        transaction."""

    def create_chat(self, chat: Chat, homes: list[HomePage]) -> None:
        """Store a new chat with its members' home pages, in one transaction."""

    def add_member(self, chat: Chat, member: Member, pages: list[Page],
                   home: HomePage) -> None:
        """Store a new member of `chat` with their pages of its app copies and their home
        page, in one transaction."""

    def remove_member(self, chat: Chat, member: Member) -> None:
        """Forget a member of `chat` with their pages and home page, in one transaction.
        What they sent (updates, chat messages) stays: it is part of the chat."""

    def remove_app(self, app_id: str) -> None:
        """Forget an app copy: its pages, its status updates and its container once no
        other copy uses it, in one transaction. The messages it posted to the chat stay:
        members posted them to the chat."""

    def delete_chat(self, chat_id: str) -> None:
        """Forget a chat and everything in it: app copies, pages, updates, home pages,
        chat messages, in one transaction."""

    def replace_tokens(self, pages: list[Page], homes: list[HomePage]) -> None:
        """Store new tokens for pages and home pages, in one transaction."""

    def add_homes(self, homes: list[HomePage]) -> None:
        """Store home pages (for chats made before home pages existed)."""

    def stored_apps(self) -> list[StoredApp]:
        """Where each app copy's files come from, oldest copy first (read at start)."""

    async def read_stored_apps(self) -> list[StoredApp]:
        """`stored_apps`, read off the event loop."""

    def container(self, digest: str) -> bytes | None:
        """The bytes of a stored `.xdc`, if it is stored (read at start)."""

    async def read_container(self, digest: str) -> bytes | None:
        """`container`, read off the event loop."""

    def app_usage(self, chat_id: str, member_id: str) -> AppUsage:
        """What the stored app copies of the host, of a chat and of a member (their sender)
        amount to, as `AppUsage` counts them."""

    def share(self, registry: Registry, chat_name: str, member_names: list[str],
              app_name: str, app_key: str) -> list[Page]:
        """The pages of the app known by `app_key` in the chat `chat_name` with exactly
        these members: the stored ones if it was shared there before (same invite links,
        same `selfAddr`, same updates), else a new chat and/or copy, stored; `registry`
        holds them afterwards."""

    def append_update(self, app_id: str, member_id: str, update: Update) -> int:
        """Store an update (committed before this returns); return its serial. Blocks the
        caller for the commit: the host uses `commit_update`."""

    async def commit_update(self, app_id: str, member_id: str, update: Update,
                            committed: Committed, update_id: str | None = None) -> int:
        """Store an update, in one commit with the writes that arrive while the commit
        before it is in flight; once it is durable call `committed(serial)` (in serial
        order: before any later update's, and before any read shows it) and return its
        serial. An update whose `update_id` is stored already for the app copy and member
        stores nothing: its stored serial is returned and `committed` is not called.
        Raises `StoreError` when its group's commit failed (nothing of the group was kept,
        `committed` is not called), `StoreOverloaded` at once when `max_waiting_writes`
        wait already."""

    def hand_over_update(self, app_id: str, member_id: str, update: Update,
                         committed: Committed,
                         update_id: str | None = None) -> asyncio.Future[int]:
        """`commit_update` without a coroutine: the future of the serial (what a host does
        for every update a page sends costs a future, not a task). Raises
        `StoreOverloaded` at once."""

    async def commit_chat_message(self, chat_id: str, app_id: str, member: str,
                                  text: str | None, file_name: str | None,
                                  file_data: bytes | None) -> int:
        """Record a message an app posted to its chat, committed as `commit_update` commits
        updates (in the same groups); return its id."""

    async def read_updates(self, app_id: str, serial: int, max_bytes: int) -> UpdateChunk:
        """The updates of an app copy after `serial`, in order, as many as hold at most
        `max_bytes` of text together (always at least one, and at most 1000), read off the
        event loop; with the highest serial the read could show. A store that is not
        `shared` shows every update up to the highest serial whose `committed` callback was
        called when the read was asked for, and none above it."""

    def max_serial(self, app_id: str) -> int:
        """The highest serial of an app copy's updates (0 when it has none). A store that
        is not `shared` knows it in memory (the highest serial whose `committed` callback
        was called) and reads nothing; a shared store reads it."""

    async def read_max_serial(self, app_id: str) -> int:
        """`max_serial`, read off the event loop where it is read at all."""

    def add_chat_message(self, chat_id: str, app_id: str, member: str, text: str | None,
                         file_name: str | None, file_data: bytes | None) -> int:
        """Record a message an app posted to its chat; return its id."""

    async def read_message_summaries(self, chat_id: str, limit: int,
                                     max_text_bytes: int) -> list[MessageSummary]:
        """The latest messages posted to a chat without their files' bytes, oldest first:
        at most `limit` of them holding at most `max_text_bytes` of text (always at least
        one); read off the event loop."""

    async def read_message_file(self, chat_id: str,
                                message_id: int) -> tuple[str, bytes] | None:
        """The name and bytes of a chat message's file, if it has one; read off the event
        loop."""

    async def read_notifications(self, member_id: str, addresses: dict[str, str],
                                 limit: int) -> list[Notification]:
        """The latest updates that notify one member, oldest first, at most `limit`: those
        of the app copies in `addresses` (app copy id to the member's `selfAddr` there)
        whose `notify` names that address or "*", sent by someone else; read off the
        event loop."""

    async def read_chat_messages(self, chat_id: str, limit: int = 1000,
                                 before: int | None = None, max_bytes: int | None = None
                                 ) -> tuple[list[ChatMessage], bool]:
        """The most recent messages posted to a chat (before the message id `before`, if
        given), oldest first, at most `limit` of them holding at most `max_bytes` of text
        and files (always at least one); and whether older ones remain. Read off the event
        loop."""

    async def read_chat_bytes(self, app_id: str, member: str) -> int:
        """Bytes of text and files one member's page of one app copy posted to its chat,
        read off the event loop."""


# -- shared by the implementations -----------------------------------------------------


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


def encode_members(members: Iterable[Member]) -> str:
    """A chat's member list as both stores keep it: JSON, a list of `{"id", "name"}`."""
    return json.dumps([{"id": m.id, "name": m.name} for m in members])


def decode_members(value: object) -> list[Member]:
    """The members in a decoded member list; entries that are not objects are left out."""
    if not isinstance(value, list):
        return []
    return [Member(str(m.get("id")), str(m.get("name"))) for m in value
            if isinstance(m, dict)]
