"""Chat messages in a PostgreSQL store: what apps post to their chat with `sendToChat`,
listed newest first in pages bounded in count and bytes."""

from __future__ import annotations

import time
from typing import Final

from ..api import ChatMessage, MessageSummary, leading_within
from .columns import text, utf8
from .connection import Connection, Cursor

__all__ = ["PostgresMessages"]

_MESSAGE_BYTES: Final = "coalesce(octet_length(text), 0) + coalesce(octet_length(file_data), 0)"
"""SQL: the bytes of a chat message's text (UTF-8) and file, as quotas and pages count them."""


class PostgresMessages:
    """The `chat_messages` table (see `StoreApi` for what each read returns)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, chat_id: str, app_id: str, member: str, body: str | None,
            file_name: str | None, file_data: bytes | None) -> int:
        """Record a message an app posted to its chat; return its id."""
        with self._connection.cursor(write=True) as cur:
            row = cur.execute(
                "INSERT INTO chat_messages (chat_id, app_id, member, text, file_name,"
                " file_data, created) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (chat_id, app_id, member.encode(), utf8(body), utf8(file_name), file_data,
                 time.time())).fetchone()
        assert row is not None
        return int(row[0])

    def summaries(self, chat_id: str, limit: int, max_text_bytes: int) -> list[MessageSummary]:
        """The latest messages posted to a chat without their files' bytes, oldest first."""
        with self._connection.cursor() as cur:
            rows = cur.execute(
                "SELECT id, app_id, member, text, file_name, octet_length(file_data), created"
                " FROM chat_messages WHERE chat_id = %s ORDER BY id DESC LIMIT %s",
                (chat_id, limit)).fetchall()
        count = leading_within([len(row[3] or b"") for row in rows], max_text_bytes)
        return [MessageSummary(message_id, app_id, text(member) or "", text(body),
                               text(file_name), None if size is None else int(size),
                               float(created))
                for message_id, app_id, member, body, file_name, size, created
                in reversed(rows[:count])]

    def file(self, chat_id: str, message_id: int) -> tuple[str, bytes] | None:
        """The name and bytes of a chat message's file, if it has one."""
        with self._connection.cursor() as cur:
            row = cur.execute(
                "SELECT file_name, file_data FROM chat_messages WHERE chat_id = %s AND id = %s"
                " AND file_data IS NOT NULL", (chat_id, message_id)).fetchone()
        return None if row is None else (text(row[0]) or "file", bytes(row[1]))

    def recent(self, chat_id: str, limit: int, before: int | None,
               max_bytes: int | None) -> tuple[list[ChatMessage], bool]:
        """The most recent messages posted to a chat, oldest first, bounded in count and
        bytes; and whether older ones remain."""
        with self._connection.cursor() as cur:
            rows = cur.execute(
                f"SELECT id, {_MESSAGE_BYTES} FROM chat_messages WHERE chat_id = %s"
                " AND id < %s ORDER BY id DESC LIMIT %s",
                (chat_id, 2**63 - 1 if before is None else before, limit + 1)).fetchall()
            count = leading_within([size for _, size in rows[:limit]], max_bytes)
            chosen = [message_id for message_id, _ in rows[:count]]
            more = len(rows) > count
            if not chosen:
                return [], more
            found = cur.execute(
                "SELECT id, app_id, member, text, file_name, file_data FROM chat_messages"
                " WHERE chat_id = %s AND id BETWEEN %s AND %s ORDER BY id",
                (chat_id, chosen[-1], chosen[0])).fetchall()
        return [ChatMessage(message_id, app_id, text(member) or "", text(body),
                            text(file_name), None if data is None else bytes(data))
                for message_id, app_id, member, body, file_name, data in found], more

    def bytes_of(self, app_id: str, member: str) -> int:
        """Bytes of text and files one member's page of one app copy posted to its chat."""
        with self._connection.cursor() as cur:
            row = cur.execute(
                f"SELECT sum({_MESSAGE_BYTES}) FROM chat_messages"
                " WHERE app_id = %s AND member = %s", (app_id, member.encode())).fetchone()
        return int(row[0] or 0) if row else 0

    @staticmethod
    def delete_chat(cur: Cursor, chat_id: str) -> None:
        """Forget every message posted to a chat."""
        cur.execute("DELETE FROM chat_messages WHERE chat_id = %s", (chat_id,))
