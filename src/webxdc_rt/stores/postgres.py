"""Chats, pages, status updates and chat messages in PostgreSQL, shared by host processes.

`--store postgresql://USER[:PASSWORD]@HOST[:PORT]/DB` puts the host's state in one
PostgreSQL database that several `webxdc-rt` processes use at once (with `--broker`, they
serve the same chats). A fresh database is set up by the first host that connects
(`pg_migrations.py`).

Serials are given by the database (one sequence), and the updates of one app copy are
committed in serial order: each insert holds a transaction-scoped advisory lock on its app
copy from before it draws its serial until it commits. Every insert announces
`<app copy> <serial>` on a NOTIFY channel once committed; `PostgresStore.follow` hands those
announcements to the host, which reads the new rows in serial order and sends them to its
pages, so a page on any process receives every update exactly once, in serial order.

Calls are synchronous on the event loop (psycopg 3, one connection per process), as SQLite's
are: a durable commit costs 0.5-1 ms on loopback, mostly the server's fsync, and no thread
hop keeps this process's actions in the order it took them. When the
server cannot be reached a call fails at once with `StoreError` (the page is told
`storage-failed`; nothing was acknowledged), and a background thread reconnects with
backoff, saying so in the log once per outage. The announcements have their own connection
in an asyncio task, which also reconnects; after it does, the host reads back whatever it
missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg

from ..core.stats import LatencyHistogram
from ..core.updates import Update
from ..model.chats import Chat, HomePage, Member, Page, Registry, SharedApp
from .api import StoreError, StoreLimits, StoreUnavailable
from .migrations import MIGRATION_LOCK, MIGRATIONS, UPDATES_CHANNEL
from .sqlite import (
    APP_USAGE_SQL,
    AppUsage,
    ChatMessage,
    MessageSummary,
    Notification,
    StoredApp,
    StoredUpdate,
    app_usage_parameters,
    leading_within,
)

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

_UPDATE_BYTES: Final = ("octet_length(payload) + coalesce(octet_length(info), 0)"
                        " + coalesce(octet_length(href), 0)"
                        " + coalesce(octet_length(document), 0)"
                        " + coalesce(octet_length(summary), 0)"
                        " + coalesce(octet_length(notify), 0)")
_MESSAGE_BYTES: Final = "coalesce(octet_length(text), 0) + coalesce(octet_length(file_data), 0)"


def _text(stored: bytes | None) -> str | None:
    """A member's text kept as UTF-8 bytes (see `pg_migrations`)."""
    return None if stored is None else bytes(stored).decode(errors="replace")


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


