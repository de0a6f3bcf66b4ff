"""Tests of the PostgreSQL store against a real PostgreSQL: schema set up on a fresh
database, state shared by two connections (as by two host processes), serials assigned by the
database, text PostgreSQL's `text` could not hold, and an outage that is reported and healed."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import psycopg
import pytest
from hosting import names_are_kept_as_checked
from peers import eventually, stored_updates

from webxdc_rt.core.updates import Update
from webxdc_rt.stores.api import StoreError, StoreLimits, StoreUnavailable
from webxdc_rt.stores.migrations import MIGRATIONS
from webxdc_rt.stores.postgres import PostgresStore

FAST = StoreLimits(connect_timeout_s=2, reconnect_max_s=0.2)


def test_a_fresh_database_is_set_up_once_and_shared(postgres_server):
    first = PostgresStore(postgres_server.url)
    second = PostgresStore(postgres_server.url)  # migrations already applied: nothing to do
    assert first.schema_version == second.schema_version == len(MIGRATIONS)
    pages = first.share(first.load_registry(), "chat", ["alice", "bob"], "Poll", "/poll.xdc")
    registry = second.load_registry()
    again = second.share(registry, "chat", ["alice", "bob"], "Poll", "/poll.xdc")
    assert [(p.label, p.token, p.self_addr) for p in again] == \
        [(p.label, p.token, p.self_addr) for p in pages]
    assert registry.page(pages[0].label) is not None
    first.close()
    second.close()


def test_processes_sharing_at_once_agree_on_one_chat(postgres_server):
    stores = [PostgresStore(postgres_server.url) for _ in range(4)]
    results: list[list[str]] = []

    def share(store: PostgresStore) -> None:
        pages = store.share(store.load_registry(), "c", ["a", "b"], "App", "/app")
        results.append([page.token for page in pages])

    threads = [threading.Thread(target=share, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(tokens == results[0] for tokens in results)
    for store in stores:
        store.close()


async def test_updates_messages_and_notifications_round_trip(postgres_server):
    store = PostgresStore(postgres_server.url)
    other = PostgresStore(postgres_server.url)
    pages = store.share(store.load_registry(), "chat", ["alice", "bob"], "Poll", "/poll.xdc")
    app_id, chat_id = pages[0].app.id, pages[0].app.chat_id
    bob_addr = pages[1].self_addr
    # U+0000 is valid text a member may send; PostgreSQL's text type cannot hold it.
    first = store.append_update(app_id, "m1", Update('{"a":"\\u0000"}', info="i\0nfo",
                                                      summary="s", notify={bob_addr: "hey"}))
    second = other.append_update(app_id, "m2", Update("2", document="d\0c"))
    assert first < second
    got = await stored_updates(other, app_id)
    assert [u.serial for u in got] == [first, second]
    assert got[0].update == Update('{"a":"\\u0000"}', info="i\0nfo", summary="s",
                                   notify={bob_addr: "hey"})
    assert got[1].update.document == "d\0c"
    assert store.max_serial(app_id) == other.max_serial(app_id) == second
    assert await other.read_max_serial(app_id) == second
    chunk = await store.read_updates(app_id, 0, 1)  # always at least one
    assert ([u.serial for u in chunk.updates], chunk.newest) == ([first], second)
    chunk = await store.read_updates(app_id, 0, 10**6)
    assert [u.update for u in chunk.updates] == [u.update for u in got]
    chunk = await store.read_updates(app_id, second, 10**6)
    assert (chunk.updates, chunk.newest) == ([], second)
    notes = await other.read_notifications("m2", {app_id: bob_addr}, 10)
    assert [(n.serial, n.text) for n in notes] == [(first, "hey")]
    assert await other.read_notifications("m1", {app_id: bob_addr}, 10) == []  # own updates

    message_id = store.add_chat_message(chat_id, app_id, "alice", "hi\0", "f.txt", b"data")
    messages, more = await other.read_chat_messages(chat_id)
    assert not more and [(m.id, m.text, m.file_data) for m in messages] == \
        [(message_id, "hi\0", b"data")]
    assert await other.read_chat_bytes(app_id, "alice") == len("hi\0") + 4
    assert await other.read_message_file(chat_id, message_id) == ("f.txt", b"data")
    assert await other.read_message_file(chat_id, message_id + 1) is None
    summaries = await other.read_message_summaries(chat_id, 10, 1000)
    assert [(s.text, s.file_name, s.file_size) for s in summaries] == [("hi\0", "f.txt", 4)]
    other.remove_app(app_id)
    assert await stored_updates(store, app_id) == []
    store.close()
    other.close()


async def test_a_group_of_updates_and_messages_commits_in_the_order_asked(postgres_server):
    store = PostgresStore(postgres_server.url)
    pages = store.share(store.load_registry(), "chat", ["alice", "bob"], "Poll", "/poll.xdc")
    app_id, chat_id = pages[0].app.id, pages[0].app.chat_id
    bob_addr = pages[1].self_addr
    told: list[int] = []
    sent = [Update(str(n), info="i\0" if n == 2 else None,
                   notify={bob_addr: f"hey {n}", "k\0": "x"} if n % 2 else None)
            for n in range(6)]
    ids = await asyncio.gather(
        *(store.commit_update(app_id, "m1", update, told.append) for update in sent[:3]),
        store.commit_chat_message(chat_id, app_id, "alice", "hi", None, None),
        *(store.commit_update(app_id, "m1", update, told.append) for update in sent[3:]))
    serials = [*ids[:3], *ids[4:]]
    assert serials == sorted(serials) == told  # serials rise in the order asked
    assert store.commits.groups <= 2  # the first alone, the rest waited for it together
    assert [u.update for u in await stored_updates(store, app_id)] == sent
    notes = await store.read_notifications("m2", {app_id: bob_addr}, 10)
    assert [(n.serial, n.text) for n in notes] == [(serials[n], f"hey {n}") for n in (1, 3, 5)]
    assert [m.id for m in (await store.read_chat_messages(chat_id))[0]] == [ids[3]]
    store.close()


def test_concurrent_appends_commit_in_serial_order(postgres_server):
    # Each reader that sees serial n has seen every serial below n of that app copy: what
    # lets processes send updates as they read them back, none skipped.
    stores = [PostgresStore(postgres_server.url) for _ in range(3)]
    app_id = "app-x"
    done = threading.Event()
    gaps: list[tuple[int, list[int]]] = []

    def write(store: PostgresStore) -> None:
        for _ in range(200):
            store.append_update(app_id, "m", Update("1"))

    def read() -> None:
        asyncio.run(read_back())

    async def read_back() -> None:
        reader = PostgresStore(postgres_server.url)
        seen: list[int] = []
        while not done.is_set() or len(seen) < 600:
            chunk = await reader.read_updates(app_id, seen[-1] if seen else 0, 1 << 20)
            seen.extend(row.serial for row in chunk.updates)
        everything = [u.serial for u in await stored_updates(reader, app_id)]
        if seen != everything:
            gaps.append((len(seen), everything))
        reader.close()

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(store,)) for store in stores]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert gaps == []
    for store in stores:
        store.close()


async def test_announcements_reach_the_followers_watching_the_app_copy(postgres_server):
    store = PostgresStore(postgres_server.url)
    assert store.shared  # the host must follow it
    seen: list[tuple[str, int]] = []
    resyncs: list[bool] = []
    task = asyncio.create_task(store.follow(lambda a, s: seen.append((a, s)),
                                            lambda: resyncs.append(True)))
    await eventually(lambda: resyncs)
    await store.watch("app-y")
    other = PostgresStore(postgres_server.url)
    other.append_update("app-z", "m", Update("0"))  # not watched: not announced here
    serial = other.append_update("app-y", "m", Update("1"))
    # Announcements arrive in commit order: app-z's would have come first.
    await eventually(lambda: seen == [("app-y", serial)])
    task.cancel()
    store.close()
    other.close()


async def test_an_outage_is_a_clear_error_and_heals_by_itself(postgres_server, caplog):
    store = PostgresStore(postgres_server.url, FAST)
    kept = store.append_update("app", "m", Update("1"))
    postgres_server.stop()
    with pytest.raises(StoreError, match="PostgreSQL") as refused:
        store.append_update("app", "m", Update("2"))
    assert refused.value.code == "unavailable"
    with pytest.raises(StoreUnavailable, match="unreachable"):  # at once while it is down
        store.append_update("app", "m", Update("3"))
    postgres_server.start()

    def works() -> bool:
        try:
            return store.append_update("app", "m", Update("4")) > kept
        except StoreError:
            return False

    await eventually(works, timeout=30)
    assert [u.update.payload_json for u in await stored_updates(store, "app")][0] == "1"
    said = [record.getMessage() for record in caplog.records]
    assert sum("PostgreSQL unreachable" in line for line in said) == 1
    assert any("reachable again" in line for line in said)
    store.close()


def test_an_unreachable_server_is_refused_with_a_clear_error(postgres_server):
    url = postgres_server.url
    postgres_server.stop()
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as refused:
        PostgresStore(url, FAST)
    assert refused.value.code == "unavailable"


def test_a_newer_schema_is_refused(postgres_server):
    PostgresStore(postgres_server.url).close()
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s)", (len(MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="newer") as refused:
        PostgresStore(postgres_server.url)
    assert refused.value.code == "too-new"


async def test_a_database_of_the_first_migration_keeps_its_updates_and_takes_ids(
        postgres_server):
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version integer)")
        with conn.transaction():
            conn.execute(MIGRATIONS[0])
            conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute("INSERT INTO updates (app_id, member_id, payload, created)"
                     " VALUES ('app', 'm', '1', 0)")
    store = PostgresStore(postgres_server.url, FAST)
    assert store.schema_version == len(MIGRATIONS)
    named = await store.commit_update("app", "m", Update("2"), lambda serial: None, "n1")
    assert await store.commit_update("app", "m", Update("2"), lambda serial: None,
                                     "n1") == named
    assert [(u.serial, u.update.payload_json) for u in await stored_updates(store, "app")] == [
        (1, "1"), (named, "2")]
    store.close()
    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute("SELECT serial, update_id FROM updates ORDER BY serial"
                            ).fetchall() == [(1, None), (named, "n1")]


def test_app_usage_counts_stored_containers_for_every_process(postgres_server):
    store = PostgresStore(postgres_server.url)
    other = PostgresStore(postgres_server.url)
    registry = store.load_registry()
    chat = registry.create_chat("quota", ["alice", "bob"])
    store.save_chat(chat)
    alice, bob = chat.members
    for index, (sender, data) in enumerate([(alice, b"x" * 100), (alice, b"y" * 30),
                                            (bob, b"x" * 100)]):
        app = registry.new_app(chat, f"app{index}", f"sha256:{index}", sender.id)
        digest = hashlib.sha256(data).hexdigest()
        store.save_shared_app(app, registry.new_pages(app, chat.members), (digest, data))
    store.share(registry, "quota", ["alice", "bob"], "by path", "/a/path")  # not counted
    usage = other.app_usage(chat.id, alice.id)
    assert (usage.member_apps, usage.member_bytes) == (2, 130)
    assert (usage.chat_apps, usage.chat_bytes) == (3, 230)
    assert (usage.host_apps, usage.host_bytes) >= (3, 230)
    assert other.app_usage("another chat", alice.id).member_apps == 0
    store.close()
    other.close()


async def test_names_are_kept_as_checked(postgres_server):
    await names_are_kept_as_checked(lambda: PostgresStore(postgres_server.url))
