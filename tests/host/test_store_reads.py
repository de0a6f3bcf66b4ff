"""The store's reads a live host makes while it serves (a page's chat bytes at its first
socket, the chat messages a page lists, the chat page's list of messages and their files,
every chat read back in a cluster with the containers of the apps new to it) run off the
event loop: while PostgreSQL keeps one waiting, every other socket of the process is served
as before, and the request is answered once the server answers; and those reads return what
the store holds. Over real sockets, with a SQLite file and a PostgreSQL of the test's own."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import psycopg
import pytest
from hosting import make_xdc, web_session
from peers import eventually, next_control, raw_socket

from webxdc_rt.client import Peer, RealtimeChannel, connect
from webxdc_rt.core.limits import ChatLimits
from webxdc_rt.core.updates import Update
from webxdc_rt.host.app import Host, HostSettings
from webxdc_rt.service.cluster import ChatFollower
from webxdc_rt.service.home import STATE_PATH, HomeSite
from webxdc_rt.service.manage import Manager
from webxdc_rt.stores.postgres import PostgresStore
from webxdc_rt.stores.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A store in a file of the test's own (its reads on a connection of their own), or
    on a PostgreSQL of the test's own."""
    if request.param == "sqlite":
        return SqliteStore.in_directory(tmp_path)
    return PostgresStore(request.getfixturevalue("postgres_server").url)


async def test_a_page_is_counted_and_listed_the_chat_messages_stored_before_it_opened(
        hosts, store):
    live = await hosts(HostSettings(chat=ChatLimits(max_stored_bytes=1000)), store)
    live.share(["alice", "bob"])
    alice, bob = live.last_pages
    store.add_chat_message(alice.app.chat_id, alice.app.id, "alice", "a" * 600, None, None)
    session, ws = await raw_socket(live.port, alice)
    await ws.send_json({"type": "send-to-chat", "id": 1, "text": "b" * 600})
    while (reply := await next_control(ws))["type"] != "reply":
        pass
    assert (reply["ok"], reply["code"]) == (False, "chat-quota")  # 600 stored before
    peer = await connect(live.url(bob))
    assert [m["text"] for m in await peer.chat_messages()] == ["a" * 600]
    await peer.close()
    await session.close()


def reads_waiting(watcher: psycopg.Connection, table: str) -> int:
    """How many statements wait for a lock on `table` (the server's own view)."""
    row = watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted"
                          " AND relation = %s::regclass", (table,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_realtime_items_flow_while_chat_reads_wait_for_postgresql(
        hosts, postgres_server):
    url = postgres_server.url
    live = await hosts(None, PostgresStore(url))
    urls = live.share(["alice", "bob", "carol"])
    page = live.last_pages[0]
    live.store.add_chat_message(page.app.chat_id, page.app.id, "alice", "hello", None, None)
    alice, bob = await connect(urls["alice"]), await connect(urls["bob"])
    sending = alice.join_realtime_channel()
    inbox: list[bytes] = []
    bob.join_realtime_channel().set_listener(inbox.append)
    await live.until_joined(2)
    updates: list[dict] = []
    await bob.set_update_listener(updates.append)
    watcher = psycopg.connect(url, autocommit=True)
    locker = psycopg.connect(url)  # in a transaction until it rolls back
    locker.execute("LOCK TABLE chat_messages IN ACCESS EXCLUSIVE MODE")
    try:
        listing = asyncio.ensure_future(bob.chat_messages())
        # carol's page opens its first socket: its stored chat bytes are read
        joining = asyncio.ensure_future(connect(urls["carol"]))
        # One waits on the server; the other waits its turn on the store's reader.
        await eventually(lambda: reads_waiting(watcher, "chat_messages") == 1)
        for n in range(20):
            sending.send(bytes([n]))
        alice.send_update({"payload": "live"})  # stored, read back and sent meanwhile too
        await eventually(lambda: len(inbox) == 20 and len(updates) == 1)
        assert inbox == [bytes([n]) for n in range(20)]
        assert updates[0]["payload"] == "live"
        assert not listing.done() and not joining.done()
    finally:
        locker.rollback()
        locker.close()
    assert [m["text"] for m in await listing] == ["hello"]
    carol = await joining
    carol.join_realtime_channel()
    await live.until_joined(3)
    sending.send(b"after")
    await eventually(lambda: inbox[-1:] == [b"after"])
    watcher.close()
    for peer in (alice, bob, carol):
        await peer.close()


@dataclass
class Traffic:
    """alice sends realtime items and status updates to bob on one app copy."""

    alice: Peer
    bob: Peer
    sending: RealtimeChannel
    inbox: list[bytes] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)

    @classmethod
    async def start(cls, live, urls: dict[str, str]) -> Traffic:
        alice, bob = await connect(urls["alice"]), await connect(urls["bob"])
        traffic = cls(alice, bob, alice.join_realtime_channel())
        bob.join_realtime_channel().set_listener(traffic.inbox.append)
        await live.until_joined(2)
        await bob.set_update_listener(traffic.updates.append)
        return traffic

    async def flows(self) -> None:
        """20 realtime items and an update (stored, read back) reach bob, in order."""
        items, updates = len(self.inbox), len(self.updates)
        for n in range(20):
            self.sending.send(bytes([n]))
        self.alice.send_update({"payload": "live"})
        await eventually(lambda: len(self.inbox) == items + 20
                         and len(self.updates) == updates + 1)
        assert self.inbox[items:] == [bytes([n]) for n in range(20)]
        assert self.updates[-1]["payload"] == "live"

    async def close(self) -> None:
        await self.alice.close()
        await self.bob.close()


