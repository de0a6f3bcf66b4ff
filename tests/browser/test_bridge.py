"""The browser bridge in headless Chromium: every JS row of the realtime contract (R1-R18),
with pages as members of a chat on a live host."""

from __future__ import annotations

import aiohttp
from links import hold_link_down, let_link_up

JOIN = """() => {
  window.rx = [];
  window.ch = window.webxdc.joinRealtimeChannel();
  window.record = (data) => rx.push({
    exact: data instanceof Uint8Array && data.constructor === Uint8Array &&
      data.byteOffset === 0 && data.buffer.byteLength === data.byteLength,  // its own buffer
    len: data.byteLength,
    text: data.byteLength <= 64 ? new TextDecoder().decode(data) : null,
    sum: data.reduce((a, b) => (a * 31 + b) % 1000003, 0),
  });
  ch.setListener(record);
}"""
SEND = "(text) => ch.send(new TextEncoder().encode(text))"


async def texts(page) -> list[str]:
    return await page.evaluate("rx.map(r => r.text)")


async def wait_for_items(page, count: int) -> None:
    await page.wait_for_function(f"window.rx && rx.length >= {count}", timeout=20_000)


async def socket_items(page) -> int:
    return await page.evaluate("window.__socketItems")


async def joined_pages(live_host, open_page, names: list[str]):
    """Open and join one page per member; wait until the host applied every join."""
    urls = live_host.share(names)
    pages = [await open_page(urls[name]) for name in names]
    for page in pages:
        await page.evaluate(JOIN)
    topic = live_host.last_pages[0].app.topic
    await live_host.until_joined(len(pages), topic)
    return pages


async def error_of(page, script: str) -> list[str]:
    """Run `script` in the page; return [constructor name, message] of what it threw."""
    return await page.evaluate(f"""() => {{
      try {{ {script}; return null; }} catch (e) {{ return [e.constructor.name, e.message]; }}
    }}""")


async def test_feature_check_join_shape_double_join_and_rejoin_r1_r2_r3_r4(live_host, open_page):
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    assert await alice.evaluate("window.webxdc.joinRealtimeChannel !== undefined")
    shape = await alice.evaluate("""() => [typeof ch.setListener, typeof ch.send,
        typeof ch.leave, ch instanceof Promise]""")
    assert shape == ["function", "function", "function", False]
    thrown = await error_of(alice, "window.webxdc.joinRealtimeChannel()")
    assert thrown[0] == "Error" and "already joined" in thrown[1]
    await alice.evaluate(SEND, "still works")
    await wait_for_items(bob, 1)
    assert await texts(bob) == ["still works"]
    is_new = await alice.evaluate("""() => {
        const old = ch; ch.leave(); window.ch = window.webxdc.joinRealtimeChannel();
        ch.setListener(record); return ch !== old; }""")
    assert is_new
    topic = live_host.last_pages[0].app.topic
    await live_host.until_joined(2, topic)
    await bob.evaluate(SEND, "to the new channel")
    await wait_for_items(alice, 1)
    assert await texts(alice) == ["to the new channel"]


async def test_listener_gets_a_real_uint8array_and_is_replaced_r5(live_host, open_page):
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    await alice.evaluate(SEND, "one")
    await wait_for_items(bob, 1)
    await bob.evaluate("() => { window.second = []; ch.setListener(d => second.push(d)); }")
    await alice.evaluate(SEND, "two")
    await bob.wait_for_function("second.length === 1")
    assert await bob.evaluate("""() => second[0] instanceof Uint8Array &&
        second[0].constructor === Uint8Array && new TextDecoder().decode(second[0])""") == "two"
    assert await texts(bob) == ["one"]
    assert (await bob.evaluate("rx[0].exact")) is True


async def test_items_before_any_listener_are_dropped_r6(live_host, open_page):
    urls = live_host.share(["alice", "bob"])
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    await alice.evaluate(JOIN)
    await bob.evaluate("() => { window.rx = []; window.ch = window.webxdc.joinRealtimeChannel(); }")
    topic = live_host.last_pages[0].app.topic
    await live_host.until_joined(2, topic)
    await alice.evaluate(SEND, "nobody listens")
    await bob.wait_for_function("window.__socketItems === 1")  # arrived, with no listener
    await bob.evaluate("() => ch.setListener(d => rx.push({text: new TextDecoder().decode(d)}))")
    await alice.evaluate(SEND, "now heard")
    await wait_for_items(bob, 1)
    assert await texts(bob) == ["now heard"]


