"""The announcements of stored updates with a PostgreSQL store shared by several processes:
a process hears of (and reads back) only the updates of app copies it has listeners of,
from the moment it starts listening to one, with no update lost between a listener's
backlog and its live updates."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import psycopg
from peers import eventually
from ports import free_port
from serving import ServeProcess, listening, on_port, serving

from webxdc_rt.client import Peer
from webxdc_rt.core.updates import Update
from webxdc_rt.stores.postgres import PostgresStore


@asynccontextmanager
async def following(url: str) -> AsyncIterator[tuple[PostgresStore, list[tuple[str, int]]]]:
    """A store following its announcements (connected), and what it heard."""
    store = PostgresStore(url)
    heard: list[tuple[str, int]] = []
    resyncs: list[bool] = []
    task = asyncio.create_task(store.follow(lambda a, s: heard.append((a, s)),
                                            lambda: resyncs.append(True)))
    try:
        await eventually(lambda: bool(resyncs))
        yield store, heard
    finally:
        task.cancel()
        store.close()


async def test_an_update_committed_once_watch_returns_is_announced(postgres_server):
    # The start-of-listening race: a listener reads its backlog once `watch` returns, so
    # every update committed after that must be announced. Committed at once, before the
    # announcements' task runs again: only a LISTEN acknowledged before `watch` returned
    # makes PostgreSQL announce it.
    other = PostgresStore(postgres_server.url)
    async with following(postgres_server.url) as (store, heard):
        for n in range(5):
            app_id = f"app-{n}"
            await store.watch(app_id)
            serial = other.append_update(app_id, "m", Update(str(n)))
            await eventually(lambda app_id=app_id, serial=serial: (app_id, serial) in heard)
    other.close()


async def test_watches_are_counted_and_the_last_unwatch_stops_announcements(postgres_server):
    other = PostgresStore(postgres_server.url)
    async with following(postgres_server.url) as (store, heard):
        await store.watch("app-a")
        await store.watch("app-a")
        store.unwatch("app-a")  # one listener of app-a left
        await store.watch("app-b")  # acknowledged after anything asked for before
        first = other.append_update("app-a", "m", Update("1"))
        await eventually(lambda: heard == [("app-a", first)])
        store.unwatch("app-a")  # the last
        await store.watch("app-c")
        other.append_update("app-a", "m", Update("2"))
        marker = other.append_update("app-c", "m", Update("3"))
        # In commit order: app-a's second update would have come before app-c's.
        await eventually(lambda: len(heard) == 2)
        assert heard == [("app-a", first), ("app-c", marker)]
    other.close()


async def test_the_updates_of_one_transaction_are_announced_once(postgres_server):
    # As a group commit writes them: the app copies' locks, then a row each; app-b's rows
    # in between app-a's. One announcement per app copy, with its highest serial.
    async with following(postgres_server.url) as (store, heard):
        await store.watch("app-a")
        await store.watch("app-b")
        serials: dict[str, list[int]] = {"app-a": [], "app-b": []}
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            with conn.transaction():
                for app_id in sorted(serials):
                    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                 (app_id,))
                for app_id in ("app-a", "app-b", "app-a", "app-b", "app-a"):
                    row = conn.execute("INSERT INTO updates (app_id, member_id, payload,"
                                       " created) VALUES (%s, 'm', '1', 0) RETURNING serial",
                                       (app_id,)).fetchone()
                    assert row is not None
                    serials[app_id].append(row[0])
        alone = PostgresStore(postgres_server.url)
        marker = alone.append_update("app-a", "m", Update("2"))
        await eventually(lambda: ("app-a", marker) in heard)
        assert sorted(heard) == [("app-a", serials["app-a"][-1]), ("app-a", marker),
                                 ("app-b", serials["app-b"][-1])]
        alone.close()


async def test_an_app_id_any_text_gets_a_channel_of_its_own(postgres_server):
    # Channel names are derived from the id (hashed): long ids, quotes and spaces are safe.
    other = PostgresStore(postgres_server.url)
    odd = ['x"; UNLISTEN *; --', "é " * 100, "app-plain"]
    async with following(postgres_server.url) as (store, heard):
        for app_id in odd:
            await store.watch(app_id)
        serials = [other.append_update(app_id, "m", Update("1")) for app_id in odd]
        await eventually(lambda: len(heard) == 3)
        assert heard == list(zip(odd, serials, strict=True))
    other.close()


async def test_following_ends_when_cancelled_whatever_it_was_doing(postgres_server):
    # A host stops by cancelling `follow` and waiting for it to end. Cancelled at each step
    # of changing what it listens to (a watch just asked for: the wait for announcements
    # being interrupted, the LISTEN sent, its answer read), it ends, and the watch waiting
    # for the LISTEN's acknowledgement returns.
    store = PostgresStore(postgres_server.url)
    try:
        for steps in range(40):
            await cancel_following(store, f"app-{steps}", steps)
    finally:
        store.close()


async def cancel_following(store: PostgresStore, app_id: str, steps: int) -> None:
    """Follow `store`'s announcements, watch `app_id`, let the event loop turn `steps`
    times, cancel the following: it ends cancelled, and the watch returns."""
    resyncs: list[bool] = []
    following = asyncio.create_task(store.follow(lambda a, s: None,
                                                 lambda: resyncs.append(True)))
    await eventually(lambda: bool(resyncs))
    watching = asyncio.create_task(store.watch(app_id))
    for _ in range(steps):
        await asyncio.sleep(0)
    following.cancel()
    await eventually(lambda: following.done() and watching.done())
    assert following.cancelled()
    await watching


async def metric(port: int, name: str) -> float:
    """The value of one counter on a process's `/metrics`."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    found = re.search(rf"^webxdc_rt_{name}_total (\S+)$", text, re.MULTILINE)
    assert found, text
    return float(found.group(1))


