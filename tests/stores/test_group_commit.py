"""Group commit in both stores, against a real SQLite file and a real PostgreSQL: writes
that arrive while a commit is in flight share the next one; listeners are told in serial
order and only of what is durable; a failed commit refuses every write of its group; the
queue of waiting writes is bounded."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass

import psycopg
import pytest
from peers import eventually, stored_updates

from webxdc_rt.core.updates import Update
from webxdc_rt.stores.api import (
    StoreApi,
    StoreError,
    StoreLimits,
    StoreOverloaded,
    UpdateWrite,
    Write,
)
from webxdc_rt.stores.commits import GroupCommit
from webxdc_rt.stores.postgres import PostgresStore
from webxdc_rt.stores.sqlite import SqliteStore

APP = "app-1"
FAST = StoreLimits(connect_timeout_s=2, reconnect_max_s=0.2)


@dataclass
class Backend:
    """A store to test, how to hold up its commits (another program holds a lock the
    commit needs), and how to make a held-up commit fail (SQLite: the lock outlasts the
    store's wait for it; PostgreSQL: the server is killed) and recover."""

    open: Callable[[StoreLimits], StoreApi]
    hold_commits: Callable[[], AbstractContextManager[None]]
    fail: Callable[[], None] = lambda: None
    recover: Callable[[], None] = lambda: None


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"

        @contextmanager
        def hold_sqlite() -> Iterator[None]:
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # the write lock
            try:
                yield
            finally:
                other.execute("ROLLBACK")
                other.close()

        yield Backend(lambda limits: SqliteStore(path, limits=limits), hold_sqlite)
        return
    server = request.getfixturevalue("postgres_server")

    @contextmanager
    def hold_postgres() -> Iterator[None]:
        other = psycopg.connect(server.url, autocommit=True)
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (APP,))
        try:
            yield
        finally:
            with suppress(psycopg.Error):
                other.close()

    yield Backend(lambda limits: PostgresStore(server.url, limits), hold_postgres,
                  server.stop, server.start)


@pytest.fixture
async def stores(backend) -> AsyncIterator[Callable[..., StoreApi]]:
    """Opens stores of the backend, all closed after."""
    opened: list[StoreApi] = []

    def open_store(limits: StoreLimits = FAST) -> StoreApi:
        opened.append(backend.open(limits))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


async def test_concurrent_updates_share_commits_in_one_serial_order_and_survive(stores):
    store = stores()
    told: list[int] = []
    serials = await asyncio.gather(*(
        store.commit_update(APP, f"m{n % 16}", Update(str(n)), told.append)
        for n in range(400)))
    assert told == sorted(told) == sorted(serials)
    assert len(set(serials)) == 400
    assert store.commits.groups < 400  # writes that arrived during a commit shared the next
    message = await store.commit_chat_message("chat", APP, "alice", "hi", None, None)
    store.close()
    reopened = stores()
    stored = await stored_updates(reopened, APP)
    assert {s.serial: s.update.payload_json for s in stored} == {
        serial: str(n) for n, serial in enumerate(serials)}
    messages, _ = await reopened.read_chat_messages("chat")
    assert [(m.id, m.text) for m in messages] == [(message, "hi")]


async def commit_until_it_works(store: StoreApi, payload: str) -> int:
    """Commit an update, again and again while the store is recovering."""
    while True:
        try:
            return await store.commit_update(APP, "m", Update(payload), lambda serial: None)
        except StoreError:
            await asyncio.sleep(0.05)


async def test_a_failed_commit_refuses_every_write_of_its_group_and_tells_nothing(
        backend, stores):
    store = stores()
    await store.commit_update(APP, "m", Update('"kept"'), lambda serial: None)
    told: list[int] = []
    with backend.hold_commits():
        first = asyncio.ensure_future(store.commit_update(APP, "m", Update("0"), told.append))
        await eventually(lambda: store.commits.committing == 1)
        group = [asyncio.ensure_future(store.commit_update(APP, f"m{n}", Update(str(n)),
                                                          told.append))
                 for n in range(1, 6)]
        group.append(asyncio.ensure_future(
            store.commit_chat_message("chat", APP, "alice", "lost", None, None)))
        await eventually(lambda: store.commits.waiting == 6)
        backend.fail()
        results = await asyncio.gather(first, *group, return_exceptions=True)
    assert all(isinstance(result, StoreError) for result in results), results
    assert told == []
    backend.recover()
    after = await commit_until_it_works(store, '"after"')
    assert [(s.serial, s.update.payload_json) for s in await stored_updates(store, APP)
            ][1:] == [(after, '"after"')]
    assert [m.text for m in (await store.read_chat_messages("chat"))[0]] == []


async def test_writes_beyond_the_waiting_limit_are_refused_at_once(backend, stores):
    store = stores(StoreLimits(connect_timeout_s=2, max_waiting_writes=3))
    told: list[int] = []
    with backend.hold_commits():
        writes = [asyncio.ensure_future(store.commit_update(APP, "m", Update("0"),
                                                           told.append))]
        await eventually(lambda: store.commits.committing == 1)
        writes += [asyncio.ensure_future(store.commit_update(APP, "m", Update(str(n)),
                                                            told.append))
                   for n in range(1, 4)]
        await eventually(lambda: store.commits.waiting == 3)
        with pytest.raises(StoreOverloaded, match="store.max_waiting_writes = 3"):
            await store.commit_update(APP, "m", Update("4"), told.append)
        with pytest.raises(StoreOverloaded):
            await store.commit_chat_message("chat", APP, "alice", "x", None, None)
    serials = await asyncio.gather(*writes)
    assert told == serials == sorted(serials)
    assert [s.update.payload_json for s in await stored_updates(store, APP)] == [
        "0", "1", "2", "3"]