async def test_send_refuses_wrong_types_and_oversize_r7_r8(live_host, open_page):
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    for bad in ('"text"', "[1, 2]", "new Uint16Array(2)", "new ArrayBuffer(4)", "null",
                "new Uint8ClampedArray(2)", "new DataView(new ArrayBuffer(2))"):
        thrown = await error_of(alice, f"ch.send({bad})")
        assert thrown is not None and thrown[0] == "TypeError", bad
    thrown = await error_of(alice, "ch.send(new Uint8Array(128001))")
    assert thrown[0] == "RangeError" and "128000" in thrown[1]
    await alice.evaluate("""() => {
        ch.send(new Uint8Array(0));
        const big = new Uint8Array(128000);
        for (let i = 0; i < big.length; i++) big[i] = i % 251;
        ch.send(big);
        ch.send(new TextEncoder().encode("last"));
    }""")
    await wait_for_items(bob, 3)
    received = await bob.evaluate("rx")
    expected_sum = await alice.evaluate("""() => {
        const big = new Uint8Array(128000);
        for (let i = 0; i < big.length; i++) big[i] = i % 251;
        return big.reduce((a, b) => (a * 31 + b) % 1000003, 0); }""")
    assert [(r["len"], r["text"]) for r in received] == [(0, ""), (128000, None), (4, "last")]
    assert received[1]["sum"] == expected_sum
    assert await socket_items(bob) == 3  # nothing of the refused sends reached the host


async def test_send_right_after_join_before_the_link_is_up_r9_r18(live_host, open_page):
    urls = live_host.share(["alice", "bob", "carol"])
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    for page in (alice, bob):
        await page.evaluate(JOIN)
    topic = live_host.last_pages[0].app.topic
    await live_host.until_joined(2, topic)
    carol = await open_page(urls["carol"], path="/?early")
    for page in (alice, bob):
        await wait_for_items(page, 1)
        assert await texts(page) == ["early from carol"]
    assert await carol.evaluate("typeof window.earlyChannel.leave") == "function"


async def test_no_echo_and_other_pages_of_the_same_member_receive_r10_r11(live_host, open_page):
    urls = live_host.share(["alice", "bob", "carol"])
    pages = [await open_page(urls[name]) for name in ("alice", "alice", "bob", "carol")]
    for page in pages:
        await page.evaluate(JOIN)
    topic = live_host.last_pages[0].app.topic
    await live_host.until_joined(4, topic)
    alice, alice_tab2, bob, carol = pages
    await alice.evaluate(SEND, "from alice")
    for page in (alice_tab2, bob, carol):
        await wait_for_items(page, 1)
        assert await texts(page) == ["from alice"]
    await bob.evaluate(SEND, "from bob")  # a barrier: alice's own item would come first
    await wait_for_items(alice, 1)
    assert await texts(alice) == ["from bob"]
    assert await socket_items(alice) == 1


async def test_late_joiner_and_isolation_between_copies_and_chats_r12_r13(live_host, open_page):
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    first_topic = live_host.last_pages[0].app.topic
    chat = live_host.last_chat
    copy_urls = live_host.share(["alice", "bob"], chat=chat)
    other_urls = live_host.share(["alice", "bob"])
    outsiders = [await open_page(url) for url in (*copy_urls.values(), *other_urls.values())]
    for page in outsiders:
        await page.evaluate(JOIN)
    await alice.evaluate(SEND, "before the late tab")
    await wait_for_items(bob, 1)
    # A second tab of bob joins late: it must not see what was sent before.
    bob_url = live_host.url(live_host.registry.pages_of(live_host.registry.apps[
        first_topic.split("/")[2]])[1])
    late_bob = await open_page(bob_url)
    await late_bob.evaluate(JOIN)
    await live_host.until_joined(3, first_topic)
    await alice.evaluate(SEND, "after")
    await wait_for_items(late_bob, 1)
    assert await texts(late_bob) == ["after"]
    # Each outsider pair exchanges a marker: an item from alice would have come before it.
    for sender, receiver in ((outsiders[0], outsiders[1]), (outsiders[2], outsiders[3])):
        await sender.evaluate(SEND, "marker")
        await wait_for_items(receiver, 1)
        await receiver.evaluate(SEND, "marker back")
        await wait_for_items(sender, 1)
    for page in outsiders:
        assert await socket_items(page) == 1
        assert (await texts(page))[0].startswith("marker")


async def test_without_a_valid_invite_there_is_no_app_r14(live_host, browser):
    urls = live_host.share(["alice"])
    page_info = live_host.last_pages[0]
    context = await browser.new_context()
    page = await context.new_page()
    origin = live_host.origin(page_info)
    response = await page.goto(origin + "/")
    assert response.status == 403
    assert await page.evaluate("window.webxdc === undefined")
    response = await page.goto(urls["alice"].rsplit("/", 1)[0] + "/wrong-token")
    assert response.status == 403
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{live_host.port}/.webxdc-rt/socket", headers={
                "Host": f"{page_info.label}.localhost:{live_host.port}",
                "Connection": "Upgrade", "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
                ) as refused:
            assert refused.status == 403
    await context.close()


async def test_leave_tells_the_host_and_silences_the_channel_r15(live_host, open_page):
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    topic = live_host.last_pages[0].app.topic
    await bob.evaluate("() => { window.old = ch; ch.leave(); }")
    await live_host.until_joined(1, topic)
    thrown = await error_of(bob, "old.send(new Uint8Array(1))")
    assert thrown[0] == "Error"
    await bob.evaluate("() => old.setListener(record)")  # still never called
    await alice.evaluate(SEND, "nobody there")
    await bob.evaluate("() => { window.ch = window.webxdc.joinRealtimeChannel(); }")
    await live_host.until_joined(2, topic)
    await bob.evaluate(
        "() => ch.setListener(d => rx.push({text: 'new:' + new TextDecoder().decode(d)}))")
    await alice.evaluate(SEND, "hello again")
    await wait_for_items(bob, 1)
    assert await texts(bob) == ["new:hello again"]
    assert await socket_items(bob) == 1  # the host sent nothing while bob was away


