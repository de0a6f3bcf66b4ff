"""Tests of the SQLite store: what survives a reopen."""

from __future__ import annotations

import sqlite3

import pytest

from webxdc_rt.store import DB_FILE_NAME, Store
from webxdc_rt.updates import Update


def test_chats_apps_pages_and_updates_survive_a_reopen(tmp_path):
    store = Store.in_directory(tmp_path)
    registry = store.load_registry()
    pages = store.share(registry, "chat", ["alice", "bob"], "Poll", "/apps/poll.xdc")
    app_id = pages[0].app.id
    first = store.append_update(app_id, "m1", Update('"a"', info="i"))
    second = store.append_update(app_id, "m2", Update('{"b":1}', notify={"*": "n"}))
    assert first < second
    store.add_chat_message(pages[0].app.chat_id, app_id, "alice", "hi", "f.txt", b"data")
    store.close()

    reopened = Store.in_directory(tmp_path)
    registry = reopened.load_registry()
    again = reopened.share(registry, "chat", ["alice", "bob"], "Poll", "/apps/poll.xdc")
    assert [(p.label, p.token, p.self_addr) for p in again] == \
        [(p.label, p.token, p.self_addr) for p in pages]
    assert [u.serial for u in reopened.updates_after(app_id, 0, 10)] == [first, second]
    assert reopened.updates_after(app_id, first, 10)[0].update.notify == {"*": "n"}
    assert reopened.max_serial(app_id) == second
    message = reopened.chat_messages(pages[0].app.chat_id)[0][0]
    assert (message.member, message.text, message.file_data) == ("alice", "hi", b"data")
    # Another member list is another chat; another app key another copy.
    other_chat = reopened.share(registry, "chat", ["alice"], "Poll", "/apps/poll.xdc")
    other_copy = reopened.share(registry, "chat", ["alice", "bob"], "Poll", "/apps/v2.xdc")
    assert len({other_chat[0].app.id, other_copy[0].app.id, app_id}) == 3
    reopened.close()


def test_serials_are_per_host_increasing_with_gaps_per_app():
    store = Store()
    serials = [store.append_update(app, "m", Update("1")) for app in ("a", "b", "a")]
    assert serials == [1, 2, 3]
    assert [u.serial for u in store.updates_after("a", 0, 10)] == [1, 3]
    assert store.max_serial("b") == 2 and store.max_serial("none") == 0


def test_commits_are_durable_unless_asked_otherwise(tmp_path):
    # FULL in WAL mode: the log is on disk when a commit returns, so an update the host has
    # delivered survives a power loss, not only a crash of the process.
    durable = Store.in_directory(tmp_path / "a")
    assert durable.synchronous == "FULL"
    durable.close()
    faster = Store.in_directory(tmp_path / "b", synchronous="NORMAL")
    assert faster.synchronous == "NORMAL"
    faster.close()
    with pytest.raises(ValueError, match="FULL or NORMAL"):
        Store(tmp_path / "c", synchronous="OFF")


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / DB_FILE_NAME).write_bytes(b"not SQLite" * 100)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        Store.in_directory(tmp_path)
