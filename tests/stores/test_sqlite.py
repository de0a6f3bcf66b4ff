"""Tests of the SQLite store: what survives a reopen."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from peers import eventually, stored_updates

from webxdc_rt.client import connect
from webxdc_rt.core import wire
from webxdc_rt.core.updates import Update, delivered_json
from webxdc_rt.stores.api import StoreError
from webxdc_rt.stores.sqlite import DB_FILE_NAME, SqliteStore


async def test_chats_apps_pages_and_updates_survive_a_reopen(tmp_path):
    store = SqliteStore.in_directory(tmp_path)
    registry = store.load_registry()
    pages = store.share(registry, "chat", ["alice", "bob"], "Poll", "/apps/poll.xdc")
    app_id = pages[0].app.id
    first = store.append_update(app_id, "m1", Update('"a"', info="i"))
    second = store.append_update(app_id, "m2", Update('{"b":1}', notify={"*": "n"}))
    assert first < second
    store.add_chat_message(pages[0].app.chat_id, app_id, "alice", "hi", "f.txt", b"data")
    store.close()

    reopened = SqliteStore.in_directory(tmp_path)
    registry = reopened.load_registry()
    again = reopened.share(registry, "chat", ["alice", "bob"], "Poll", "/apps/poll.xdc")
    assert [(p.label, p.token, p.self_addr) for p in again] == \
        [(p.label, p.token, p.self_addr) for p in pages]
    assert [u.serial for u in await stored_updates(reopened, app_id)] == [first, second]
    assert (await stored_updates(reopened, app_id, first))[0].update.notify == {"*": "n"}
    assert reopened.max_serial(app_id) == second
    message = (await reopened.read_chat_messages(pages[0].app.chat_id))[0][0]
    assert (message.member, message.text, message.file_data) == ("alice", "hi", b"data")
    # Another member list is another chat; another app key another copy.
    other_chat = reopened.share(registry, "chat", ["alice"], "Poll", "/apps/poll.xdc")
    other_copy = reopened.share(registry, "chat", ["alice", "bob"], "Poll", "/apps/v2.xdc")
    assert len({other_chat[0].app.id, other_copy[0].app.id, app_id}) == 3
    reopened.close()


async def test_serials_are_per_host_increasing_with_gaps_per_app():
    store = SqliteStore()
    serials = [store.append_update(app, "m", Update("1")) for app in ("a", "b", "a")]
    assert serials == [1, 2, 3]
    assert [u.serial for u in await stored_updates(store, "a")] == [1, 3]
    assert store.max_serial("b") == 2 and store.max_serial("none") == 0


def test_commits_are_durable_unless_asked_otherwise(tmp_path):
    # FULL in WAL mode: the log is on disk when a commit returns, so an update the host has
    # delivered survives a power loss, not only a crash of the process.
    durable = SqliteStore.in_directory(tmp_path / "a")
    assert durable.synchronous == "FULL"
    durable.close()
    faster = SqliteStore.in_directory(tmp_path / "b", synchronous="NORMAL")
    assert faster.synchronous == "NORMAL"
    faster.close()
    with pytest.raises(ValueError, match="FULL or NORMAL"):
        SqliteStore(tmp_path / "c", synchronous="OFF")


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / DB_FILE_NAME).write_bytes(b"not SQLite" * 100)
    with pytest.raises(StoreError, match="not a database") as refused:
        SqliteStore.in_directory(tmp_path)
    assert refused.value.code == "damaged"


async def test_what_sqlite_refuses_is_a_store_error_with_its_kind(tmp_path):
    store = SqliteStore.in_directory(tmp_path)
    pages = store.share(store.load_registry(), "chat", ["alice"], "app", "key")
    store._db.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="readonly") as refused:
        store.append_update(pages[0].app.id, pages[0].member.id, Update("1"))
    assert refused.value.code == "read-only"
    with pytest.raises(StoreError) as refused:
        store.remove_app(pages[0].app.id)  # rolled back, the same error
    assert refused.value.code == "read-only"
    store._db.execute("PRAGMA query_only = OFF")
    assert await stored_updates(store, pages[0].app.id) == []
    store.close()
    with pytest.raises(StoreError, match="closed") as refused:
        store.load_registry()
    assert refused.value.code == "failed"


async def test_an_embedded_store_needs_no_following():
    store = SqliteStore()
    assert store.shared is False
    await store.follow(lambda app_id, serial: None, lambda: None)  # returns at once
    store.close()


# -- rows written by older versions: repaired as they are read, never poisoning replay ----


# What older versions stored: payloads went through json.dumps with allow_nan left on, and
# notify and member lists through json.dumps with ensure_ascii, which escapes a lone
# surrogate (sqlite3 itself cannot store one: it refuses to encode it). Bytes that are not
# UTF-8 can only come from another program or a damaged disk.
LEGACY_ROWS = [
    # (payload, info, notify) as SQL literals or bound values
    (json.dumps(float("nan")), None, None),
    (json.dumps({"a": [1, float("nan"), float("inf"), -float("inf")]}), None, None),
    ('"cut \\ud83d"', None, None),
    ('{"\\udc00": ["\\ud800"]}', None, None),
    ('{"a": [1, Infinity]', None, None),  # cut short too: not JSON at all
    ('"fine"', None, json.dumps({"*": "cut \ud83d", "\ud800": "key", "bob": "ok"})),
    ('"fine"', None, '{"*": NaN, "bob": "ok"}'),
    ('"fine"', None, "[not json"),
    ('"BANANA, NaN in a string"', None, None),  # looks suspect, is fine
]
REPAIRED_PAYLOADS = [None, {"a": [1, None, None, None]}, "cut \ufffd", {"\ufffd": ["\ufffd"]},
                     None, "fine", "fine", "fine", "BANANA, NaN in a string"]


def write_legacy_rows(path, app_id: str) -> None:
    db = sqlite3.connect(path)
    for payload, info, notify in LEGACY_ROWS:
        db.execute("INSERT INTO updates (app_id, member_id, payload, info, notify, created)"
                   " VALUES (?, 'm1', ?, ?, ?, 0)", (app_id, payload, info, notify))
    # Text columns holding bytes that are not UTF-8 (a CESU-8 surrogate, a stray byte).
    db.execute("INSERT INTO updates (app_id, member_id, payload, info, summary, created)"
               " VALUES (?, 'm1', CAST(x'22eda08022' AS TEXT), CAST(x'61ff' AS TEXT),"
               " CAST(x'eda080' AS TEXT), 0)", (app_id,))
    db.execute("INSERT INTO chat_messages (chat_id, app_id, member, text, file_name, created)"
               " SELECT chat_id, id, 'alice', CAST(x'68eda080' AS TEXT), CAST(x'ff2e747874' AS"
               " TEXT), 0 FROM apps WHERE id = ?", (app_id,))
    db.commit()
    db.close()


def legacy_store(tmp_path):
    store = SqliteStore.in_directory(tmp_path)
    pages = store.share(store.load_registry(), "chat", ["alice", "bob"], "Poll", "/p.xdc")
    store.append_update(pages[0].app.id, "m1", Update('"first"'))
    store.close()
    write_legacy_rows(tmp_path / "webxdc-rt.sqlite3", pages[0].app.id)
    return pages


async def test_legacy_rows_are_repaired_as_they_are_read(tmp_path, caplog):
    pages = legacy_store(tmp_path)
    app_id = pages[0].app.id
    store = SqliteStore.in_directory(tmp_path)
    with caplog.at_level(logging.WARNING, logger="webxdc_rt.stores.sqlite"):
        for _ in range(2):  # the second read repairs again, from its memory of bad rows
            stored = await stored_updates(store, app_id)
            assert len(stored) == 1 + len(LEGACY_ROWS) + 1
            delivered = []
            for row in stored:
                frame = wire.encode_update(1, delivered_json(row.update, row.serial, 99))
                frame.encode()
                message = wire.decode_host_message(frame)
                assert isinstance(message, wire.Update)
                delivered.append(message.update)
            assert [u["payload"] for u in delivered[:-1]] == ["first", *REPAIRED_PAYLOADS]
            assert delivered[6]["notify"] == {"*": "cut \ufffd", "\ufffd": "key", "bob": "ok"}
            assert delivered[7]["notify"] == {"bob": "ok"}
            assert "notify" not in delivered[8]
            last = delivered[-1]
            assert (last["payload"], last["info"], last["summary"]) == (
                "\ufffd" * 3, "a\ufffd", "\ufffd" * 3)
    assert len([r for r in caplog.records if r.name.startswith("webxdc_rt.stores.sqlite")]) == 1
    message = (await store.read_chat_messages(pages[0].app.chat_id))[0][0]
    assert (message.text, message.file_name) == ("h\ufffd\ufffd\ufffd", "\ufffd.txt")
    store.close()


def test_member_names_stored_with_lone_surrogates_are_repaired(tmp_path):
    store = SqliteStore.in_directory(tmp_path)
    registry = store.load_registry()
    # A name from a command line that was not UTF-8 (Python decodes it with surrogates).
    chat = registry.create_chat("chat", ["al\udcffice", "bob"])
    store.save_chat(chat)
    store.close()
    reopened = SqliteStore.in_directory(tmp_path)
    [chat] = reopened.load_registry().chats.values()
    assert [m.name for m in chat.members] == ["al\ufffdice", "bob"]
    reopened.close()


async def test_replay_of_legacy_rows_reaches_every_listener_and_live_updates_go_on(
        tmp_path, hosts):
    pages = legacy_store(tmp_path)
    live = await hosts(store=SqliteStore.in_directory(tmp_path))
    alice, bob = [await connect(live.url(page)) for page in live.registry.pages_of(
        live.registry.apps[pages[0].app.id])]
    seen: dict[str, list[dict]] = {"alice": [], "bob": []}
    await alice.set_update_listener(seen["alice"].append)
    await bob.set_update_listener(seen["bob"].append)
    for got in seen.values():  # the whole backlog, repaired: nothing dropped or refused
        assert len(got) == 1 + len(LEGACY_ROWS) + 1
        assert [u["payload"] for u in got][:-1] == ["first", *REPAIRED_PAYLOADS]
    alice.send_update({"payload": "live"})
    for got in seen.values():
        await eventually(lambda got=got: got[-1]["payload"] == "live")
    messages = await bob.chat_messages()
    assert messages[0]["text"] == "h\ufffd\ufffd\ufffd"
    assert not alice.errors and not bob.errors and not alice.closed and not bob.closed
    await alice.close()
    await bob.close()


async def test_a_payload_damaged_into_text_that_is_not_json_costs_only_that_update(
        tmp_path, hosts):
    store = SqliteStore.in_directory(tmp_path)
    pages = store.share(store.load_registry(), "chat", ["alice"], "Poll", "/p.xdc")
    for payload in ('"before"', '{"cut": [1, 2', '"after"'):
        store.append_update(pages[0].app.id, "m1", Update(payload))
    store.close()
    live = await hosts(store=SqliteStore.in_directory(tmp_path))
    peer = await connect(live.url(live.registry.pages_of(live.registry.apps[pages[0].app.id])[0]))
    seen: list[dict] = []
    await peer.set_update_listener(seen.append)
    assert [u["payload"] for u in seen] == ["before", "after"]
    peer.send_update({"payload": "live"})
    await eventually(lambda: seen[-1]["payload"] == "live")
    await peer.close()


async def test_a_database_of_the_previous_schema_keeps_its_updates_and_takes_ids(tmp_path):
    path = tmp_path / DB_FILE_NAME
    old = sqlite3.connect(path)
    # The `updates` table as schema version 1 made it, with a row in it.
    old.executescript("""
        CREATE TABLE updates (
            serial INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL,
            member_id TEXT NOT NULL, payload TEXT NOT NULL, info TEXT, href TEXT,
            document TEXT, summary TEXT, notify TEXT, created REAL NOT NULL);
        INSERT INTO updates (app_id, member_id, payload, created) VALUES ('app', 'm', '1', 0);
        PRAGMA user_version=1;
    """)
    old.close()
    store = SqliteStore.in_directory(tmp_path)
    told: list[int] = []
    named = await store.commit_update("app", "m", Update("2"), told.append, "n1")
    assert await store.commit_update("app", "m", Update("2"), told.append, "n1") == named
    assert [(u.serial, u.update.payload_json) for u in await stored_updates(store, "app")] == [
        (1, "1"), (named, "2")]
    assert told == [named]
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT serial, update_id FROM updates").fetchall() == [
            (1, None), (named, "n1")]