async def test_only_processes_with_listeners_hear_of_and_read_back_updates(
        tmp_path, postgres_server, redis_server):
    ports = [free_port() for _ in range(3)]
    hosts = [ServeProcess(tmp_path, postgres_server.url, redis_server.url,
                          "--metrics", f"127.0.0.1:{port}") for port in ports]
    with serving(tmp_path, postgres_server, redis_server, count=0) as started:
        started.extend(hosts)
        url = hosts[0].urls["alice"]
        alice, _ = await listening(url)
        bob, bob_seen = await listening(on_port(hosts[0].urls["bob"], hosts[1].urls["bob"]))
        sent = 50
        for n in range(sent):
            alice.send_update({"payload": n})
        await eventually(lambda: len(bob_seen) >= sent, timeout=60)
        # Once each, in order, on the other process.
        assert [u["payload"] for u in bob_seen] == list(range(sent))
        serials = [u["serial"] for u in bob_seen]
        assert serials == sorted(set(serials))
        assert await metric(ports[1], "status_updates_read_back") == sent
        assert await metric(ports[1], "status_update_announcements") >= 1
        # The third process has no listeners of the app copy: never woken, nothing read.
        assert await metric(ports[2], "status_update_announcements") == 0
        assert await metric(ports[2], "status_updates_read_back") == 0
        await alice.close()
        await bob.close()


async def test_a_listener_starting_while_updates_stream_misses_none(
        tmp_path, postgres_server, redis_server):
    # Process 1 starts listening to the app copy (its first listener) while process 0
    # stores updates continuously: the new listener's backlog and live updates together
    # are every update once, in order.
    with serving(tmp_path, postgres_server, redis_server, count=2) as hosts:
        alice, alice_seen = await listening(hosts[0].urls["alice"])
        stop = asyncio.Event()

        async def stream() -> None:
            n = 0
            while not stop.is_set():
                alice.send_update({"payload": n})
                n += 1
                await eventually(lambda n=n: len(alice_seen) >= n, timeout=30)

        sender = asyncio.create_task(stream())
        await eventually(lambda: len(alice_seen) >= 5, timeout=30)
        late: list[tuple[Peer, list[dict[str, Any]]]] = []
        for member in ("bob", "carol"):
            late.append(await listening(on_port(hosts[0].urls[member],
                                                hosts[1].urls[member])))
            await eventually(lambda: len(alice_seen) >= 5 + 10 * len(late), timeout=30)
        stop.set()
        await sender
        for _, seen in late:
            await eventually(lambda seen=seen: len(seen) >= len(alice_seen), timeout=30)
            assert [u["serial"] for u in seen] == [u["serial"] for u in alice_seen]
        for peer, _ in late:
            await peer.close()
        await alice.close()
