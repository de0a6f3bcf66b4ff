"""The bridge's estimate of the host's clock, in Chromium, on a page whose main thread is
busy while its socket opens (a page still loading on a loaded machine): the estimate may
only err towards keeping items, never towards dropping them, so the items such a page sends
reach the others and the items it receives are handed to its app; and once it has joined,
idle, its estimate is close again, so stale items are dropped as on any page."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page

from webxdc_rt.core.limits import DeliveryLimits
from webxdc_rt.host.app import HostSettings

BOUND_S = 2.0
BUSY_MS = 3000
"""Longer than the bound: on an estimate taken when the page got round to it, every item
the page stamps would look this much older than it is."""
BUSY_WHILE_OPENING = """(busy_ms) => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      // The socket opens and the hello arrives while the page is busy: both wait.
      const end = performance.now() + busy_ms;
      while (performance.now() < end) {}
    }
  };
}"""
SETUP = """() => {
  window.ch = window.webxdc.joinRealtimeChannel();
  window.got = [];
  ch.setListener((data) => got.push(new TextDecoder().decode(data)));
}"""
SEND = """(text) => ch.send(new TextEncoder().encode(text))"""
SEND_ALL = """(texts) => { for (const text of texts) ch.send(new TextEncoder().encode(text)); }"""


async def busy_and_other(hosts: Any, browser: Browser) -> tuple[Page, Page]:
    """Two members' pages of one app copy, joined: the first was busy while its socket
    opened."""
    live = await hosts(HostSettings(delivery=DeliveryLimits(max_item_age_s=BOUND_S)))
    urls = live.share(["busy", "other"])
    pages = {}
    for name in ("busy", "other"):
        # A context each: its own renderer process, so only the busy page is held up.
        context = await browser.new_context()
        page = pages[name] = await context.new_page()
        if name == "busy":
            await page.add_init_script(script=f"({BUSY_WHILE_OPENING})({BUSY_MS})")
        await page.goto(urls[name])
        await page.wait_for_function("window.webxdc !== undefined")
        await page.evaluate(SETUP)
    await live.until_joined(2, live.last_pages[0].app.topic)
    return pages["busy"], pages["other"]


async def test_a_page_busy_while_its_socket_opens_sends_and_receives_items(hosts, browser):
    busy, other = await busy_and_other(hosts, browser)

    await busy.evaluate(SEND, "from the busy page")
    await other.wait_for_function("got.includes('from the busy page')")
    await other.evaluate(SEND, "to the busy page")
    await busy.wait_for_function("got.includes('to the busy page')")
    await busy.evaluate(SEND, "again")
    await other.wait_for_function("got.includes('again')")
    assert await other.evaluate("got") == ["from the busy page", "again"]
    assert await busy.evaluate("got") == ["to the busy page"]


BLOCK_ON = """(bound_ms) => {
  ch.setListener((data) => {
    const text = new TextDecoder().decode(data);
    got.push(text);
    // Busy with this item for longer than the bound: what arrives meanwhile is stale.
    if (text === "block") {
      const end = performance.now() + bound_ms + 500;
      while (performance.now() < end) {}
    }
  });
}"""


async def test_once_it_has_joined_a_page_busy_while_its_socket_opened_drops_stale_items(
        hosts, browser):
    # Its hello gave a loose bound, as loose as it was busy; its join's answer, which came
    # when it was idle, narrowed it: items that reach it past the bound are dropped.
    busy, other = await busy_and_other(hosts, browser)
    await busy.evaluate(BLOCK_ON, BOUND_S * 1000)

    await other.evaluate(SEND_ALL, ["block", "stale 1", "stale 2"])
    await busy.wait_for_function("got.includes('block')")  # returns once the block is over
    await other.evaluate(SEND, "fresh")
    await busy.wait_for_function("got.includes('fresh')")
    assert await busy.evaluate("got") == ["block", "fresh"]
