"""A page's status updates committed in a window: it sends many without waiting for each
commit, and still every listener hears of each once, in serial order, only after its commit;
a commit that fails is told to its sender in its place, and what came after is kept in order.
Over real sockets, with SQLite and with a PostgreSQL of the test's own."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from peers import eventually, next_control, raw_socket, stored_updates

from webxdc_rt.client import connect
from webxdc_rt.core.limits import UpdateLimits
from webxdc_rt.host.app import HostSettings
from webxdc_rt.stores.postgres import PostgresStore
from webxdc_rt.stores.sqlite import SqliteStore

FAST_UPDATES = HostSettings(updates=UpdateLimits(interval_ms=1, burst=10_000),
                            control_per_s=10_000.0, control_burst=10_000)


@dataclass
class StoreUnderTest:
    """A store for the host, and another program's hands on the same database: hold the
    write lock of an app copy, and refuse updates whose payload is `"fail"`."""

    store: Any
    hold: Callable[[str], None]
    release: Callable[[str], None]
    refuse_fail: Callable[[], None]


def sqlite_under_test(tmp_path: Any) -> tuple[StoreUnderTest, Callable[[], None]]:
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path)
    other = sqlite3.connect(path, isolation_level=None)
    return StoreUnderTest(
        store,
        hold=lambda app_id: other.execute("BEGIN IMMEDIATE"),
        release=lambda app_id: other.execute("ROLLBACK"),
        refuse_fail=lambda: other.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON updates WHEN NEW.payload = '\"fail\"'"
            " BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")), other.close


def postgres_under_test(url: str) -> tuple[StoreUnderTest, Callable[[], None]]:
    store = PostgresStore(url)
    other = psycopg.connect(url, autocommit=True)
    lock = "SELECT pg_advisory_{}(hashtextextended(%s, 0))"  # the key the store's groups take
    return StoreUnderTest(
        store,
        hold=lambda app_id: other.execute(lock.format("lock"), (app_id,)),
        release=lambda app_id: other.execute(lock.format("unlock"), (app_id,)),
        refuse_fail=lambda: other.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.payload = '\"fail\"' THEN RAISE EXCEPTION 'refused by a trigger';"
            " END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER refuse BEFORE INSERT ON updates FOR EACH ROW"
            " EXECUTE FUNCTION refuse()")), other.close


@pytest.fixture(params=["sqlite", "postgresql"])
async def under_test(request, tmp_path) -> AsyncIterator[StoreUnderTest]:
    if request.param == "sqlite":
        made, close = sqlite_under_test(tmp_path)
    else:
        made, close = postgres_under_test(request.getfixturevalue("postgres_server").url)
    yield made
    close()


async def test_a_page_sending_many_updates_gets_each_once_in_order_sharing_commits(
        hosts, under_test):
    live = await hosts(FAST_UPDATES, under_test.store)
    urls = live.share(["sender", "other"])
    sender, other = await connect(urls["sender"]), await connect(urls["other"])
    answers: list[dict] = []
    seen: list[dict] = []
    await sender.set_update_listener(answers.append)
    await other.set_update_listener(seen.append)
    for n in range(300):
        sender.send_update({"payload": n})
    await eventually(lambda: len(answers) == 300 and len(seen) == 300)
    assert [update["payload"] for update in answers] == list(range(300))
    serials = [update["serial"] for update in answers]
    assert serials == sorted(set(serials))  # increasing, each once
    assert [(u["serial"], u["payload"]) for u in seen] == [
        (u["serial"], u["payload"]) for u in answers]
    assert not sender.errors
    commits = under_test.store.commits
    assert commits.groups <= 150  # the page's updates did not wait one commit each
    for peer in (sender, other):
        await peer.close()


async def read_told(ws: Any, updates: int, answers: int) -> list[tuple[str, Any]]:
    """What the host told a raw socket, in order, until it sent `updates` updates (their
    payloads) and `answers` answers to updates (the id stored, or the error's code)."""
    told: list[tuple[str, Any]] = []
    while (sum(kind == "update" for kind, _ in told) < updates
           or sum(kind != "update" for kind, _ in told) < answers):
        message = await next_control(ws)
        if message["type"] == "update":
            told.append(("update", message["update"]["payload"]))
        elif message["type"] == "update-stored":
            told.append(("stored", message["id"]))
        elif message["type"] == "error":
            told.append(("error", message["code"]))
    return told


async def test_a_commit_failing_mid_window_is_told_in_its_place_and_nothing_after_is_lost(
        hosts, under_test):
    live = await hosts(FAST_UPDATES, under_test.store)
    urls = live.share(["sender", "other"])
    app_id = live.last_pages[0].app.id
    other = await connect(urls["other"])
    seen: list[dict] = []
    await other.set_update_listener(seen.append)
    session, ws = await raw_socket(live.port, live.last_pages[0])
    await ws.send_json({"type": "update-listen", "listen": 1, "serial": 0})
    while (await next_control(ws))["type"] != "update-backlog-done":
        pass

    async def send(payload: str) -> None:
        await ws.send_json({"type": "update-send", "update": {"payload": payload},
                            "id": payload})

    commits = under_test.store.commits
    await send("x0")
    await eventually(lambda: len(seen) == 1)
    under_test.refuse_fail()
    under_test.hold(app_id)  # the next commit waits for the lock: a group of its own
    await send("fail")
    await eventually(lambda: commits.committing == 1)
    for n in range(1, 5):
        await send(f"x{n}")
    await eventually(lambda: commits.waiting == 4)  # sent while the failing one was in flight
    under_test.release(app_id)
    told = await read_told(ws, updates=5, answers=6)
    # The answers come in the order the updates were sent, the failure in its place; the
    # listener gets every update kept, once, in serial order.
    assert [entry for entry in told if entry[0] != "update"] == [
        ("stored", "x0"), ("error", "storage-failed"), ("stored", "x1"), ("stored", "x2"),
        ("stored", "x3"), ("stored", "x4")]
    assert [payload for kind, payload in told if kind == "update"] == [
        "x0", "x1", "x2", "x3", "x4"]
    if not under_test.store.shared:
        # Not shared: a listener is sent each update when it is committed, so after the
        # sender was told of the failure before it. A shared store's updates reach the
        # listeners as read back, beside the answers (see `host.feed`).
        assert told.index(("error", "storage-failed")) < told.index(("update", "x1"))
    await eventually(lambda: len(seen) == 5)
    assert [u["payload"] for u in seen] == ["x0", "x1", "x2", "x3", "x4"]
    assert [u["serial"] for u in seen] == sorted({u["serial"] for u in seen})
    assert [s.update.payload_json for s in await stored_updates(under_test.store, app_id)] == [
        '"x0"', '"x1"', '"x2"', '"x3"', '"x4"']
    await ws.close()
    await session.close()
    await other.close()


async def test_named_updates_in_one_group_are_answered_in_the_order_sent_and_kept_once(
        hosts, under_test):
    live = await hosts(FAST_UPDATES, under_test.store)
    live.share(["sender", "other"])
    app_id = live.last_pages[0].app.id
    session, ws = await raw_socket(live.port, live.last_pages[0])
    await ws.send_json({"type": "update-listen", "listen": 1, "serial": 0})
    while (await next_control(ws))["type"] != "update-backlog-done":
        pass

    async def send(payload: str, update_id: str) -> None:
        await ws.send_json({"type": "update-send", "update": {"payload": payload},
                            "id": update_id})

    await send("n0", "i0")
    # With a shared store the listeners are sent an update as read back, which may be
    # after its sender's answer: wait for both.
    seen = set()
    while len(seen) < 2:
        seen.add((await next_control(ws))["type"])
    commits = under_test.store.commits
    under_test.hold(app_id)  # the next commit waits for the lock: what follows is one group
    await send("n1", "i1")
    await eventually(lambda: commits.committing == 1)
    # A new one, one stored before (a resend), the new one again, another new one.
    for payload, update_id in (("n2", "i2"), ("n0", "i0"), ("n2", "i2"), ("n3", "i3")):
        await send(payload, update_id)
    await eventually(lambda: commits.waiting == 4)
    under_test.release(app_id)
    updates: list[tuple[str, int]] = []
    answers: list[tuple[str, int]] = []
    while len(answers) < 5 or len(updates) < 3:
        message = await next_control(ws)
        if message["type"] == "update":
            updates.append((message["update"]["payload"], message["update"]["serial"]))
        elif message["type"] == "update-stored":
            answers.append((message["id"], message["serial"]))
    serial = dict(updates)
    assert [payload for payload, _ in updates] == ["n1", "n2", "n3"]  # each told once
    stored = await stored_updates(under_test.store, app_id)
    assert [s.update.payload_json for s in stored] == ['"n0"', '"n1"', '"n2"', '"n3"']
    assert answers == [("i1", serial["n1"]), ("i2", serial["n2"]), ("i0", stored[0].serial),
                       ("i2", serial["n2"]), ("i3", serial["n3"])]
    await ws.close()
    await session.close()


async def test_listeners_started_while_updates_are_committed_get_each_update_once_in_order(
        hosts, under_test):
    # The backlog is read off the event loop while the sender's updates keep being
    # committed and told: each listener started meanwhile must still get every update,
    # the stored ones and the live ones, once and in order.
    live = await hosts(FAST_UPDATES, under_test.store)
    names = ["sender", *(f"late{n}" for n in range(6))]
    urls = live.share(names)
    sender = await connect(urls["sender"])
    answers: list[dict] = []
    await sender.set_update_listener(answers.append)
    late = [await connect(urls[name]) for name in names[1:]]
    seen: list[list[dict]] = [[] for _ in late]
    total = 600
    for n in range(total):
        sender.send_update({"payload": n})
    for k, (peer, got) in enumerate(zip(late, seen, strict=True)):
        await eventually(lambda k=k: len(answers) >= 60 * k)
        await peer.set_update_listener(got.append)
    await eventually(lambda: len(answers) == total
                     and all(len(got) >= total for got in seen))
    expected = [(u["serial"], u["payload"]) for u in answers]
    assert [u["payload"] for u in answers] == list(range(total))
    for got in seen:
        assert [(u["serial"], u["payload"]) for u in got] == expected
    for peer in (sender, *late):
        await peer.close()
