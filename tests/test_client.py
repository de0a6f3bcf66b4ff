"""Tests of the Python peer's own rules, against a live host."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from peers import Relay, eventually, joined

from webxdc_rt.client import connect
from webxdc_rt.core import wire
from webxdc_rt.core.limits import DeliveryLimits, RealtimeLimits
from webxdc_rt.host.settings import hello_limits


async def test_peer_knows_its_member(live_host):
    urls = live_host.share(["alice", "bob"])
    peer = await connect(urls["bob"])
    assert peer.self_name == "bob"
    assert peer.self_addr == live_host.last_pages[1].self_addr
    assert peer.limits.max_payload_bytes == 128_000
    assert peer.limits == hello_limits(RealtimeLimits(), DeliveryLimits())
    await peer.close()
    assert peer.closed


async def test_send_checks_type_and_size_and_join_is_single(live_host):
    urls = live_host.share(["alice"])
    async with await connect(urls["alice"]) as peer:
        channel = peer.join_realtime_channel()
        with pytest.raises(RuntimeError, match="already joined"):
            peer.join_realtime_channel()
        for bad in ("text", 5, None, [1, 2]):
            with pytest.raises(TypeError):
                channel.send(bad)
        with pytest.raises(ValueError):
            channel.send(bytes(128_001))
        with pytest.raises(TypeError):
            channel.set_listener("not callable")
        channel.leave()
        channel.leave()  # idempotent
        with pytest.raises(RuntimeError, match="left"):
            channel.send(b"x")
        assert peer.join_realtime_channel() is not channel


async def test_items_without_a_listener_are_dropped_not_queued_r6(live_host):
    urls = live_host.share(["alice", "bob", "carol"])
    alice, bob, carol = [await joined(urls[name]) for name in ("alice", "bob", "carol")]
    bob.channel.set_listener(None)
    alice.channel.send(b"dropped")
    await carol.got(b"dropped")  # the host has written it to bob too, by now
    # A request on bob's own link: its answer comes after the item.
    await bob.peer.chat_messages()
    later: list[bytes] = []
    bob.channel.set_listener(later.append)
    alice.channel.send(b"kept")
    await eventually(lambda: later == [b"kept"])
    assert bob.inbox == []
    for member in (alice, bob, carol):
        await member.peer.close()


async def test_listener_is_replaced_and_data_is_copied_at_send_r5_r18(live_host):
    urls = live_host.share(["alice", "bob"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    second: list[bytes] = []
    bob.channel.set_listener(second.append)
    data = bytearray(b"original")
    alice.channel.send(data)
    data[:] = b"changed!"
    await eventually(lambda: second == [b"original"])
    assert bob.inbox == []
    await alice.peer.close()
    await bob.peer.close()


async def test_a_raising_listener_does_not_stop_delivery(live_host):
    urls = live_host.share(["alice", "bob"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    seen: list[bytes] = []

    def flaky(data: bytes) -> None:
        seen.append(data)
        if data == b"boom":
            raise RuntimeError("listener bug")

    bob.channel.set_listener(flaky)
    alice.channel.send(b"boom")
    alice.channel.send(b"next")
    await eventually(lambda: seen == [b"boom", b"next"])
    await alice.peer.close()
    await bob.peer.close()


async def test_not_an_invite_link():
    with pytest.raises(ValueError, match="invite link"):
        await connect("http://localhost:1/whatever")


async def test_unreachable_host():
    with pytest.raises(ConnectionError):
        await connect("http://abc.localhost:1/.webxdc-rt/invite/token", timeout=2)


async def test_updates_between_python_peers_with_backlog_and_rate_limit(hosts):
    from webxdc_rt.core.limits import UpdateLimits
    from webxdc_rt.host.app import HostSettings

    live = await hosts(HostSettings(updates=UpdateLimits(interval_ms=10_000, burst=3)))
    urls = live.share(["alice", "bob"])
    alice, bob = await connect(urls["alice"]), await connect(urls["bob"])
    own: list[dict] = []
    await alice.set_update_listener(own.append)
    for n in range(4):  # the fourth is over the burst and refused
        alice.send_update({"payload": n, "info": f"update {n}"})
    await eventually(lambda: len(own) == 3 and len(alice.errors) == 1)
    assert alice.errors[0].code == "update-rate"
    assert [u["payload"] for u in own] == [0, 1, 2]
    late: list[dict] = []
    await bob.set_update_listener(late.append, serial=own[0]["serial"])
    assert [u["payload"] for u in late] == [1, 2]  # the backlog, before the call returned
    assert late[-1]["max_serial"] == own[-1]["serial"]
    with pytest.raises(TypeError):
        bob.send_update({"no": "payload"})
    assert await bob.chat_messages() == []
    await alice.close()
    await bob.close()


async def test_items_in_flight_across_leave_and_rejoin_are_not_delivered_r12(live_host):
    urls = live_host.share(["alice", "bob", "carol"])
    relay = await Relay(live_host.port).start()
    alice, carol = await joined(urls["alice"]), await joined(urls["carol"])
    bob = await joined(relay.invite(urls["bob"]))
    relay.hold()  # bob has not read "in flight" when it leaves and rejoins
    alice.channel.send(b"in flight")
    await carol.got(b"in flight")  # so the host has written it to bob as well
    bob.channel.leave()
    fresh = bob.peer.join_realtime_channel()
    after_rejoin: list[bytes] = []
    fresh.set_listener(after_rejoin.append)
    relay.release()
    await fresh.joined()
    alice.channel.send(b"after")
    await eventually(lambda: after_rejoin == [b"after"])
    assert bob.inbox == []
    for member in (alice, bob, carol):
        await member.peer.close()
    await relay.close()


# -- bad frames from the host --------------------------------------------------------------

BAD_HOST_FRAMES = [
    '{"type":"update","listen":1,"update":{"payload":NaN,"serial":2,"max_serial":2}}',
    '{"type":"update","listen":1,"update":{"payload":"\\ud800","serial":2,"max_serial":2}}',
    '{"type":"update","listen":1,"update":{"payload":' + "[" * 1000 + "]" * 1000
    + ',"serial":2,"max_serial":2}}',
    "[" * 100_000,
    '{"type":"update","listen":1}',
    '{"type":"update","listen":1,"update":{"payload":1,"serial":"2","max_serial":2}}',
    '{"type":"joined","epoch":"1"}',
    '{"type":"update-backlog-done"}',
    '{"type":"chat-messages","id":1,"messages":"none"}',
    '{"type":"error"}',
    "not json",
    "[1, 2]",
    '{"type": 7}',
    '{"type":"hello","self_addr":"a","self_name":"n"}',
    '{"type":"reply","id":1,"ok":false}',
    '{"type":"chat-messages","id":1,"messages":[]}',
    '{"type":"update-backlog-done","listen":-1}',
]
"""Frames the peer logs and drops; it also ignores, without a warning, types it does not
know (a newer host may send them)."""
UNKNOWN_HOST_FRAMES = ['{"type":"news","x":[1]}']


async def fake_host(frames: list[str]):
    """A host that greets, then sends `frames`, then a valid item and update; it records
    what the peer sends."""
    received: list[str] = []

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        limits = hello_limits(RealtimeLimits(), DeliveryLimits())
        await ws.send_str(wire.encode_hello("addr", "Alice", limits))
        async for msg in ws:
            received.append(msg.data)
            kind = json.loads(msg.data)["type"]
            if kind == "join":
                for frame in frames:
                    await ws.send_str(frame)
                await ws.send_str(wire.encode_joined(1))
                await ws.send_bytes(b"item")
            elif kind == "update-listen":
                for frame in frames:
                    await ws.send_str(frame)
                await ws.send_str(wire.encode_update(1, '{"payload":"ok","serial":1,'
                                                        '"max_serial":1}'))
                await ws.send_str(wire.encode_backlog_done(1))
        return ws

    runner, url = await serve_socket(socket)
    return runner, url, received


async def serve_socket(socket: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> tuple[web.AppRunner, str]:
    """A stand-in host that answers sockets with `socket`, and an invite link to it."""
    app = web.Application()
    app.router.add_get("/.webxdc-rt/socket", socket)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://page.localhost:{port}/.webxdc-rt/invite/token"


async def test_peer_survives_bad_frames_from_the_host_and_keeps_its_link(caplog):
    runner, url, _ = await fake_host(BAD_HOST_FRAMES + UNKNOWN_HOST_FRAMES)
    try:
        with caplog.at_level(logging.WARNING, logger="webxdc_rt.client"):
            peer = await connect(url)
            channel = peer.join_realtime_channel()
            items: list[bytes] = []
            channel.set_listener(items.append)
            await eventually(lambda: items == [b"item"])
            updates: list[dict] = []
            await peer.set_update_listener(updates.append)
            assert updates == [{"payload": "ok", "serial": 1, "max_serial": 1}]
            assert not peer.closed
            await peer.close()
        warnings = [r for r in caplog.records if "malformed frame from the host" in r.message]
        assert len(warnings) == 2 * len(BAD_HOST_FRAMES)
        assert all("\n" not in r.getMessage() for r in warnings)  # one line each
        assert not [r for r in caplog.records if r.exc_info]  # no traceback
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("hello", ['{"type":"hello"}', '{"type":"hello","self_addr":NaN}',
                                   "[" * 100_000])
async def test_a_malformed_hello_is_a_connection_error(hello):
    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(hello)
        await ws.receive()
        return ws

    runner, url = await serve_socket(socket)
    try:
        with pytest.raises(ConnectionError, match="hello is malformed"):
            await connect(url, timeout=5)
    finally:
        await runner.cleanup()


async def test_joined_waits_for_the_host_and_fails_if_the_channel_was_left(live_host):
    urls = live_host.share(["alice", "bob"])
    async with await connect(urls["alice"]) as alice, await connect(urls["bob"]) as bob:
        channel = alice.join_realtime_channel()
        await channel.joined()
        topic = live_host.last_pages[0].app.topic
        assert live_host.host.hub.joined_count(topic) == 1  # the host applied it
        await channel.joined()  # and says so again at once
        heard: list[bytes] = []
        channel.set_listener(heard.append)
        bob_channel = bob.join_realtime_channel()
        await bob_channel.joined()
        bob_channel.send(b"first")  # sent right after the join: not missed
        await eventually(lambda: heard == [b"first"])
        channel.leave()
        with pytest.raises(RuntimeError, match="left"):
            await channel.joined()
        left_at_once = alice.join_realtime_channel()
        left_at_once.leave()
        with pytest.raises(RuntimeError, match="left"):
            await left_at_once.joined()


async def test_joined_fails_if_the_link_ends_before_the_host_answers():
    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        limits = hello_limits(RealtimeLimits(), DeliveryLimits())
        await ws.send_str(wire.encode_hello("addr", "Alice", limits))
        await ws.receive()  # the join, never answered
        await ws.close()
        return ws

    runner, url = await serve_socket(socket)
    try:
        peer = await connect(url)
        channel = peer.join_realtime_channel()
        with pytest.raises(ConnectionError, match="before the join took effect"):
            await channel.joined()
        await peer.close()
    finally:
        await runner.cleanup()


async def test_an_update_that_is_not_strict_json_is_refused_at_send_and_the_link_lives_on(
        live_host):
    urls = live_host.share(["alice"])
    async with await connect(urls["alice"]) as peer:
        seen: list[dict] = []
        await peer.set_update_listener(seen.append)
        for payload in ("cut \ud83d", {"\udc00": 1}, float("nan"), [float("inf")]):
            with pytest.raises(ValueError):
                peer.send_update({"payload": payload})
        peer.send_update({"payload": "fine 😀"})
        await eventually(lambda: [u["payload"] for u in seen] == ["fine 😀"])
        assert not peer.closed
