"""The registry in a PostgreSQL store: the hosts' common secret, chats with their members,
app copies and the pages and home pages that members open."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import psycopg

from ...model.chats import Chat, HomePage, Member, Page, Registry, SharedApp
from ..api import StoreError, decode_members, encode_members
from ..migrations import CHATS_CHANNEL
from .columns import text
from .connection import AsyncRows, Connection, Cursor

__all__ = ["PostgresChats", "insert_pages", "insert_homes", "announce"]


class PostgresChats:
    """The rows of chats, members, pages and home pages (see `StoreApi` for what each
    change means). The changes take the cursor of the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def secret(self) -> bytes:
        """The hosts' common secret for deriving `selfAddr`, created on first use."""
        with self._connection.cursor() as cur:
            cur.execute("INSERT INTO meta (key, value) VALUES ('secret', %s)"
                        " ON CONFLICT (key) DO NOTHING", (Registry.new_secret(),))
            row = cur.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
        assert row is not None
        return bytes(row[0])

    def load_registry(self, chat_id: str | None = None) -> Registry:
        """Every stored chat, app copy and page, in a registry with the stored secret; or,
        given `chat_id`, that chat alone with its app copies and pages."""
        registry = Registry(self.secret())
        db = self._connection.connection()
        # One snapshot for every table, so that a chat made meanwhile by another process
        # is either all there or not at all (inside `share`, the lock already makes it so).
        consistent = db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self._connection.cursor(transaction=consistent) as cur:
            if consistent:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            found = [cur.execute(query, args).fetchall()
                     for query, args in _registry_queries(chat_id)]
        return _filled(registry, *found)

    @staticmethod
    async def read_registry(reader: AsyncRows, chat_id: str | None = None) -> Registry:
        """`load_registry(chat_id)`, read in one snapshot on `reader`'s asynchronous
        connection. `StoreError` if the store holds no secret yet (a host made it)."""
        secret, *found = await reader.snapshot(
            [("SELECT value FROM meta WHERE key = 'secret'", ()),
             *_registry_queries(chat_id)])
        if not secret:
            raise StoreError("PostgreSQL: the store has no secret yet", "failed")
        return _filled(Registry(bytes(secret[0][0])), *found)

    @staticmethod
    def save_chat(cur: Cursor, chat: Chat) -> None:
        """Store a chat and its members (replacing what was stored)."""
        cur.execute("INSERT INTO chats (id, name, members) VALUES (%s, %s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
                    " members = EXCLUDED.members",
                    (chat.id, chat.name.encode(), encode_members(chat.members)))

    def add_member(self, cur: Cursor, chat: Chat, member: Member, pages: list[Page],
                   home: HomePage) -> None:
        """Store a new member of `chat` with their pages and home page."""
        self.save_chat(cur, Chat(chat.id, chat.name, [*chat.members, member]))
        insert_pages(cur, pages)
        insert_homes(cur, [home])

    def remove_member(self, cur: Cursor, chat: Chat, member: Member) -> None:
        """Forget a member of `chat` with their pages and home page."""
        self.save_chat(cur, Chat(chat.id, chat.name,
                                 [m for m in chat.members if m.id != member.id]))
        cur.execute("DELETE FROM pages WHERE member_id = %s AND app_id IN"
                    " (SELECT id FROM apps WHERE chat_id = %s)", (member.id, chat.id))
        cur.execute("DELETE FROM homes WHERE chat_id = %s AND member_id = %s",
                    (chat.id, member.id))

    @staticmethod
    def delete_chat(cur: Cursor, chat_id: str) -> None:
        """Forget a chat's row and its home pages (once its app copies are gone)."""
        cur.execute("DELETE FROM homes WHERE chat_id = %s", (chat_id,))
        cur.execute("DELETE FROM chats WHERE id = %s", (chat_id,))

    @staticmethod
    def replace_tokens(cur: Cursor, pages: list[Page], homes: list[HomePage]) -> None:
        """Store new tokens for pages and home pages."""
        cur.executemany("UPDATE pages SET token = %s WHERE label = %s",
                        [(page.token, page.label) for page in pages])
        cur.executemany("UPDATE homes SET token = %s WHERE label = %s",
                        [(home.token, home.label) for home in homes])


def insert_pages(cur: Cursor, pages: list[Page]) -> None:
    """Store new pages (of a new app copy, or of a new member)."""
    cur.executemany("INSERT INTO pages (label, token, app_id, member_id)"
                    " VALUES (%s, %s, %s, %s)",
                    [(p.label, p.token, p.app.id, p.member.id) for p in pages])


def insert_homes(cur: Cursor, homes: list[HomePage]) -> None:
    """Store new home pages."""
    cur.executemany("INSERT INTO homes (label, token, chat_id, member_id)"
                    " VALUES (%s, %s, %s, %s)",
                    [(h.label, h.token, h.chat_id, h.member.id) for h in homes])


def announce(cur: Cursor, chat_ids: Iterable[str]) -> None:
    """Announce a change to each of these chats on `CHATS_CHANNEL`, delivered to every
    listening process once the caller's transaction commits (and never if it rolls back)."""
    for chat_id in sorted(set(chat_ids)):
        cur.execute("SELECT pg_notify(%s, %s)", (CHATS_CHANNEL, chat_id))


Rows = list[tuple[Any, ...]]


def _registry_queries(chat_id: str | None) -> list[tuple[str, tuple[object, ...]]]:
    """The statements that read every chat (or the chat `chat_id`): its chats, app copies,
    pages and home pages, in the order `_filled` takes their rows."""
    where, apps_where, args = ("", "", ()) if chat_id is None else (
        " WHERE id = %s", " WHERE chat_id = %s", (chat_id,))
    pages_where = "" if chat_id is None else \
        f" WHERE app_id IN (SELECT id FROM apps{apps_where})"
    return [(f"SELECT id, name, members FROM chats{where}", args),
            (f"SELECT id, chat_id, name, key, sender FROM apps{apps_where} ORDER BY added",
             args),
            (f"SELECT label, token, app_id, member_id FROM pages{pages_where} ORDER BY added",
             args),
            (f"SELECT label, token, chat_id, member_id FROM homes{apps_where}", args)]


def _filled(registry: Registry, chats: Rows, apps: Rows, pages: Rows,
            homes: Rows) -> Registry:
    """`registry` with the rows `_registry_queries` read added."""
    for found_id, name, members in chats:
        registry.add_chat(Chat(found_id, text(name) or "",
                               decode_members(json.loads(members))))
    for app_id, app_chat, name, key, sender in apps:
        registry.add_app(SharedApp(app_id, app_chat, text(name) or "", key, sender))
    for label, token, app_id, member_id in pages:
        registry.add_page(label, token, app_id, member_id)
    for label, token, home_chat, member_id in homes:
        chat = registry.chats.get(home_chat)
        member = (next((m for m in chat.members if m.id == member_id), None)
                  if chat else None)
        if member is not None:
            registry.add_homes([HomePage(label, token, home_chat, member)])
    return registry
