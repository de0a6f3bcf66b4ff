"""The registry in a SQLite store: the host's secret, chats with their members, app copies
and the pages and home pages that members open."""

from __future__ import annotations

from ...model.chats import Chat, HomePage, Member, Page, Registry, SharedApp
from ..api import encode_members
from .database import Database
from .repair import Repair

__all__ = ["SqliteChats", "insert_pages"]


class SqliteChats:
    """The rows of chats, members, pages and home pages (see `StoreApi` for what each
    change means); app copies are written by `apps.SqliteApps`."""

    def __init__(self, db: Database, repair: Repair) -> None:
        self._db = db
        self._repair = repair

    def secret(self) -> bytes:
        """The host's secret for deriving `selfAddr`, created on first use."""
        row = self._db.row("SELECT value FROM meta WHERE key = 'secret'")
        if row is not None:
            return bytes(row[0])
        secret = Registry.new_secret()
        self._db.execute("INSERT INTO meta (key, value) VALUES ('secret', ?)", (secret,))
        return secret

    def load_registry(self) -> Registry:
        """Every stored chat, app copy and page, in a registry with the stored secret."""
        registry = Registry(self.secret())
        text = self._repair.text
        for chat_id, name, members in self._db.rows(
                "SELECT id, CAST(name AS BLOB), CAST(members AS BLOB) FROM chats"):
            registry.add_chat(Chat(chat_id, text(name, "a chat's name") or "",
                                   self._repair.members(text(members, "a member list"))))
        for app_id, chat_id, name, key, sender in self._db.rows(
                "SELECT id, chat_id, CAST(name AS BLOB), key, sender FROM apps"):
            registry.add_app(SharedApp(app_id, chat_id, text(name, "an app's name") or "",
                                       key, sender))
        for label, token, app_id, member_id in self._db.rows(
                "SELECT label, token, app_id, member_id FROM pages ORDER BY rowid"):
            registry.add_page(label, token, app_id, member_id)
        for label, token, chat_id, member_id in self._db.rows(
                "SELECT label, token, chat_id, member_id FROM homes"):
            chat = registry.chats.get(chat_id)
            member = next((m for m in chat.members if m.id == member_id), None) if chat else None
            if member is not None:
                registry.add_homes([HomePage(label, token, chat_id, member)])
        return registry

    def save_chat(self, chat: Chat) -> None:
        """Store a chat and its members (replacing what was stored)."""
        self._db.execute("INSERT OR REPLACE INTO chats (id, name, members) VALUES (?, ?, ?)",
                         (chat.id, chat.name, encode_members(chat.members)))

    def add_member(self, chat: Chat, member: Member, pages: list[Page],
                   home: HomePage) -> None:
        """Store a new member of `chat` with their pages and home page (in a
        transaction)."""
        self.save_chat(Chat(chat.id, chat.name, [*chat.members, member]))
        insert_pages(self._db, pages)
        self.insert_homes([home])

    def remove_member(self, chat: Chat, member: Member) -> None:
        """Forget a member of `chat` with their pages and home page (in a transaction)."""
        self.save_chat(Chat(chat.id, chat.name, [m for m in chat.members if m.id != member.id]))
        self._db.execute("DELETE FROM pages WHERE member_id = ? AND app_id IN"
                         " (SELECT id FROM apps WHERE chat_id = ?)", (member.id, chat.id))
        self._db.execute("DELETE FROM homes WHERE chat_id = ? AND member_id = ?",
                         (chat.id, member.id))

    def delete_chat(self, chat_id: str) -> None:
        """Forget a chat's row and its home pages (in a transaction, once its app copies
        are gone)."""
        self._db.execute("DELETE FROM homes WHERE chat_id = ?", (chat_id,))
        self._db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    def replace_tokens(self, pages: list[Page], homes: list[HomePage]) -> None:
        """Store new tokens for pages and home pages (in a transaction)."""
        self._db.executemany("UPDATE pages SET token = ? WHERE label = ?",
                             [(page.token, page.label) for page in pages])
        self._db.executemany("UPDATE homes SET token = ? WHERE label = ?",
                             [(home.token, home.label) for home in homes])

    def insert_homes(self, homes: list[HomePage]) -> None:
        """Store new home pages."""
        self._db.executemany(
            "INSERT INTO homes (label, token, chat_id, member_id) VALUES (?, ?, ?, ?)",
            [(h.label, h.token, h.chat_id, h.member.id) for h in homes])


def insert_pages(db: Database, pages: list[Page]) -> None:
    """Store new pages (of a new app copy, or of a new member)."""
    db.executemany("INSERT INTO pages (label, token, app_id, member_id) VALUES (?, ?, ?, ?)",
                   [(p.label, p.token, p.app.id, p.member.id) for p in pages])
