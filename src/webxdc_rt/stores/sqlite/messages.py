"""Chat messages in a SQLite store: what apps post to their chat with `sendToChat`, listed
newest first in pages bounded in count and bytes."""

from __future__ import annotations

import time

from ..api import ChatMessage, MessageSummary, leading_within
from .database import Database, Rows
from .repair import Repair

__all__ = ["SqliteMessages"]

_MESSAGE_BYTES = "coalesce(length(CAST(text AS BLOB)), 0) + coalesce(length(file_data), 0)"
"""SQL: the bytes of a chat message's text (UTF-8) and file, as quotas and pages count them."""
_WHERE = "a chat message"
"""Where a repaired text was found, for the log."""


class SqliteMessages:
    """The `chat_messages` table (see `StoreApi` for what each read returns)."""

    def __init__(self, db: Database, repair: Repair) -> None:
        self._db = db
        self._repair = repair

    def add(self, chat_id: str, app_id: str, member: str, text: str | None,
            file_name: str | None, file_data: bytes | None) -> int:
        """Record a message an app posted to its chat (its time counted); return its id."""
        started = time.perf_counter()
        message_id = self.insert(chat_id, app_id, member, text, file_name, file_data)
        self._db.latency.observe(time.perf_counter() - started)
        return message_id

    def insert(self, chat_id: str, app_id: str, member: str, text: str | None,
               file_name: str | None, file_data: bytes | None) -> int:
        """Insert a message (committed with the transaction, if one is open); its id."""
        cursor = self._db.execute(
            "INSERT INTO chat_messages (chat_id, app_id, member, text, file_name, file_data,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (chat_id, app_id, member, text, file_name, file_data, time.time()))
        return int(cursor.lastrowid or 0)

    def summaries(self, db: Rows, chat_id: str, limit: int,
                  max_text_bytes: int) -> list[MessageSummary]:
        """On `db` (the reader's connection, on the reader's thread): the latest messages
        posted to a chat without their files' bytes, oldest first."""
        rows = db.rows(
            "SELECT id, app_id, CAST(member AS BLOB), CAST(text AS BLOB),"
            " CAST(file_name AS BLOB), length(file_data), created FROM chat_messages"
            " WHERE chat_id = ? ORDER BY id DESC LIMIT ?", (chat_id, limit))
        count = leading_within((len(row[3] or b"") for row in rows), max_text_bytes)
        text = self._repair.text
        return [MessageSummary(message_id, app_id, text(member, _WHERE) or "",
                               text(body, _WHERE), text(file_name, _WHERE),
                               None if size is None else int(size), float(created))
                for message_id, app_id, member, body, file_name, size, created
                in reversed(rows[:count])]

    def file(self, db: Rows, chat_id: str, message_id: int) -> tuple[str, bytes] | None:
        """On `db` (as `summaries`): the name and bytes of a chat message's file, if it has
        one."""
        rows = db.rows(
            "SELECT CAST(file_name AS BLOB), file_data FROM chat_messages"
            " WHERE chat_id = ? AND id = ? AND file_data IS NOT NULL", (chat_id, message_id))
        if not rows:
            return None
        row = rows[0]
        return self._repair.text(row[0], _WHERE) or "file", bytes(row[1])

    def recent(self, db: Rows, chat_id: str, limit: int, before: int | None,
               max_bytes: int | None) -> tuple[list[ChatMessage], bool]:
        """On `db` (as `summaries`): the most recent messages posted to a chat, oldest
        first, bounded in count and bytes; and whether older ones remain."""
        rows = db.rows(
            f"SELECT id, {_MESSAGE_BYTES} FROM chat_messages"
            " WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (chat_id, 2**63 - 1 if before is None else before, limit + 1))
        count = leading_within((size for _, size in rows[:limit]), max_bytes)
        chosen = [message_id for message_id, _ in rows[:count]]
        more = len(rows) > count
        if not chosen:
            return [], more
        rows = db.rows(
            "SELECT id, app_id, CAST(member AS BLOB), CAST(text AS BLOB),"
            " CAST(file_name AS BLOB), file_data FROM chat_messages"
            " WHERE chat_id = ? AND id BETWEEN ? AND ? ORDER BY id",
            (chat_id, chosen[-1], chosen[0]))
        text = self._repair.text
        return [ChatMessage(message_id, app_id, text(member, _WHERE) or "", text(body, _WHERE),
                            text(file_name, _WHERE), None if data is None else bytes(data))
                for message_id, app_id, member, body, file_name, data in rows], more

    def bytes_of(self, db: Rows, app_id: str, member: str) -> int:
        """On `db` (as `summaries`): bytes of text and files one member's page of one app
        copy posted to its chat."""
        [row] = db.rows(
            f"SELECT sum({_MESSAGE_BYTES}) FROM chat_messages WHERE app_id = ? AND member = ?",
            (app_id, member))
        return int(row[0] or 0)

    def delete_chat(self, chat_id: str) -> None:
        """Forget every message posted to a chat (in a transaction)."""
        self._db.execute("DELETE FROM chat_messages WHERE chat_id = ?", (chat_id,))
