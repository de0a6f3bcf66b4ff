"""Status updates and chat messages on a live host: per-page rates and quotas, bounded
replies, backlogs that a stalled reader cannot turn into host memory."""

from __future__ import annotations

import base64
import json
import sqlite3

import aiohttp
from peers import eventually, next_control, raw_socket, stalled_listener, stored_updates

from webxdc_rt.client import connect
from webxdc_rt.core.limits import ChatLimits, UpdateLimits
from webxdc_rt.host.app import HostSettings
from webxdc_rt.stores.api import StoreLimits
from webxdc_rt.stores.sqlite import SqliteStore

KiB = 1024
MiB = 1024 * KiB


async def post(ws: aiohttp.ClientWebSocketResponse, request_id: int, text: str | None = None,
               file: bytes | None = None) -> dict:
    """sendToChat over a raw socket; the host's reply."""
    message: dict = {"type": "send-to-chat", "id": request_id, "text": text}
    if file is not None:
        message["file"] = {"name": "f.bin", "base64": base64.b64encode(file).decode()}
    await ws.send_json(message)
    while True:
        reply = await next_control(ws)
        if reply["type"] == "reply":
            return reply


async def test_update_rate_is_shared_by_the_sockets_of_a_page(hosts):
    live = await hosts(HostSettings(updates=UpdateLimits(interval_ms=60_000, burst=3)))
    urls = live.share(["alice", "bob"])
    tabs = [await connect(urls["alice"]) for _ in range(2)]
    seen: list[dict] = []
    await tabs[0].set_update_listener(seen.append)
    for n in range(4):  # two per tab: the fourth is over the page's burst of three
        tabs[n % 2].send_update({"payload": n})
    await eventually(lambda: len(seen) == 3 and len(tabs[1].errors) == 1)
    assert tabs[1].errors[0].code == "update-rate"
    bob = await connect(urls["bob"])  # another page: its own burst
    bob.send_update({"payload": "bob"})
    await eventually(lambda: len(seen) == 4)
    for peer in (*tabs, bob):
        await peer.close()


async def test_chat_messages_are_returned_in_bounded_pages(hosts):
    live = await hosts(HostSettings(chat=ChatLimits(max_listed_bytes=1 * MiB)))
    live.share(["alice"])
    session, ws = await raw_socket(live.port, live.last_pages[0])
    files = [bytes([n]) * (200 * KiB) for n in range(8)]
    for n, data in enumerate(files):
        assert (await post(ws, n, text=f"file {n}", file=data))["ok"]
    peer = await connect(live.url(live.last_pages[0]))
    newest = await peer.chat_messages()
    assert 1 <= len(newest) <= 5  # 1 MiB of files at most
    assert sum(len(base64.b64decode(m["file_base64"])) for m in newest) <= 1 * MiB
    pages = [newest]
    while pages[-1]:
        pages.append(await peer.chat_messages(before=pages[-1][0]["id"]))
    received = [m for page in reversed(pages) for m in page]
    assert [m["text"] for m in received] == [f"file {n}" for n in range(8)]
    assert [base64.b64decode(m["file_base64"]) for m in received] == files
    await peer.close()
    await session.close()


async def test_send_to_chat_has_a_rate_and_a_stored_bytes_quota_per_page(hosts):
    live = await hosts(HostSettings(chat=ChatLimits(messages_per_s=0.01, messages_burst=3,
                                                    max_stored_bytes=1000)))
    live.share(["alice", "bob"])
    alice, bob = live.last_pages
    first, second = await raw_socket(live.port, alice), await raw_socket(live.port, alice)
    assert (await post(first[1], 1, text="a" * 600))["ok"]
    refused = await post(second[1], 2, text="b" * 600)
    assert (refused["ok"], refused["code"]) == (False, "chat-quota")
    assert (await post(second[1], 3, text="c"))["ok"]
    assert (await post(first[1], 4, text="d"))["ok"]
    refused = await post(second[1], 5, text="e")  # the page's burst of three was spent
    assert (refused["ok"], refused["code"]) == (False, "chat-rate")
    other = await raw_socket(live.port, bob)
    assert (await post(other[1], 1, text="f" * 600))["ok"]
    for session, _ in (first, second, other):
        await session.close()


