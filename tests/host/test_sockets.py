"""The WebSocket shell over real sockets (a live host, Python peers and raw WebSockets): the
realtime contract, the limits of a page's sockets, and what a page is told when the store
fails or the host has a bug."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from peers import (
    HANG_S,
    BareSocket,
    Member,
    bare_socket,
    eventually,
    joined,
    next_control,
    raw_socket,
    without_time,
)

from webxdc_rt.client import connect
from webxdc_rt.core.realtime import RealtimeLimits
from webxdc_rt.host.app import HostSettings
from webxdc_rt.stores.api import StoreUnavailable

MiB = 1024 * 1024


async def close_all(*members: Member) -> None:
    for member in members:
        await member.peer.close()


async def barrier(sender: Member, *receivers: Member, tag: bytes = b"barrier") -> None:
    """Send a marker and wait until every receiver has it: anything the host wrote to them
    earlier has arrived by then, so an absent item was never sent to them."""
    sender.channel.send(tag)
    for receiver in receivers:
        await receiver.got(tag)


# -- R10, R11, R12 ---------------------------------------------------------------------

async def test_no_echo_and_every_other_page_receives_r10_r11(live_host):
    urls = live_host.share(["alice", "bob", "carol"])
    alice, alice_tab2 = await joined(urls["alice"]), await joined(urls["alice"])
    bob, carol = await joined(urls["bob"]), await joined(urls["carol"])
    alice.channel.send(b"hello")
    for receiver in (alice_tab2, bob, carol):
        await receiver.got(b"hello")
    await barrier(bob, alice)
    assert b"hello" not in alice.inbox
    assert [bob.inbox.count(b"hello"), carol.inbox.count(b"hello")] == [1, 1]
    await close_all(alice, alice_tab2, bob, carol)


async def test_late_joiner_receives_nothing_sent_before_r12(live_host):
    urls = live_host.share(["alice", "bob"])
    alice = await joined(urls["alice"])
    early_bob = await joined(urls["bob"])
    alice.channel.send(b"before")
    await early_bob.got(b"before")
    late = await joined(urls["bob"])
    alice.channel.send(b"after")
    await late.got(b"after")
    assert late.inbox == [b"after"]
    await close_all(alice, early_bob, late)


# -- R13, R14 ----------------------------------------------------------------------------

async def test_isolation_between_chats_and_app_copies_r13(live_host):
    first = live_host.share(["alice", "bob"])
    chat = live_host.last_chat
    second_copy = live_host.share(["alice", "bob"], chat=chat)
    other_chat = live_host.share(["alice", "bob"])
    alice, bob = await joined(first["alice"]), await joined(first["bob"])
    copy_alice, copy_bob = await joined(second_copy["alice"]), await joined(second_copy["bob"])
    other_alice, other_bob = await joined(other_chat["alice"]), await joined(other_chat["bob"])
    alice.channel.send(b"secret")
    await bob.got(b"secret")
    # Markers inside each other channel: had "secret" been written to them, it came first.
    await barrier(copy_alice, copy_bob)
    await barrier(copy_bob, copy_alice)
    await barrier(other_alice, other_bob)
    await barrier(other_bob, other_alice)
    for outsider in (copy_alice, copy_bob, other_alice, other_bob):
        assert b"secret" not in outsider.inbox
    assert alice.peer.self_addr != copy_alice.peer.self_addr
    await close_all(alice, bob, copy_alice, copy_bob, other_alice, other_bob)


# -- R4, R15, R16, R17 -------------------------------------------------------------------

async def test_leave_stops_delivery_and_rejoin_works_r4_r15(live_host):
    urls = live_host.share(["alice", "bob"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    bob.channel.leave()
    with pytest.raises(RuntimeError):
        bob.channel.send(b"x")
    await bob.channel.drain()
    await live_host.until_joined(1)
    alice.channel.send(b"while-away")
    rejoined = Member(bob.peer, bob.peer.join_realtime_channel())
    await rejoined.channel.joined()
    alice.channel.send(b"back")
    await rejoined.got(b"back")
    assert rejoined.inbox == [b"back"]
    assert bob.inbox == []
    await close_all(alice, bob)


async def test_per_sender_order_over_10000_items_without_duplicates_r16(live_host):
    urls = live_host.share(["alice", "bob", "carol"])
    alice, bob, carol = [await joined(urls[name]) for name in ("alice", "bob", "carol")]
    count = 10_000
    for i in range(count):
        alice.channel.send(b"a%d" % i)
        bob.channel.send(b"b%d" % i)
        if i % 500 == 499:
            # Senders that wait for their receivers now and then, so that nothing is
            # dropped as stale however loaded the machine is (realtime promises no delivery
            # to a receiver that falls seconds behind).
            await eventually(lambda sent=2 * (i + 1): len(carol.inbox) == sent, timeout=60)
    await eventually(lambda: len(carol.inbox) == 2 * count, timeout=60)
    assert [x for x in carol.inbox if x[:1] == b"a"] == [b"a%d" % i for i in range(count)]
    assert [x for x in carol.inbox if x[:1] == b"b"] == [b"b%d" % i for i in range(count)]
    assert bob.inbox == [b"a%d" % i for i in range(count)]
    await close_all(alice, bob, carol)


async def three_joined_with_bob_bare(live) -> tuple[Member, Member, BareSocket, str]:
    """Alice and Carol as Python peers and Bob as a bare socket, all joined; the topic."""
    urls = live.share(["alice", "bob", "carol"])
    alice, carol = await joined(urls["alice"]), await joined(urls["carol"])
    bob_page = live.last_pages[1]
    topic = bob_page.app.topic
    sock = await bare_socket(live.port, bob_page)
    await sock.send_json({"type": "join", "epoch": 1})
    assert without_time(await sock.next_control()) == {"type": "joined", "epoch": 1}
    assert live.host.hub.joined_count(topic) == 3
    return alice, carol, sock, topic


async def test_lost_link_counts_as_leave_and_others_are_unaffected_r17(live_host):
    alice, carol, sock, topic = await three_joined_with_bob_bare(live_host)
    sock.close()  # the link drops without a close handshake
    await eventually(lambda: live_host.host.hub.joined_count(topic) == 2)
    alice.channel.send(b"still here")
    await carol.got(b"still here")
    await close_all(alice, carol)


async def test_a_silent_link_is_dropped_by_the_heartbeat_and_answering_ones_are_kept_r17(
        hosts):
    live = await hosts(HostSettings(heartbeat_s=0.3))
    alice, carol, silent, topic = await three_joined_with_bob_bare(live)
    # It reads nothing more, so it never answers a ping: dropped as a lost link.
    await eventually(lambda: live.host.hub.joined_count(topic) == 2)
    # Alice and Carol sent nothing all that time either; their peers answered the pings.
    alice.channel.send(b"still here")
    await carol.got(b"still here")
    silent.close()
    await close_all(alice, carol)


# -- R8, R19 -----------------------------------------------------------------------------

async def test_empty_and_largest_items_delivered_larger_refused_r8(live_host):
    urls = live_host.share(["alice", "bob"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    alice.channel.send(b"")
    alice.channel.send(bytes(range(256)) * 500)  # 128000 bytes
    with pytest.raises(ValueError, match="128001 bytes"):
        alice.channel.send(bytes(128_001))
    await eventually(lambda: len(bob.inbox) == 2)
    assert bob.inbox == [b"", bytes(range(256)) * 500]
    # A client that skips the check meets the host's own.
    session, ws = await raw_socket(live_host.port, live_host.last_pages[0])
    await ws.send_json({"type": "join", "epoch": 1})
    await next_control(ws)
    await ws.send_bytes(bytes(128_001))
    error = await next_control(ws)
    assert error["code"] == "payload-too-large" and "128000" in error["message"]
    await ws.send_bytes(b"after")  # the connection is kept; nothing else is lost
    await bob.got(b"after")
    assert len(bob.inbox) == 3
    await session.close()
    await close_all(alice, bob)


async def test_bad_frames_get_errors_while_others_keep_talking_r19(live_host):
    urls = live_host.share(["alice", "bob", "mallory"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    session, ws = await raw_socket(live_host.port, live_host.last_pages[2])
    await ws.send_bytes(b"not joined yet")
    assert (await next_control(ws))["code"] == "not-joined"
    for bad, code in (("{", "malformed"), ('{"type":"fly"}', "unknown-type"),
                      ('{"type":"leave"}', "not-joined")):
        await ws.send_str(bad)
        assert (await next_control(ws))["code"] == code
    await ws.send_json({"type": "join", "epoch": 1})
    assert without_time(await next_control(ws)) == {"type": "joined", "epoch": 1}
    await ws.send_json({"type": "join", "epoch": 2})
    assert (await next_control(ws))["code"] == "already-joined"
    alice.channel.send(b"ping")
    await bob.got(b"ping")
    bob.channel.send(b"pong")
    await alice.got(b"pong")
    # A frame over the host's frame limit ends the offender's connection, no one else's.
    await ws.send_bytes(bytes(2 * MiB))
    msg = await ws.receive(timeout=HANG_S)
    while msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
        msg = await ws.receive(timeout=HANG_S)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await session.close()
    alice.channel.send(b"after")
    await bob.got(b"after")
    await close_all(alice, bob)


async def test_too_many_refused_requests_disconnect_r19(hosts):
    live = await hosts(HostSettings(max_protocol_errors=5))
    live.share(["mallory"])
    session, ws = await raw_socket(live.port, live.last_pages[0])
    for _ in range(5):
        await ws.send_str("garbage")
    codes = []
    msg = await ws.receive(timeout=HANG_S)
    while msg.type is aiohttp.WSMsgType.TEXT:
        codes.append(msg.json()["code"])
        msg = await ws.receive(timeout=HANG_S)
    assert codes == ["malformed"] * 5
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert msg.data == aiohttp.WSCloseCode.POLICY_VIOLATION
    await session.close()


async def test_flood_is_slowed_to_the_send_rate_r19(hosts):
    rate, burst = 200.0, 50
    live = await hosts(HostSettings(realtime=RealtimeLimits(send_items_per_s=rate,
                                                            send_items_burst=burst)))
    urls = live.share(["alice", "bob", "mallory"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    session, ws = await raw_socket(live.port, live.last_pages[2])
    await ws.send_json({"type": "join", "epoch": 1})
    await next_control(ws)
    started = time.monotonic()
    flood = 5000
    frames = [b"flood"] * flood
    flooding = asyncio.ensure_future(_send_all(ws, frames))
    assert (await next_control(ws))["code"] == "rate-limited"
    # Alice and Bob keep talking while the flood is being held back.
    for i in range(20):
        alice.channel.send(b"a%d" % i)
        bob.channel.send(b"b%d" % i)
    await alice.got(b"b19")
    await bob.got(b"a19")
    elapsed = time.monotonic() - started
    flood_seen = bob.inbox.count(b"flood")
    assert flood_seen <= burst + rate * elapsed + 1
    assert flood_seen < flood
    flooding.cancel()
    await session.close()
    await close_all(alice, bob)


async def _send_all(ws: aiohttp.ClientWebSocketResponse, frames: list[bytes]) -> None:
    for frame in frames:
        await ws.send_bytes(frame)


async def test_connections_per_page_are_limited(hosts):
    live = await hosts(HostSettings(max_connections_per_page=2))
    urls = live.share(["alice"])
    first, second = await connect(urls["alice"]), await connect(urls["alice"])
    with pytest.raises(ConnectionError, match="503"):
        await connect(urls["alice"])
    await first.close()
    await eventually(lambda: live.host.hub.connection_count() == 1)
    third = await connect(urls["alice"])
    await second.close()
    await third.close()


async def test_a_socket_from_another_origin_is_refused_r13_r14(live_host):
    live_host.share(["alice"])
    page = live_host.last_pages[0]
    own = f"http://{page.label}.localhost:{live_host.port}"
    session, ws = await raw_socket(live_host.port, page, headers_extra={"Origin": own})
    await session.close()
    for origin in (f"http://other.localhost:{live_host.port}", "http://example.com",
                   f"http://{page.label}.localhost:1"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await raw_socket(live_host.port, page, headers_extra={"Origin": origin})
        assert refused.value.status == 403, origin


# -- limits count per member page, not per socket ---------------------------------------

async def test_realtime_budget_is_shared_by_every_socket_of_a_page(hosts):
    live = await hosts(HostSettings(realtime=RealtimeLimits(send_items_per_s=0.5,
                                                            send_items_burst=10)))
    live.share(["alice", "mallory"])
    mallory = live.last_pages[1]
    first, second = await raw_socket(live.port, mallory), await raw_socket(live.port, mallory)
    for _, ws in (first, second):
        await ws.send_json({"type": "join", "epoch": 1})
        assert without_time(await next_control(ws)) == {"type": "joined", "epoch": 1}
    for _ in range(10):  # the page's whole burst, from the first socket
        await first[1].send_bytes(b"x")
    await second[1].send_bytes(b"y")  # another socket of the same page buys nothing
    assert (await next_control(second[1]))["code"] == "rate-limited"
    for session, _ in (first, second):
        await session.close()
    # Reconnecting does not refill it either.
    session, ws = await raw_socket(live.port, mallory)
    await ws.send_json({"type": "join", "epoch": 1})
    await next_control(ws)
    await ws.send_bytes(b"z")
    assert (await next_control(ws))["code"] == "rate-limited"
    await session.close()


async def test_control_messages_are_paced_per_page(hosts):
    live = await hosts(HostSettings(control_per_s=0.5, control_burst=5))
    live.share(["alice", "mallory"])
    mallory = live.last_pages[1]
    first, second = await raw_socket(live.port, mallory), await raw_socket(live.port, mallory)
    for _ in range(5):
        await first[1].send_json({"type": "leave"})
        assert (await next_control(first[1]))["code"] == "not-joined"
    await second[1].send_json({"type": "join", "epoch": 1})
    # The page spent its burst on the first socket: the second is paced, and told so
    # (after its join took effect: a join is answered before anything else is written).
    assert without_time(await next_control(second[1])) == {"type": "joined", "epoch": 1}
    assert (await next_control(second[1]))["code"] == "rate-limited"
    # Another member's page has its own budget.
    session, ws = await raw_socket(live.port, live.last_pages[0])
    await ws.send_json({"type": "join", "epoch": 7})
    assert without_time(await next_control(ws)) == {"type": "joined", "epoch": 7}
    for session_, _ in (first, second, (session, ws)):
        await session_.close()


async def test_an_internal_error_closes_only_that_socket_with_one_log_line(live_host, caplog):
    urls = live_host.share(["alice", "bob", "carol"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])

    def broken(*args, **kwargs):
        raise KeyError("a bug in the host")

    # Stands for any bug a request might reach: it must stay on the socket that hit it.
    live_host.host.feed.chat_messages = broken
    session, ws = await raw_socket(live_host.port, live_host.last_pages[2])
    await ws.send_json({"type": "chat-messages", "id": 1})
    msg = await ws.receive(timeout=HANG_S)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert msg.data == aiohttp.WSCloseCode.INTERNAL_ERROR
    alice.channel.send(b"still here")
    await bob.got(b"still here")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "KeyError" in errors[0].getMessage()
    assert errors[0].exc_info is None and "\n" not in errors[0].getMessage()
    await session.close()
    await close_all(alice, bob)


# -- the store fails -------------------------------------------------------------------

async def test_storage_failures_are_answered_and_only_a_failed_replay_disconnects(
        live_host, monkeypatch):
    live_host.share(["alice", "bob"])
    alice_page, bob_page = live_host.last_pages
    bob = await joined(live_host.url(bob_page))
    session, ws = await raw_socket(live_host.port, alice_page)
    await ws.send_json({"type": "join", "epoch": 1})
    assert without_time(await next_control(ws)) == {"type": "joined", "epoch": 1}

    def down(*args, **kwargs):
        raise StoreUnavailable("the database is unreachable")

    for name in ("hand_over_update", "commit_chat_message", "read_chat_messages",
                 "read_updates"):
        monkeypatch.setattr(live_host.host.store, name, down)
    await ws.send_json({"type": "update-send", "update": {"payload": 1}})
    assert await next_control(ws) == {"type": "error", "code": "storage-failed", "message":
                                      "the host could not store this update; it was not sent"}
    await ws.send_json({"type": "send-to-chat", "id": 1, "text": "hi"})
    assert await next_control(ws) == {"type": "reply", "id": 1, "ok": False,
                                      "code": "storage-failed",
                                      "message": "the host could not record this message"}
    assert live_host.host.sockets.budgets[alice_page.label].chat_stored_bytes == 0  # refunded
    await ws.send_json({"type": "chat-messages", "id": 2})
    reply = await next_control(ws)
    assert (reply["id"], reply["ok"], reply["code"]) == (2, False, "storage-failed")
    await ws.send_json({"type": "update-listen", "listen": 1, "serial": 0})
    assert (await next_control(ws))["code"] == "storage-failed"
    closed = await ws.receive(timeout=HANG_S)
    assert closed.type is aiohttp.WSMsgType.CLOSE
    assert closed.data == aiohttp.WSCloseCode.INTERNAL_ERROR
    assert live_host.host.stats.sessions.refused["storage-failed"] == 4
    await live_host.until_joined(1)  # alice left the channel; bob is still in it
    await session.close()
    await close_all(bob)

