"""Chat messages in a PostgreSQL store: what apps post to their chat with `sendToChat`,
listed newest first in pages bounded in count and bytes."""

from __future__ import annotations

import time
from typing import Any, Final

from ..api import ChatMessage, MessageSummary, leading_within
from .columns import text, utf8
from .connection import AsyncRows, Connection, Cursor

__all__ = ["PostgresMessages"]

_MESSAGE_BYTES: Final = "coalesce(octet_length(text), 0) + coalesce(octet_length(file_data), 0)"
"""SQL: the bytes of a chat message's text (UTF-8) and file, as quotas and pages count them."""
_RECENT_SIZES: Final = (f"SELECT id, {_MESSAGE_BYTES} FROM chat_messages WHERE chat_id = %s"
                        " AND id < %s ORDER BY id DESC LIMIT %s")
_RECENT_ROWS: Final = ("SELECT id, app_id, member, text, file_name, file_data FROM chat_messages"
                       " WHERE chat_id = %s AND id BETWEEN %s AND %s ORDER BY id")
_SUMMARIES: Final = ("SELECT id, app_id, member, text, file_name, octet_length(file_data),"
                     " created FROM chat_messages WHERE chat_id = %s ORDER BY id DESC LIMIT %s")
_FILE: Final = ("SELECT file_name, file_data FROM chat_messages WHERE chat_id = %s AND id = %s"
                " AND file_data IS NOT NULL")
_BYTES_OF: Final = (f"SELECT sum({_MESSAGE_BYTES}) FROM chat_messages"
                    " WHERE app_id = %s AND member = %s")


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

    @staticmethod
    async def read_summaries(reader: AsyncRows, chat_id: str, limit: int,
                             max_text_bytes: int) -> list[MessageSummary]:
        """The latest messages posted to a chat without their files' bytes, oldest first,
        read on `reader`'s asynchronous connection."""
        rows = await reader.rows(_SUMMARIES, (chat_id, limit))
        count = leading_within([len(row[3] or b"") for row in rows], max_text_bytes)
        return [MessageSummary(message_id, app_id, text(member) or "", text(body),
                               text(file_name), None if size is None else int(size),
                               float(created))
                for message_id, app_id, member, body, file_name, size, created
                in reversed(rows[:count])]

    @staticmethod
    async def read_file(reader: AsyncRows, chat_id: str,
                        message_id: int) -> tuple[str, bytes] | None:
        """The name and bytes of a chat message's file, if it has one, read on `reader`'s
        asynchronous connection."""
        rows = await reader.rows(_FILE, (chat_id, message_id))
        return (text(rows[0][0]) or "file", bytes(rows[0][1])) if rows else None

    @staticmethod
    async def read_recent(reader: AsyncRows, chat_id: str, limit: int,
                          before: int | None, max_bytes: int | None
                          ) -> tuple[list[ChatMessage], bool]:
        """The most recent messages posted to a chat, oldest first, bounded in count and
        bytes, and whether older ones remain; read on `reader`'s asynchronous
        connection."""
        sizes = await reader.rows(_RECENT_SIZES, _sizes_parameters(chat_id, limit, before))
        chosen, more = _choose(sizes, limit, max_bytes)
        if not chosen:
            return [], more
        found = await reader.rows(_RECENT_ROWS, (chat_id, chosen[-1], chosen[0]))
        return _messages(found), more

    @staticmethod
    async def read_bytes_of(reader: AsyncRows, app_id: str, member: str) -> int:
        """Bytes of text and files one member's page of one app copy posted to its chat,
        read on `reader`'s asynchronous connection."""
        rows = await reader.rows(_BYTES_OF, (app_id, member.encode()))
        return int(rows[0][0] or 0) if rows else 0

    @staticmethod
    def delete_chat(cur: Cursor, chat_id: str) -> None:
        """Forget every message posted to a chat."""
        cur.execute("DELETE FROM chat_messages WHERE chat_id = %s", (chat_id,))


def _sizes_parameters(chat_id: str, limit: int, before: int | None) -> tuple[object, ...]:
    """The parameters of `_RECENT_SIZES`: one row more than `limit`, to tell whether older
    messages remain."""
    return (chat_id, 2**63 - 1 if before is None else before, limit + 1)


def _choose(sizes: list[tuple[Any, ...]], limit: int,
            max_bytes: int | None) -> tuple[list[int], bool]:
    """From the (id, bytes) rows of `_RECENT_SIZES`, newest first: the ids of the messages
    that fit in `limit` and `max_bytes`, and whether older ones remain."""
    count = leading_within([size for _, size in sizes[:limit]], max_bytes)
    return [message_id for message_id, _ in sizes[:count]], len(sizes) > count


def _messages(rows: list[tuple[Any, ...]]) -> list[ChatMessage]:
    """The chat messages of the rows of `_RECENT_ROWS`."""
    return [ChatMessage(message_id, app_id, text(member) or "", text(body), text(file_name),
                        None if data is None else bytes(data))
            for message_id, app_id, member, body, file_name, data in rows]