async def test_an_update_id_is_stored_once_per_app_copy_and_member(backend, stores):
    store = stores()
    told: list[int] = []
    first = await store.commit_update(APP, "alice", Update('"a"'), told.append, "u1")
    resent = await store.commit_update(APP, "alice", Update('"a"'), told.append, "u1")
    bobs = await store.commit_update(APP, "bob", Update('"b"'), told.append, "u1")
    other_copy = await store.commit_update("app-2", "alice", Update('"c"'), told.append, "u1")
    assert resent == first
    assert len({first, bobs, other_copy}) == 3  # another member's or copy's id is its own
    assert told == [first, bobs, other_copy]  # the resend was told to no one
    with backend.hold_commits():
        held = asyncio.ensure_future(store.commit_update(APP, "alice", Update("0"),
                                                         told.append))
        await eventually(lambda: store.commits.committing == 1)
        group = [asyncio.ensure_future(store.commit_update(APP, "alice", Update(payload),
                                                           told.append, update_id))
                 for payload, update_id in (("1", "u2"), ("1", "u2"), ('"a"', "u1"))]
        await eventually(lambda: store.commits.waiting == 3)
    unnamed, named, twice_in_group, resent_in_group = await asyncio.gather(held, *group)
    assert twice_in_group == named and resent_in_group == first
    assert told == [first, bobs, other_copy, unnamed, named]
    assert [s.update.payload_json for s in await stored_updates(store, APP)] == [
        '"a"', '"b"', "0", "1"]
    store.close()
    reopened = stores()
    assert await reopened.commit_update(APP, "alice", Update("1"), told.append, "u2") == named
    assert len(told) == 5


class TurnLog:
    """What listeners are told, with "turn" written where the event loop took a turn in
    between (a callback scheduled at the first telling after a turn runs then)."""

    def __init__(self) -> None:
        self.entries: list[object] = []
        self._turn_pending = False

    def tell(self, serial: int) -> None:
        self.entries.append(serial)
        if not self._turn_pending:
            self._turn_pending = True
            asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        self._turn_pending = False
        self.entries.append("turn")

    def told(self) -> list[object]:
        """What was told, in order, without the turns."""
        return [entry for entry in self.entries if entry != "turn"]

    def most_in_one_turn(self) -> int:
        """The most tellings with no turn of the loop between them."""
        runs = "".join("|" if entry == "turn" else "x" for entry in self.entries)
        return max(len(run) for run in runs.split("|"))


async def test_a_big_group_is_told_over_several_turns_of_the_loop_in_serial_order(
        backend, stores):
    store = stores(StoreLimits(connect_timeout_s=2, reconnect_max_s=0.2, told_per_turn=4))
    log = TurnLog()
    with backend.hold_commits():
        first = asyncio.ensure_future(store.commit_update(APP, "m", Update("0"), log.tell))
        await eventually(lambda: store.commits.committing == 1)
        rest = [asyncio.ensure_future(store.commit_update(APP, "m", Update(str(n)),
                                                          log.tell))
                for n in range(1, 11)]
        await eventually(lambda: store.commits.waiting == 10)
    serials = await asyncio.gather(first, *rest)
    await eventually(lambda: log.entries[-1] == "turn")
    assert store.commits.groups == 2 and serials == sorted(serials)
    assert log.told() == serials and log.most_in_one_turn() == 4


async def test_updates_of_a_group_stored_already_are_not_told_nor_counted_as_told(
        backend, stores):
    store = stores(StoreLimits(connect_timeout_s=2, reconnect_max_s=0.2, told_per_turn=2))
    log = TurnLog()
    earlier = await store.commit_update(APP, "m", Update('"a"'), log.tell, "a")
    await eventually(lambda: log.entries == [earlier, "turn"])
    log.entries.clear()
    with backend.hold_commits():
        first = asyncio.ensure_future(store.commit_update(APP, "m", Update("0"), log.tell))
        await eventually(lambda: store.commits.committing == 1)
        rest = [asyncio.ensure_future(store.commit_update(APP, "m", Update(f'"{name}"'),
                                                          log.tell, name))
                for name in ("b", "a", "c", "b", "d")]
        await eventually(lambda: store.commits.waiting == 5)
    held, b, a, c, b_again, d = await asyncio.gather(first, *rest)
    await eventually(lambda: log.entries[-1] == "turn")
    assert a == earlier and b_again == b and b < c < d
    assert log.told() == [held, b, c, d] and log.most_in_one_turn() == 2
    assert [s.update.payload_json for s in await stored_updates(store, APP)] == [
        '"a"', "0", '"b"', '"c"', '"d"']


async def test_tellings_are_counted_across_groups_whose_commits_take_no_turn_of_the_loop():
    # A commit whose answer is there already ends without yielding (psycopg does so), so
    # the loop may take no turn between two groups: their tellings count on together.
    serials = iter(range(1, 100))

    async def answered_at_once(writes: list[Write]) -> list[int]:
        return [next(serials) for _ in writes]

    commits = GroupCommit(answered_at_once, StoreLimits(max_group_writes=2, told_per_turn=3))
    log = TurnLog()
    told = await asyncio.gather(*(commits.submit(UpdateWrite(APP, "m", Update(str(n))),
                                                 log.tell) for n in range(5)))
    await eventually(lambda: log.entries[-1] == "turn")
    assert commits.groups == 3 and told == [1, 2, 3, 4, 5]
    assert log.entries == [1, 2, 3, "turn", 4, 5, "turn"]