async def test_per_sender_order_without_duplicates_r16(live_host, open_page):
    alice, bob, carol = await joined_pages(live_host, open_page, ["alice", "bob", "carol"])
    send_1000 = ("(prefix) => { for (let i = 0; i < 1000; i++) "
                 "ch.send(new TextEncoder().encode(prefix + i)); }")
    await alice.evaluate(send_1000, "a")
    await bob.evaluate(send_1000, "b")
    await wait_for_items(carol, 2000)
    received = await texts(carol)
    assert [t for t in received if t[0] == "a"] == [f"a{i}" for i in range(1000)]
    assert [t for t in received if t[0] == "b"] == [f"b{i}" for i in range(1000)]
    await wait_for_items(bob, 1000)
    assert await texts(bob) == [f"a{i}" for i in range(1000)]


async def test_a_closed_page_counts_as_leave_r17(live_host, open_page):
    alice, bob, carol = await joined_pages(live_host, open_page, ["alice", "bob", "carol"])
    topic = live_host.last_pages[0].app.topic
    await bob.close()
    await live_host.until_joined(2, topic)
    await alice.evaluate(SEND, "still here")
    await wait_for_items(carol, 1)
    assert await texts(carol) == ["still here"]


async def test_changing_the_array_after_send_changes_nothing_sent_r18(live_host, open_page):
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    await alice.evaluate("""() => {
        const data = new TextEncoder().encode("as sent");
        ch.send(data);
        data.fill(88);
        const view = new Uint8Array(new TextEncoder().encode("xxpartxx").buffer, 2, 4);
        ch.send(view);
        view.fill(89);
    }""")
    await wait_for_items(bob, 2)
    assert await texts(bob) == ["as sent", "part"]


async def test_after_a_lost_link_the_bridge_rejoins_and_sends_what_was_queued_r9_r17(
        live_host, open_page):
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    topic = live_host.last_pages[0].app.topic
    assert await live_host.host.disconnect(live_host.last_pages[0].label) == 1
    await alice.wait_for_function("window.__sockets[0].readyState === WebSocket.CLOSED")
    assert live_host.host.hub.joined_count(topic) == 1  # the lost link counted as leave
    # The channel object stays usable: items sent while the link is down are queued.
    await alice.evaluate("() => { for (const t of ['queued 1', 'queued 2']) "
                         "ch.send(new TextEncoder().encode(t)); }")
    await wait_for_items(bob, 2)
    assert await texts(bob) == ["queued 1", "queued 2"]
    assert await alice.evaluate("window.__sockets.length") == 2
    await bob.evaluate(SEND, "welcome back")
    await wait_for_items(alice, 1)
    assert await texts(alice) == ["welcome back"]


async def test_items_in_flight_across_leave_and_rejoin_are_dropped_r12(live_host, open_page):
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    # Bob's page is busy for 300 ms, then leaves and joins again in the same task: the item
    # Alice sends meanwhile reaches the page during the busy spell, but is handed to the
    # page only after the rejoin, and must not count as sent on the new channel.
    await bob.evaluate("""() => { setTimeout(() => {
        const start = Date.now();
        while (Date.now() - start < 300) {}
        ch.leave();
        window.ch = window.webxdc.joinRealtimeChannel();
        window.fresh = [];
        ch.setListener((d) => fresh.push(new TextDecoder().decode(d)));
    }, 0); }""")
    await alice.evaluate(SEND, "in flight")
    await bob.wait_for_function("window.fresh !== undefined && window.__socketItems === 1")
    await live_host.until_joined(2)
    await alice.evaluate(SEND, "after")
    await bob.wait_for_function("fresh.length === 1")
    assert await bob.evaluate("fresh") == ["after"]
    assert await texts(bob) == []


async def test_the_queue_while_the_link_is_down_is_bounded_r9(hosts, open_page):
    from webxdc_rt.host.app import HostSettings

    live_host = await hosts(HostSettings(bridge_max_pending_items=3))
    alice, bob = await joined_pages(live_host, open_page, ["alice", "bob"])
    warnings: list[str] = []
    alice.on("console", lambda message: warnings.append(message.text))
    await hold_link_down(alice, live_host)
    await alice.evaluate("() => { for (let i = 1; i <= 5; i++) "
                         "ch.send(new TextEncoder().encode('queued ' + i)); }")
    await let_link_up(alice)
    await wait_for_items(bob, 3)
    await bob.evaluate(SEND, "marker")  # alice is back: anything else queued came first
    await wait_for_items(alice, 1)
    await alice.evaluate(SEND, "after")
    await wait_for_items(bob, 4)
    assert await texts(bob) == ["queued 1", "queued 2", "queued 3", "after"]
    assert sum("queue for the host link is full" in text for text in warnings) == 2