class PostgresStore:
    """The host's state in a PostgreSQL database shared with other host processes."""

    shared = True
    """Other processes append updates too (see `store_api.StoreApi.shared`)."""

    def __init__(self, url: str, settings: StoreLimits | None = None) -> None:
        """Connect to the database at `url` and bring its schema up to date. Raises
        `StoreError` if it cannot be reached or set up."""
        self.url = url
        self.settings = settings or StoreLimits()
        self.latency = LatencyHistogram()
        """How long each write of a status update, a chat message or a change to chats
        took, commit included."""
        self._closed = False
        self._reconnecting = threading.Lock()
        self._db: psycopg.Connection[Any] | None = self._connect()
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- connection --------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        s = self.settings
        return {"autocommit": True, "connect_timeout": max(1, round(s.connect_timeout_s)),
                "options": f"-c statement_timeout={round(s.statement_timeout_s * 1000)}",
                # A server that vanishes from the network is noticed in seconds, not when
                # the kernel gives up on the connection (minutes).
                "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                "keepalives_count": 3,
                "tcp_user_timeout": round(s.statement_timeout_s * 1000)}

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, **self._params())
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {_reason(exc)}") from None

    def _connection(self) -> psycopg.Connection[Any]:
        db = self._db
        if db is None or db.closed:
            self._lost(None)
            raise StoreUnavailable("PostgreSQL is unreachable; reconnecting")
        return db

    def _lost(self, exc: BaseException | None) -> None:
        """The connection is broken: drop it and reconnect in the background."""
        if self._closed or not self._reconnecting.acquire(blocking=False):
            return
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except psycopg.Error:
                pass
        reason = _reason(exc) if exc is not None else "connection closed"
        log.warning("PostgreSQL unreachable (%s); status updates and chat changes are "
                    "refused until it is back, reconnecting", reason)
        threading.Thread(target=self._reconnect, name="webxdc-rt-pg-reconnect",
                         daemon=True).start()

    def _reconnect(self) -> None:
        wait = 0.1
        started = time.monotonic()
        try:
            while not self._closed:
                try:
                    db = psycopg.connect(self.url, **self._params())
                except psycopg.Error:
                    time.sleep(wait)
                    wait = min(wait * 2, self.settings.reconnect_max_s)
                    continue
                if self._closed:
                    db.close()
                    return
                self._db = db
                log.warning("PostgreSQL reachable again after %.1f s",
                            time.monotonic() - started)
                return
        finally:
            self._reconnecting.release()

    @contextmanager
    def _cursor(self, *, write: bool = False,
                transaction: bool = False) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor on the connection, inside a transaction if asked; psycopg's errors come
        out as `StoreError`, and a broken connection is replaced in the background."""
        db = self._connection()
        started = time.perf_counter()
        try:
            if transaction:
                with db.transaction(), db.cursor() as cursor:
                    yield cursor
            else:
                with db.cursor() as cursor:
                    yield cursor
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) or db.closed or db.broken:
                self._lost(exc)
            log.debug("PostgreSQL statement failed", exc_info=True)
            raise StoreError(f"PostgreSQL: {_reason(exc)}") from None
        if write:
            self.latency.observe(time.perf_counter() - started)

    def _migrate(self) -> None:
        with self._cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer)")
                row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
                applied = int(row[0] or 0) if row else 0
                if applied > len(MIGRATIONS):
                    raise StoreError(f"the database's schema is version {applied}, newer than "
                                     f"this webxdc-rt knows ({len(MIGRATIONS)})")
                for version in range(applied + 1, len(MIGRATIONS) + 1):
                    with self._connection().transaction():
                        cur.execute(MIGRATIONS[version - 1])
                        cur.execute("INSERT INTO schema_version VALUES (%s)", (version,))
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    @property
    def schema_version(self) -> int:
        """The highest migration applied to the database."""
        with self._cursor() as cur:
            row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    def close(self) -> None:
        """Close the connection and stop reconnecting."""
        self._closed = True
        db, self._db = self._db, None
        if db is not None:
            db.close()

    # -- announcements -------------------------------------------------------------------

    async def follow(self, on_appended: Callable[[str, int], None],
                     on_resync: Callable[[], None]) -> None:
        """Until cancelled: call `on_appended(app_id, serial)` for every update stored by any
        process, in commit order, and `on_resync()` each time the announcements' connection
        is (re)made, since announcements made meanwhile are lost."""
        wait = 0.1
        outage = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, **self._params())
            except psycopg.Error:
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.settings.reconnect_max_s)
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {UPDATES_CHANNEL}")
                    wait = 0.1
                    if outage:
                        log.info("update announcements from PostgreSQL resumed")
                        outage = False
                    on_resync()
                    async for notice in conn.notifies():
                        app_id, _, serial = notice.payload.rpartition(" ")
                        if app_id and serial.isdigit():
                            on_appended(app_id, int(serial))
            except psycopg.Error as exc:
                if not outage:
                    log.warning("update announcements from PostgreSQL interrupted (%s); "
                                "reconnecting", _reason(exc))
                outage = True
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.settings.reconnect_max_s)

    # -- registry ------------------------------------------------------------------------

    def secret(self) -> bytes:
        """The hosts' common secret for deriving `selfAddr`, created on first use."""
        with self._cursor() as cur:
            cur.execute("INSERT INTO meta (key, value) VALUES ('secret', %s)"
                        " ON CONFLICT (key) DO NOTHING", (Registry.new_secret(),))
            row = cur.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
        assert row is not None
        return bytes(row[0])

    def load_registry(self) -> Registry:
        """Every stored chat, app copy and page, in a registry with the stored secret."""
        registry = Registry(self.secret())
        db = self._connection()
        # One snapshot for every table, so that a chat made meanwhile by another process
        # is either all there or not at all (inside `share`, the lock already makes it so).
        consistent = db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self._cursor(transaction=consistent) as cur:
            if consistent:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for chat_id, name, members in cur.execute("SELECT id, name, members FROM chats"):
                registry.add_chat(Chat(chat_id, _text(name) or "", _members(members)))
            for app_id, chat_id, name, key, sender in cur.execute(
                    "SELECT id, chat_id, name, key, sender FROM apps ORDER BY added"):
                registry.add_app(SharedApp(app_id, chat_id, _text(name) or "", key, sender))
            for label, token, app_id, member_id in cur.execute(
                    "SELECT label, token, app_id, member_id FROM pages ORDER BY added"):
                registry.add_page(label, token, app_id, member_id)
            for label, token, chat_id, member_id in cur.execute(
                    "SELECT label, token, chat_id, member_id FROM homes"):
                chat = registry.chats.get(chat_id)
                member = (next((m for m in chat.members if m.id == member_id), None)
                          if chat else None)
                if member is not None:
                    registry.add_homes([HomePage(label, token, chat_id, member)])
        return registry

    @staticmethod
    def _save_chat(cur: psycopg.Cursor[Any], chat: Chat) -> None:
        members = json.dumps([{"id": m.id, "name": m.name} for m in chat.members])
        cur.execute("INSERT INTO chats (id, name, members) VALUES (%s, %s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
                    " members = EXCLUDED.members", (chat.id, chat.name.encode(), members))

    def save_chat(self, chat: Chat) -> None:
        """Store a chat and its members (replacing what was stored)."""
        with self._cursor(write=True) as cur:
            self._save_chat(cur, chat)

    def save_shared_app(self, app: SharedApp, pages: list[Page],
                        container: tuple[str, bytes] | None = None) -> None:
        """Store a newly shared app copy with its pages and container, in one transaction."""
        with self._cursor(write=True, transaction=True) as cur:
            self._insert_app(cur, app, pages, container)

    @staticmethod
    def _insert_app(cur: psycopg.Cursor[Any], app: SharedApp, pages: list[Page],
                    container: tuple[str, bytes] | None) -> None:
        if container is not None:
            cur.execute("INSERT INTO containers (digest, data) VALUES (%s, %s)"
                        " ON CONFLICT DO NOTHING", container)
        cur.execute("INSERT INTO apps (id, chat_id, name, key, sender, container)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (app.id, app.chat_id, app.name.encode(), app.key, app.sender,
                     None if container is None else container[0]))
        _insert_pages(cur, pages)

    def create_chat(self, chat: Chat, homes: list[HomePage]) -> None:
        """Store a new chat with its members' home pages, in one transaction."""
        with self._cursor(write=True, transaction=True) as cur:
            self._save_chat(cur, chat)
            _insert_homes(cur, homes)

    def add_member(self, chat: Chat, member: Member, pages: list[Page],
                   home: HomePage) -> None:
        """Store a new member of `chat` with their pages and home page, in one transaction."""
        with self._cursor(write=True, transaction=True) as cur:
            self._save_chat(cur, Chat(chat.id, chat.name, [*chat.members, member]))
            _insert_pages(cur, pages)
            _insert_homes(cur, [home])

    def remove_member(self, chat: Chat, member: Member) -> None:
        """Forget a member of `chat` with their pages and home page, in one transaction."""
        with self._cursor(write=True, transaction=True) as cur:
            self._save_chat(cur, Chat(chat.id, chat.name,
                                      [m for m in chat.members if m.id != member.id]))
            cur.execute("DELETE FROM pages WHERE member_id = %s AND app_id IN"
                        " (SELECT id FROM apps WHERE chat_id = %s)", (member.id, chat.id))
            cur.execute("DELETE FROM homes WHERE chat_id = %s AND member_id = %s",
                        (chat.id, member.id))

    def remove_app(self, app_id: str) -> None:
        """Forget an app copy: its pages, updates and unused container, in one transaction."""
        with self._cursor(write=True, transaction=True) as cur:
            _delete_apps(cur, "id = %s", (app_id,))

    def delete_chat(self, chat_id: str) -> None:
        """Forget a chat and everything in it, in one transaction."""
        with self._cursor(write=True, transaction=True) as cur:
            _delete_apps(cur, "chat_id = %s", (chat_id,))
            cur.execute("DELETE FROM homes WHERE chat_id = %s", (chat_id,))
            cur.execute("DELETE FROM chat_messages WHERE chat_id = %s", (chat_id,))
            cur.execute("DELETE FROM chats WHERE id = %s", (chat_id,))

    def replace_tokens(self, pages: list[Page], homes: list[HomePage]) -> None:
        """Store new tokens for pages and home pages, in one transaction."""
        with self._cursor(write=True, transaction=True) as cur:
            cur.executemany("UPDATE pages SET token = %s WHERE label = %s",
                            [(page.token, page.label) for page in pages])
            cur.executemany("UPDATE homes SET token = %s WHERE label = %s",
                            [(home.token, home.label) for home in homes])

    def add_homes(self, homes: list[HomePage]) -> None:
        """Store home pages (for chats made before home pages existed)."""
        with self._cursor(write=True, transaction=True) as cur:
            _insert_homes(cur, homes)

    def stored_apps(self) -> list[StoredApp]:
        """Where each app copy's files come from, oldest copy first."""
        with self._cursor() as cur:
            rows = cur.execute("SELECT id, container, key FROM apps ORDER BY added").fetchall()
        return [StoredApp(app_id, digest, key) for app_id, digest, key in rows]

    def container(self, digest: str) -> bytes | None:
        """The bytes of a stored `.xdc`, if it is stored."""
        with self._cursor() as cur:
            row = cur.execute("SELECT data FROM containers WHERE digest = %s",
                              (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def app_usage(self, chat_id: str, member_id: str) -> AppUsage:
        """What the stored app copies of the host, of a chat and of a member amount to (see
        `store.Store.app_usage`)."""
        with self._cursor() as cur:
            row = cur.execute(APP_USAGE_SQL.format(p="%s"),
                              app_usage_parameters(chat_id, member_id)).fetchone()
        assert row is not None  # an aggregate without GROUP BY is one row
        return AppUsage(*(int(value) for value in row))

    def share(self, registry: Registry, chat_name: str, member_names: list[str],
              app_name: str, app_key: str) -> list[Page]:
        """The pages of the app known by `app_key` in the chat `chat_name` with exactly
        these members: the stored ones if any process shared it there before, else a new
        chat and/or copy, stored. Processes sharing at once agree on one chat (an advisory
        lock); `registry` is brought up to date with what the database holds."""
        with self._cursor(write=True, transaction=True) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            fresh = self.load_registry()
            chat = fresh.find_chat(chat_name, member_names)
            if chat is None:
                chat = fresh.create_chat(chat_name, member_names)
                self._save_chat(cur, chat)
            app = fresh.find_app(chat, app_key)
            if app is None:
                pages = fresh.share_app(chat, app_name, app_key)
                self._insert_app(cur, pages[0].app, pages, None)
            else:
                pages = fresh.pages_of(app)
        for chat in fresh.chats.values():
            registry.add_chat(chat)
        for app in fresh.apps.values():
            registry.add_app(app)
            registry.add_pages(fresh.pages_of(app))
        return pages

    # -- status updates ----------------------------------------------------------------

    def append_update(self, app_id: str, member_id: str, update: Update) -> int:
        """Store an update (committed before this returns); return its serial. The lock on
        the app copy, taken before the serial is drawn and held to the commit, makes the
        copy's updates commit in serial order whichever process stores them."""
        notify = update.notify
        keys = None if notify is None else [key for key in notify if "\0" not in key]
        with self._cursor(write=True) as cur:
            row = cur.execute(
                "WITH locked AS (SELECT pg_advisory_xact_lock(hashtextextended(%s, 0)))"
                " INSERT INTO updates (app_id, member_id, payload, info, href, document,"
                " summary, notify, notify_keys, created)"
                " SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM locked RETURNING serial",
                (app_id, app_id, member_id, update.payload_json, _utf8(update.info),
                 _utf8(update.href), _utf8(update.document), _utf8(update.summary),
                 None if notify is None else json.dumps(notify), keys,
                 time.time())).fetchone()
        assert row is not None
        return int(row[0])

    def updates_after(self, app_id: str, serial: int, limit: int) -> list[StoredUpdate]:
        """Up to `limit` updates of an app copy with a serial above `serial`, in order."""
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT serial, payload, info, href, document, summary, notify FROM updates"
                " WHERE app_id = %s AND serial > %s ORDER BY serial LIMIT %s",
                (app_id, serial, limit)).fetchall()
        return [StoredUpdate(row[0], Update(
            row[1], _text(row[2]), _text(row[3]), _text(row[4]), _text(row[5]),
            None if row[6] is None else json.loads(row[6]))) for row in rows]

    def backlog_chunk(self, app_id: str, serial: int, max_bytes: int,
                      max_rows: int = 1000) -> int:
        """How many of the updates after `serial` hold at most `max_bytes` together
        (always at least one)."""
        with self._cursor() as cur:
            row = cur.execute(
                f"SELECT count(*) FILTER (WHERE running <= %s), count(*) FROM"
                f" (SELECT sum({_UPDATE_BYTES}) OVER (ORDER BY serial) AS running"
                " FROM updates WHERE app_id = %s AND serial > %s ORDER BY serial LIMIT %s) s",
                (max_bytes, app_id, serial, max_rows)).fetchone()
        assert row is not None
        fitting, found = int(row[0]), int(row[1])
        return max(fitting, min(found, 1))

    def max_serial(self, app_id: str) -> int:
        """The highest serial of an app copy's updates (0 when it has none)."""
        with self._cursor() as cur:
            row = cur.execute("SELECT max(serial) FROM updates WHERE app_id = %s",
                              (app_id,)).fetchone()
        return int(row[0] or 0) if row else 0

    # -- chat messages -----------------------------------------------------------------

    def add_chat_message(self, chat_id: str, app_id: str, member: str, text: str | None,
                         file_name: str | None, file_data: bytes | None) -> int:
        """Record a message an app posted to its chat; return its id."""
        with self._cursor(write=True) as cur:
            row = cur.execute(
                "INSERT INTO chat_messages (chat_id, app_id, member, text, file_name,"
                " file_data, created) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (chat_id, app_id, member.encode(), _utf8(text), _utf8(file_name), file_data,
                 time.time())).fetchone()
        assert row is not None
        return int(row[0])

    def message_summaries(self, chat_id: str, limit: int,
                          max_text_bytes: int) -> list[MessageSummary]:
        """The latest messages posted to a chat without their files' bytes, oldest first."""
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT id, app_id, member, text, file_name, octet_length(file_data), created"
                " FROM chat_messages WHERE chat_id = %s ORDER BY id DESC LIMIT %s",
                (chat_id, limit)).fetchall()
        count = leading_within([len(row[3] or b"") for row in rows], max_text_bytes)
        return [MessageSummary(message_id, app_id, _text(member) or "", _text(text),
                               _text(file_name), None if size is None else int(size),
                               float(created))
                for message_id, app_id, member, text, file_name, size, created
                in reversed(rows[:count])]

    def message_file(self, chat_id: str, message_id: int) -> tuple[str, bytes] | None:
        """The name and bytes of a chat message's file, if it has one."""
        with self._cursor() as cur:
            row = cur.execute(
                "SELECT file_name, file_data FROM chat_messages WHERE chat_id = %s AND id = %s"
                " AND file_data IS NOT NULL", (chat_id, message_id)).fetchone()
        return None if row is None else (_text(row[0]) or "file", bytes(row[1]))

    def notifications(self, member_id: str, addresses: dict[str, str],
                      limit: int) -> list[Notification]:
        """The latest updates that notify one member, oldest first, at most `limit`."""
        if not addresses:
            return []
        apps = list(addresses)
        paths = [addresses[app_id] for app_id in apps]
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT serial, u.app_id, member_id, notify, created FROM updates u"
                " JOIN unnest(%s::text[], %s::text[]) AS a(app_id, addr) ON u.app_id = a.app_id"
                " WHERE notify_keys IS NOT NULL AND member_id != %s"
                " AND notify_keys && ARRAY['*', a.addr] ORDER BY serial DESC LIMIT %s",
                (apps, paths, member_id, limit)).fetchall()
        found = []
        for serial, app_id, sender, notify_text, created in reversed(rows):
            notify = json.loads(notify_text)
            text = notify.get(addresses[app_id], notify.get("*"))
            if isinstance(text, str):
                found.append(Notification(serial, app_id, sender, text, float(created)))
        return found

    def chat_messages(self, chat_id: str, limit: int = 1000, before: int | None = None,
                      max_bytes: int | None = None) -> tuple[list[ChatMessage], bool]:
        """The most recent messages posted to a chat (before the id `before`), oldest first,
        bounded in count and bytes; and whether older ones remain."""
        with self._cursor() as cur:
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
        return [ChatMessage(message_id, app_id, _text(member) or "", _text(text),
                            _text(file_name), None if data is None else bytes(data))
                for message_id, app_id, member, text, file_name, data in found], more

    def chat_bytes(self, app_id: str, member: str) -> int:
        """Bytes of text and files one member's page of one app copy posted to its chat."""
        with self._cursor() as cur:
            row = cur.execute(
                f"SELECT sum({_MESSAGE_BYTES}) FROM chat_messages"
                " WHERE app_id = %s AND member = %s", (app_id, member.encode())).fetchone()
        return int(row[0] or 0) if row else 0