async def test_stalled_backlog_readers_hold_up_nobody_else(hosts):
    live = await hosts(HostSettings(updates=UpdateLimits(burst=100,
                                                         backlog_chunk_bytes=256 * KiB)))
    urls = live.share(["alice", "mallory"])
    alice = await connect(urls["alice"])
    big = "x" * 120_000
    for n in range(40):
        alice.send_update({"payload": big, "info": str(n)})
    seen: list[dict] = []
    await alice.set_update_listener(seen.append)
    await eventually(lambda: len(seen) == 40)
    stalled = [await stalled_listener(urls["mallory"]) for _ in range(6)]
    # Other pages replay the whole backlog and get live updates while those never read.
    late = await connect(urls["alice"])
    replayed: list[dict] = []
    await late.set_update_listener(replayed.append)
    assert [u["info"] for u in replayed] == [str(n) for n in range(40)]
    alice.send_update({"payload": "live", "info": "live"})
    await eventually(lambda: replayed[-1]["info"] == "live")
    for writer in stalled:
        writer.close()
    await alice.close()
    await late.close()


async def test_a_refused_message_is_answered_once_and_never_disconnects(hosts):
    live = await hosts(HostSettings(max_protocol_errors=3,
                                    chat=ChatLimits(max_file_bytes=10)))
    live.share(["alice"])
    session, ws = await raw_socket(live.port, live.last_pages[0])
    for request_id in range(1, 11):  # more refusals than the refused-request cap
        await ws.send_json({"type": "send-to-chat", "id": request_id,
                            "file": {"name": "big", "base64": "QUJDREVGR0hJSktM"}})
        reply = await next_control(ws)  # the reply, and no error frame before it
        assert (reply["type"], reply["id"], reply["code"]) == (
            "reply", request_id, "message-too-large")
    assert (await post(ws, 11, text="still connected"))["ok"]
    await session.close()


# -- updates committed in groups -------------------------------------------------------


async def test_updates_sent_at_once_by_many_pages_reach_every_listener_in_one_order(
        hosts, tmp_path):
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path)
    live = await hosts(HostSettings(updates=UpdateLimits(interval_ms=1, burst=100)), store)
    names = [f"m{n}" for n in range(8)]
    urls = live.share(names)
    app_id = live.last_pages[0].app.id
    peers = [await connect(urls[name]) for name in names]
    seen: list[list[dict]] = [[] for _ in peers]
    for peer, got in zip(peers, seen, strict=True):
        await peer.set_update_listener(got.append)
    for round_ in range(25):
        for n, peer in enumerate(peers):
            peer.send_update({"payload": [n, round_]})
    await eventually(lambda: all(len(got) == 200 for got in seen))
    orders = [[(u["serial"], tuple(u["payload"])) for u in got] for got in seen]
    assert all(order == orders[0] for order in orders)  # one order for every listener
    assert [serial for serial, _ in orders[0]] == sorted({s for s, _ in orders[0]})
    for n in range(8):  # each sender's updates in the order sent
        assert [r for sender, r in (p for _, p in orders[0]) if sender == n] == list(range(25))
    assert store.commits.groups < 200  # pages that sent at once shared commits
    for peer in peers:
        await peer.close()
    store.close()
    reopened = SqliteStore(path)
    assert [(s.serial, tuple(json.loads(s.update.payload_json)))
            for s in await stored_updates(reopened, app_id)] == orders[0]
    reopened.close()


async def test_a_failed_commit_is_told_to_its_senders_and_a_full_queue_refuses(
        hosts, tmp_path):
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path, limits=StoreLimits(max_waiting_writes=1))
    live = await hosts(store=store)
    urls = live.share(["a", "b", "c", "listener"])
    a, b, c, listener = [await connect(urls[name]) for name in ("a", "b", "c", "listener")]
    seen: list[dict] = []
    await listener.set_update_listener(seen.append)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    a.send_update({"payload": "a"})
    await eventually(lambda: store.commits.committing == 1)
    b.send_update({"payload": "b"})
    await eventually(lambda: store.commits.waiting == 1)
    c.send_update({"payload": "c"})  # over store.max_waiting_writes: refused at once
    await eventually(lambda: len(c.errors) == 1)
    assert c.errors[0].code == "storage-busy"
    assert "store.max_waiting_writes = 1" in c.errors[0].message
    await eventually(lambda: len(a.errors) == 1)  # the lock outlasted the store's wait
    assert a.errors[0].code == "storage-failed"
    other.execute("ROLLBACK")
    other.close()
    await eventually(lambda: len(seen) == 1)
    assert seen[0]["payload"] == "b" and not b.errors
    assert [s.update.payload_json for s in await stored_updates(
        store, live.last_pages[0].app.id)] == ['"b"']
    for peer in (a, b, c, listener):
        await peer.close()
