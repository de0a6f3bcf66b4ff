"""What the host needs of a store, whichever database holds it: SQLite in one process
(`store.py`), or PostgreSQL shared by several processes (`pg_store.py`).

Both are synchronous: a call returns once its statement is committed, on the event loop with
no thread hop, so serial order stays the order in which this process acted. A durable commit
costs the loop 0.2-0.3 ms with SQLite and 0.5-1 ms with PostgreSQL on loopback, mostly
waiting for an fsync (`bench/store_backends.py`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Protocol

from ..core.limits import require_positive
from ..core.stats import LatencyHistogram
from ..core.updates import Update
from ..model.chats import Chat, HomePage, Member, Page, Registry, SharedApp
from .sqlite import ChatMessage, MessageSummary, Notification, StoredApp, StoredUpdate

__all__ = ["StoreApi", "StoreError", "StoreUnavailable", "StoreLimits", "STORE_ERRORS"]


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

    def __post_init__(self) -> None:
        require_positive(self, below=3600)


class StoreError(Exception):
    """A shared store could not do what was asked (its server is unreachable, a statement
    failed); nothing of it was kept. The message says what happened."""


class StoreUnavailable(StoreError):
    """A shared store's server is known to be unreachable (the store said so once, when it
    found out, and is reconnecting): refused at once, with nothing more to log."""


STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, StoreError)
"""What a store raises when it cannot keep or read something."""


class StoreApi(Protocol):
    """Chats, pages, status updates and chat messages, kept durably (see `store.Store`,
    whose docstrings say what each method does)."""

    latency: LatencyHistogram

    @property
    def shared(self) -> bool:
        """True when other processes append updates to the same store: then this process
        learns of them through `pg_store.PostgresStore.follow` and sends updates in
        serial order as read back, not as it stored them."""

    def close(self) -> None: ...
    def secret(self) -> bytes: ...
    def load_registry(self) -> Registry: ...
    def save_chat(self, chat: Chat) -> None: ...
    def save_shared_app(self, app: SharedApp, pages: list[Page],
                        container: tuple[str, bytes] | None = None) -> None: ...
    def create_chat(self, chat: Chat, homes: list[HomePage]) -> None: ...
    def add_member(self, chat: Chat, member: Member, pages: list[Page],
                   home: HomePage) -> None: ...
    def remove_member(self, chat: Chat, member: Member) -> None: ...
    def remove_app(self, app_id: str) -> None: ...
    def delete_chat(self, chat_id: str) -> None: ...
    def replace_tokens(self, pages: list[Page], homes: list[HomePage]) -> None: ...
    def add_homes(self, homes: list[HomePage]) -> None: ...
    def stored_apps(self) -> list[StoredApp]: ...
    def container(self, digest: str) -> bytes | None: ...
    def share(self, registry: Registry, chat_name: str, member_names: list[str],
              app_name: str, app_key: str) -> list[Page]: ...
    def append_update(self, app_id: str, member_id: str, update: Update) -> int: ...
    def updates_after(self, app_id: str, serial: int, limit: int) -> list[StoredUpdate]: ...
    def backlog_chunk(self, app_id: str, serial: int, max_bytes: int,
                      max_rows: int = 1000) -> int: ...
    def max_serial(self, app_id: str) -> int: ...
    def add_chat_message(self, chat_id: str, app_id: str, member: str, text: str | None,
                         file_name: str | None, file_data: bytes | None) -> int: ...
    def message_summaries(self, chat_id: str, limit: int,
                          max_text_bytes: int) -> list[MessageSummary]: ...
    def message_file(self, chat_id: str, message_id: int) -> tuple[str, bytes] | None: ...
    def notifications(self, member_id: str, addresses: dict[str, str],
                      limit: int) -> list[Notification]: ...
    def chat_messages(self, chat_id: str, limit: int = 1000, before: int | None = None,
                      max_bytes: int | None = None) -> tuple[list[ChatMessage], bool]: ...
    def chat_bytes(self, app_id: str, member: str) -> int: ...
