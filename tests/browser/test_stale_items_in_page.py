"""The age bound in the bridge, in Chromium: a page whose main thread is busy for longer
than the bound drops the items that reach it too old (by their sender's stamp, on the
host's clock) instead of handing them to the app's listener, and gets fresh ones."""

from __future__ import annotations

from webxdc_rt.core.limits import DeliveryLimits
from webxdc_rt.host.app import HostSettings

BOUND_S = 2.0
"""Long enough for a fresh item to cross from one page to the other on a loaded machine
(two renderer processes, and the host in the test's process, which a garbage collection of
a big test session can hold up for over a second)."""
SETUP = """(bound_ms) => {
  window.ch = window.webxdc.joinRealtimeChannel();
  window.got = [];
  const decode = (data) => new TextDecoder().decode(data);
  ch.setListener((data) => {
    got.push(decode(data));
    // The app is busy with this item for longer than the bound: what arrives meanwhile
    // is stale.
    if (decode(data) === "block") {
      const end = performance.now() + bound_ms + 500;
      while (performance.now() < end) {}
    }
  });
}"""
SEND = """(texts) => { for (const text of texts) ch.send(new TextEncoder().encode(text)); }"""


async def test_items_that_reach_a_busy_page_past_the_bound_are_dropped_fresh_ones_not(
        hosts, browser):
    live = await hosts(HostSettings(delivery=DeliveryLimits(max_item_age_s=BOUND_S)))
    urls = live.share(["sender", "receiver"])
    pages = {}
    warnings: list[str] = []
    for name in ("sender", "receiver"):
        # A context each: its own renderer process, so only the receiver is held up.
        context = await browser.new_context()
        page = pages[name] = await context.new_page()
        page.on("console", lambda message: warnings.append(message.text))
        await page.goto(urls[name])
        await page.wait_for_function("window.webxdc !== undefined")
        await page.evaluate(SETUP, BOUND_S * 1000)
    await live.until_joined(2, live.last_pages[0].app.topic)
    sender, receiver = pages["sender"], pages["receiver"]

    await sender.evaluate(SEND, ["block", *(f"stale {n}" for n in range(5))])
    await receiver.wait_for_function("got.includes('block')")  # returns once it is done
    await sender.evaluate(SEND, ["fresh"])
    await receiver.wait_for_function("got.includes('fresh')")
    assert await receiver.evaluate("got") == ["block", "fresh"]
    assert any(f"realtime item(s) dropped so far: older than {BOUND_S * 1000:.0f} ms" in text
               for text in warnings)
