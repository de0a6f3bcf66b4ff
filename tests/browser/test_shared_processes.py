"""Two pages in Chromium on two `webxdc-rt serve` processes that share one PostgreSQL
(`--store`) and one Redis (`--broker`): they exchange status updates, in one serial order,
and realtime items."""

from __future__ import annotations

from playwright.async_api import TimeoutError as PlaywrightTimeout
from serving import serving

LISTEN = """async () => {
  window.updates = [];
  await window.webxdc.setUpdateListener((update) => updates.push(update), 0);
}"""
JOIN = """() => {
  window.rx = [];
  window.ch = window.webxdc.joinRealtimeChannel();
  ch.setListener((data) => rx.push(new TextDecoder().decode(data)));
}"""


async def test_pages_on_two_processes_exchange_updates_and_items(
        tmp_path, postgres_server, redis_server, open_page):
    with serving(tmp_path, postgres_server, redis_server, count=2) as hosts:
        alice = await open_page(hosts[0].urls["alice"])
        bob = await open_page(hosts[1].urls["bob"])
        for page in (alice, bob):
            await page.evaluate(LISTEN)
        await alice.evaluate("() => webxdc.sendUpdate({payload: 'from alice'}, '')")
        await bob.evaluate("() => webxdc.sendUpdate({payload: 'from bob'}, '')")
        for page in (alice, bob):
            await page.wait_for_function("updates.length === 2", timeout=20_000)
        seen = [await page.evaluate("updates") for page in (alice, bob)]
        # The same updates in the same order (max_serial is the newest serial the sending
        # process knew, which may differ).
        assert [(u["serial"], u["payload"]) for u in seen[0]] == \
            [(u["serial"], u["payload"]) for u in seen[1]]
        assert sorted(u["payload"] for u in seen[0]) == ["from alice", "from bob"]
        assert seen[0][0]["serial"] < seen[0][1]["serial"]

        for page in (alice, bob):
            await page.evaluate(JOIN)
        # Items sent before bob's process has subscribed are not delivered (realtime
        # promises no delivery before joining): alice sends until one arrives.
        for attempt in range(100):
            await alice.evaluate("(n) => ch.send(new TextEncoder().encode('hi ' + n))",
                                 attempt)
            try:
                await bob.wait_for_function("rx.length > 0", timeout=500)
                break
            except PlaywrightTimeout:
                continue
        else:
            raise AssertionError("no realtime item crossed between the processes")
        await bob.evaluate("() => ch.send(new TextEncoder().encode('back'))")
        await alice.wait_for_function("rx.includes('back')", timeout=20_000)