def _members(stored: str) -> list[Member]:
    members = json.loads(stored)
    return [Member(str(m.get("id")), str(m.get("name"))) for m in members
            if isinstance(m, dict)]


def _insert_pages(cur: psycopg.Cursor[Any], pages: list[Page]) -> None:
    cur.executemany("INSERT INTO pages (label, token, app_id, member_id)"
                    " VALUES (%s, %s, %s, %s)",
                    [(p.label, p.token, p.app.id, p.member.id) for p in pages])


def _insert_homes(cur: psycopg.Cursor[Any], homes: list[HomePage]) -> None:
    cur.executemany("INSERT INTO homes (label, token, chat_id, member_id)"
                    " VALUES (%s, %s, %s, %s)",
                    [(h.label, h.token, h.chat_id, h.member.id) for h in homes])


def _delete_apps(cur: psycopg.Cursor[Any], where: str, parameters: tuple[str, ...]) -> None:
    selected = f"SELECT id FROM apps WHERE {where}"
    cur.execute(f"DELETE FROM pages WHERE app_id IN ({selected})", parameters)
    cur.execute(f"DELETE FROM updates WHERE app_id IN ({selected})", parameters)
    cur.execute(f"DELETE FROM apps WHERE {where}", parameters)
    cur.execute("DELETE FROM containers WHERE digest NOT IN"
                " (SELECT container FROM apps WHERE container IS NOT NULL)")


def _reason(exc: BaseException) -> str:
    """psycopg's message, first line only."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

