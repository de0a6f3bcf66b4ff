"""Overload in Chromium: a page flooding its channel, a slow page, and an honest page. The
slow page keeps its link and its status updates, gets the honest page's items, and nothing
it gets is older than the host's latency bound."""

from __future__ import annotations

from conftest import COUNT_SOCKET_ITEMS
from peers import eventually

from webxdc_rt.core.limits import DeliveryLimits, RealtimeLimits
from webxdc_rt.host.app import HostSettings

BOUND_S = 2.0
CLOCK_SLACK_S = 0.5
"""How far an item's age in the browser's clock may exceed the bound: the sender stamps it by
the host's clock as read after it dialled, and the receiver's bridge ages it by that clock as
read when its hello came, so each may count the item younger than it is by as long as its
link took to open (this process's event loop, a busy machine), never older."""
UNLIMITED = RealtimeLimits(send_items_per_s=1e6, send_items_burst=1_000_000,
                           send_bytes_per_s=1e10, send_bytes_burst=10_000_000_000)
"""Send limits that do not bind, so that only the receivers' pace decides."""

# Items carry their sender's mark, a number and the time they were sent; every page of one
# browser shares the clock of `performance.timeOrigin + performance.now()`.
SETUP = """(slowMs) => {
  window.items = [];
  window.updates = [];
  window.ch = window.webxdc.joinRealtimeChannel();
  window.stamp = (mark, seq, size) => {
    const bytes = new Uint8Array(size);
    const view = new DataView(bytes.buffer);
    view.setUint8(0, mark.charCodeAt(0));
    view.setUint32(1, seq);
    view.setFloat64(5, performance.timeOrigin + performance.now());
    return bytes;
  };
  ch.setListener((data) => {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const age = performance.timeOrigin + performance.now() - view.getFloat64(5);
    items.push([String.fromCharCode(view.getUint8(0)), view.getUint32(1), age / 1000]);
    const end = performance.now() + slowMs;   // the app's work on each item
    while (performance.now() < end) {}
  });
  return window.webxdc.setUpdateListener((update) => updates.push(update.payload));
}"""
FLOOD = """async (seconds) => {
  let sent = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {   // as fast as send() returns, yielding now and then
    for (let i = 0; i < 200; i++) ch.send(stamp("F", sent++, 4000));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return sent;
}"""
HONEST = """async () => {   // 20 items/s for 3 s, and a status update with every 6th
  for (let seq = 0; seq < 60; seq++) {
    ch.send(stamp("H", seq, 100));
    if (seq % 6 === 0) window.webxdc.sendUpdate({ payload: seq }, "");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}"""


async def test_a_flood_costs_a_slow_page_neither_its_link_nor_its_updates_nor_fresh_items(
        hosts, browser):
    live = await hosts(HostSettings(realtime=UNLIMITED,
                                    delivery=DeliveryLimits(max_item_age_s=BOUND_S)))
    urls = live.share(["flood", "honest", "slow"])
    pages = {}
    for name in ("flood", "honest", "slow"):
        # A context each: its own renderer process, so the slow page slows only itself.
        context = await browser.new_context()
        await context.add_init_script(COUNT_SOCKET_ITEMS)
        page = pages[name] = await context.new_page()
        await page.goto(urls[name])
        await page.wait_for_function("window.webxdc !== undefined")
        await page.evaluate(SETUP, 3 if name == "slow" else 0)
    topic = live.last_pages[0].app.topic
    await live.until_joined(3, topic)
    flood, honest, slow = pages["flood"], pages["honest"], pages["slow"]

    flooding = flood.evaluate(FLOOD, 4)
    await honest.evaluate(HONEST)
    flooded = await flooding

    await slow.wait_for_function("updates.length === 10", timeout=30_000)
    await slow.wait_for_function("items.some(([m, seq]) => m === 'H' && seq === 59)",
                                 timeout=30_000)
    items = await slow.evaluate("items")
    assert await slow.evaluate("window.__sockets.length") == 1      # never reconnected
    honest_seen = [seq for mark, seq, _ in items if mark == "H"]
    assert honest_seen == sorted(honest_seen) and len(honest_seen) >= 54   # 90%
    flood_seen = [seq for mark, seq, _ in items if mark == "F"]
    assert flood_seen == sorted(set(flood_seen)) and len(flood_seen) < flooded
    # Bounded: without the bound the backlog of a receiver this slow ages by seconds.
    assert max(age for _, _, age in items) <= BOUND_S + CLOCK_SLACK_S
    assert await slow.evaluate("updates") == list(range(0, 60, 6))
    slow_label = live.last_pages[2].label
    await eventually(lambda: sum(s.dropped.items for s in live.host.connection_stats()
                                 if s.page == slow_label) > 0)
    print(f"flood sent {flooded}, the slow page got {len(flood_seen)} of them and "
          f"{len(honest_seen)}/60 honest items, the oldest "
          f"{max(age for _, _, age in items):.2f} s old")
