"""The host as a whole: the hooks a program plugs in at construction, and the operations on
open connections that management and tools use."""

from __future__ import annotations

import aiohttp
from live import LiveHost
from peers import HANG_S, joined, next_control, raw_socket

from webxdc_rt.core.fanout import Published
from webxdc_rt.core.messages import ChatMessageDraft
from webxdc_rt.core.realtime import Connection, deliver_bare
from webxdc_rt.host.app import HostHooks
from webxdc_rt.model.chats import Page


async def test_hooks_given_at_construction_route_items_and_watch_messages():
    routed: list[tuple[str, bytes, int]] = []
    watched: list[tuple[str, str]] = []

    def route_item(topic: str, item: Published, receivers: tuple[Connection, ...],
                   parts: tuple[bytes, ...], size: int) -> None:
        routed.append((topic, item.payload, len(receivers)))
        for conn in receivers:  # handed over at once, as the host would
            if conn.stamped:
                conn.sink.deliver(parts, size, item)
            else:
                deliver_bare(conn, item)

    def watch_messages(page: Page, message: ChatMessageDraft) -> None:
        watched.append((page.member.name, message.text))

    live = LiveHost(hooks=HostHooks(route_item=route_item, watch_messages=watch_messages))
    await live.start()
    try:
        urls = live.share(["alice", "bob"])
        alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
        alice.channel.send(b"routed")
        await bob.got(b"routed")
        assert routed == [(live.last_pages[0].app.topic, b"routed", 1)]
        session, ws = await raw_socket(live.port, live.last_pages[1])
        await ws.send_json({"type": "send-to-chat", "id": 1, "text": "seen"})
        assert await next_control(ws) == {"type": "reply", "id": 1, "ok": True}
        assert watched == [("bob", "seen")]
        await session.close()
        await alice.peer.close()
        await bob.peer.close()
    finally:
        await live.stop()


async def test_disconnect_closes_every_socket_of_a_page_and_counts_them(live_host):
    urls = live_host.share(["alice", "bob"])
    alice_page = live_host.last_pages[0]
    bob = await joined(urls["bob"])
    session, ws = await raw_socket(live_host.port, alice_page)
    second, ws2 = await raw_socket(live_host.port, alice_page)
    assert live_host.host.connection_counts() == (3, 1)
    assert {s.page for s in live_host.host.connection_stats()} == {alice_page.label,
                                                                  live_host.last_pages[1].label}
    assert await live_host.host.disconnect(alice_page.label, "see you") == 2
    for socket in (ws, ws2):
        closed = await socket.receive(timeout=HANG_S)
        assert closed.type is aiohttp.WSMsgType.CLOSE
        assert closed.data == aiohttp.WSCloseCode.SERVICE_RESTART and closed.extra == "see you"
    assert live_host.host.connection_counts() == (1, 1)
    await session.close()
    await second.close()
    await bob.peer.close()