async def test_the_chat_page_is_served_while_its_reads_wait_for_postgresql(
        hosts, postgres_server):
    url = postgres_server.url
    live = await hosts(None, PostgresStore(url))
    manager = Manager(live.host, live.store)
    live.host.mount(HomeSite(manager).resolve)
    chat = manager.create_chat("family", ["alice", "bob"])
    traffic = await Traffic.start(live, live.share(["alice", "bob"], chat=chat))
    page = live.last_pages[0]
    message_id = live.store.add_chat_message(chat.id, page.app.id, "alice", "hello", "f.txt",
                                             b"data")
    home = manager.registry.home_of(chat, chat.members[1])
    assert home is not None
    watcher = psycopg.connect(url, autocommit=True)
    locker = psycopg.connect(url)  # in a transaction until it rolls back
    async with web_session() as session:

        async def fetch(path: str) -> tuple[int, bytes]:
            async with session.get(live.origin(home) + path, headers={
                    "Authorization": f"Bearer {home.token}"}) as response:
                return response.status, await response.read()

        locker.execute("LOCK TABLE chat_messages IN ACCESS EXCLUSIVE MODE")
        try:
            listing = asyncio.ensure_future(fetch(STATE_PATH))
            file = asyncio.ensure_future(fetch(f"/.webxdc-rt/home/file/{message_id}"))
            # One waits on the server; the other waits its turn on the store's reader.
            await eventually(lambda: reads_waiting(watcher, "chat_messages") == 1)
            await traffic.flows()
            assert not listing.done() and not file.done()
        finally:
            locker.rollback()
            locker.close()
        status, body = await listing
        assert status == 200
        [message] = json.loads(body)["messages"]
        assert (message["text"], message["file"]["size"]) == ("hello", 4)
        assert await file == (200, b"data")
    watcher.close()
    await traffic.close()


@pytest.mark.parametrize("table", ["chats", "containers"])
async def test_realtime_items_flow_while_every_chat_is_read_back_from_postgresql(
        hosts, postgres_server, tmp_path, table):
    # After a lost announcement connection every chat is read again, with the containers
    # of the apps shared elsewhere meanwhile: `table` holds up the one or the other.
    url = postgres_server.url
    live = await hosts(None, PostgresStore(url))
    manager = Manager(live.host, live.store)
    traffic = await Traffic.start(live, live.share(["alice", "bob"]))
    elsewhere = PostgresStore(url)
    other = Manager(Host(elsewhere.load_registry(), {}, store=elsewhere), elsewhere)
    chat = other.create_chat("elsewhere", ["carol"])
    app = await other.share(chat, "probe.xdc", make_xdc(tmp_path / "p.xdc").read_bytes(),
                            None)
    watcher = psycopg.connect(url, autocommit=True)
    locker = psycopg.connect(url)
    locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    try:
        reloading = asyncio.ensure_future(ChatFollower(manager, live.store).reload(None))
        await eventually(lambda: reads_waiting(watcher, table) == 1)
        await traffic.flows()
        assert not reloading.done()
    finally:
        locker.rollback()
        locker.close()
    assert await reloading == 0
    assert manager.registry.chats[chat.id].name == "elsewhere"
    assert live.host.sources[app.id].name == app.name
    await traffic.flows()
    watcher.close()
    elsewhere.close()
    await traffic.close()


async def test_the_reads_off_the_event_loop_return_what_the_store_holds(store):
    pages = store.share(store.load_registry(), "chat", ["alice", "bob"], "Poll", "/poll.xdc")
    app_id, chat_id = pages[0].app.id, pages[0].app.chat_id
    bob_addr = pages[1].self_addr
    serial = store.append_update(app_id, "m1", Update('"x"', notify={bob_addr: "hey"}))
    store.append_update(app_id, "m2", Update('"y"', notify={"*": "all"}))
    ids = [store.add_chat_message(chat_id, app_id, "alice", f"m{n}", None, b"1234")
           for n in range(3)]
    notes = await store.read_notifications(pages[1].member.id, {app_id: bob_addr}, 10)
    assert [(n.serial, n.text) for n in notes] == [(serial, "hey")]
    assert await store.read_notifications(pages[1].member.id, {}, 10) == []
    assert await store.read_chat_bytes(app_id, "alice") == 3 * (2 + 4)
    assert await store.read_chat_bytes(app_id, "bob") == 0
    messages, more = await store.read_chat_messages(chat_id, 2, None, None)
    assert ([m.id for m in messages], more) == (ids[1:], True)
    messages, more = await store.read_chat_messages(chat_id, 10, ids[1], 6)
    assert ([m.id for m in messages], more) == (ids[:1], False)
    if store.shared:
        stored = await store.read_chat(chat_id)
        assert set(stored.chats) == {chat_id}
        assert [page.label for page in stored.pages_of(stored.apps[app_id])] == [
            page.label for page in pages]
        assert not (await store.read_chat("chat-none")).chats
    store.close()
