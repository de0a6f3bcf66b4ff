"""The PostgreSQL schema of webxdc-rt, as numbered migrations.

A database records the highest migration applied in `schema_version`; a host applies the
ones above it in order, each in its own transaction, under an advisory lock so that
processes starting together apply each once. Migrations are only ever appended.

Text that members choose (display names, an update's `info` and `summary`, chat messages)
is kept as UTF-8 in `bytea`: PostgreSQL's `text` cannot hold U+0000, which is valid text a
member may send. JSON the host wrote itself (payloads, `notify`, member lists) escapes
control characters and is kept as `text`.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["MIGRATIONS", "CHATS_CHANNEL", "MIGRATION_LOCK", "updates_channel"]

UPDATES_CHANNEL_PREFIX: Final = "webxdc_rt_updates_"
"""The start of the NOTIFY channel of each app copy (see `updates_channel`)."""


def updates_channel(app_id: str) -> str:
    """The NOTIFY channel on which the status updates of one app copy are announced as
    `<app copy id> <serial>` (from migration 3 on): the prefix and the first 40 hex digits
    of the SHA-256 of the id, 58 bytes, within PostgreSQL's 63-byte identifiers whatever
    the id holds; the trigger `announce_update` computes the same name."""
    return UPDATES_CHANNEL_PREFIX + hashlib.sha256(app_id.encode()).hexdigest()[:40]


CHATS_CHANNEL: Final = "webxdc_rt_chats"
"""The NOTIFY channel on which every change to a chat (its name, members, app copies, pages,
home pages or their tokens) is announced as the chat's id, by the transaction that makes
it: the announcement says only which chat changed, the rows say how."""

MIGRATION_LOCK: Final = 0x77786463_0001
"""The advisory lock held while migrations are applied and while `serve` shares an app
(so that processes starting together make one chat, not several)."""

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: chats, app copies, pages, status updates, chat messages.
    """
    CREATE TABLE meta (key text PRIMARY KEY, value bytea NOT NULL);
    CREATE TABLE chats (id text PRIMARY KEY, name bytea NOT NULL, members text NOT NULL);
    CREATE TABLE containers (digest text PRIMARY KEY, data bytea NOT NULL);
    CREATE TABLE apps (
        id text PRIMARY KEY, chat_id text NOT NULL REFERENCES chats(id),
        name bytea NOT NULL, key text NOT NULL, sender text NOT NULL,
        container text REFERENCES containers(digest),
        added bigserial NOT NULL);
    CREATE TABLE homes (
        label text PRIMARY KEY, token text NOT NULL, chat_id text NOT NULL REFERENCES chats(id),
        member_id text NOT NULL);
    CREATE TABLE pages (
        label text PRIMARY KEY, token text NOT NULL, app_id text NOT NULL REFERENCES apps(id),
        member_id text NOT NULL, added bigserial NOT NULL);
    CREATE TABLE updates (
        serial bigserial PRIMARY KEY, app_id text NOT NULL, member_id text NOT NULL,
        payload text NOT NULL, info bytea, href bytea, document bytea, summary bytea,
        notify text, notify_keys text[], created double precision NOT NULL);
    CREATE INDEX updates_by_app ON updates (app_id, serial);
    CREATE INDEX updates_notifying ON updates USING gin (notify_keys)
        WHERE notify_keys IS NOT NULL;
    CREATE TABLE chat_messages (
        id bigserial PRIMARY KEY, chat_id text NOT NULL, app_id text NOT NULL,
        member bytea NOT NULL, text bytea, file_name bytea, file_data bytea,
        created double precision NOT NULL);
    CREATE INDEX chat_messages_by_chat ON chat_messages (chat_id, id);
    CREATE INDEX chat_messages_by_sender ON chat_messages (app_id, member);
    CREATE FUNCTION announce_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('webxdc_rt_updates', NEW.app_id || ' ' || NEW.serial);
        RETURN NULL;
    END $$;
    CREATE TRIGGER updates_announced AFTER INSERT ON updates
        FOR EACH ROW EXECUTE FUNCTION announce_update();
    """,
    # 2: the name a member gives an update (`update-send`'s `id`; NULL for every update
    # stored before), unique per app copy and member, so that a resend is stored once.
    """
    ALTER TABLE updates ADD COLUMN update_id text;
    CREATE UNIQUE INDEX updates_by_id ON updates (app_id, member_id, update_id)
        WHERE update_id IS NOT NULL;
    """,
    # 3: each app copy's updates announced on a channel of its own (`updates_channel`), so
    # that only the processes listening to that copy are woken, instead of every process
    # on one channel; and once per transaction and app copy, not once per row. The trigger
    # is deferred to the commit, where the transaction still holds the copy's lock: the
    # copy's highest serial is then this transaction's last, every row of the copy gives
    # the same payload, and PostgreSQL sends a transaction's identical notifications once.
    # (`ORDER BY ... LIMIT 1`, not max(): on a table without statistics yet, max() was
    # planned as a scan of every row of the copy.)
    f"""
    CREATE OR REPLACE FUNCTION announce_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{UPDATES_CHANNEL_PREFIX}'
                          || left(encode(sha256(convert_to(NEW.app_id, 'UTF8')), 'hex'), 40),
                          NEW.app_id || ' ' || (SELECT serial FROM updates
                                                WHERE app_id = NEW.app_id
                                                ORDER BY serial DESC LIMIT 1));
        RETURN NULL;
    END $$;
    DROP TRIGGER updates_announced ON updates;
    CREATE CONSTRAINT TRIGGER updates_announced AFTER INSERT ON updates
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION announce_update();
    """,
)
"""Migration `n` is `MIGRATIONS[n - 1]`."""
