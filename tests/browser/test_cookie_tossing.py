"""A cookie one page sets for the whole shared domain locks no other page out, in Chromium.

Chromium refuses `Domain=localhost` (each `<label>.localhost` is a site of its own), so
pages under the default domain cannot reach one another's cookies at all. Under a shared
domain (`--domain apps.example.test` here, mapped to this machine) and in `webxdc-rt dev`
(`sim.localhost`) it takes such a cookie and sends it to every sibling origin beside, and
after, the sibling's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from peers import eventually
from playwright.async_api import Browser, BrowserContext, Page

from webxdc_rt.dev.simulator import Simulator
from webxdc_rt.host.app import HostSettings

PROBE = Path(__file__).parent.parent / "apps" / "probe"
DOMAIN = "apps.example.test"


def toss(domain: str) -> str:
    """The script a hostile app runs: a cookie of the host's name for the whole domain."""
    return f'document.cookie = "webxdc_rt=x; Domain={domain}; Path=/"'


async def tossed_cookie_is_held(context: BrowserContext, domain: str) -> bool:
    """Whether the browser took the tossed cookie (so the test tests something)."""
    return any(cookie["domain"] == "." + domain and cookie["value"] == "x"
               for cookie in await context.cookies())


async def reloads_and_joins(page: Page) -> None:
    """The page loads again with its bridge, and its socket reaches the host."""
    response = await page.reload()
    assert response is not None and response.status == 200
    await page.wait_for_function("window.webxdc !== undefined")
    await page.evaluate("window.webxdc.joinRealtimeChannel()")


async def test_an_app_page_cannot_lock_its_member_out_of_other_pages_under_a_shared_domain(
        hosts, launch_browser) -> None:
    live = await hosts(HostSettings(domain=DOMAIN))
    honest = live.share(["alice", "mallory"])
    honest_topic = live.last_pages[0].app.topic
    hostile = live.share(["alice", "mallory"], chat=live.last_chat)  # mallory's app
    browser: Browser = await launch_browser([f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1"])
    context = await browser.new_context()  # alice's browser
    page = await context.new_page()
    assert (await page.goto(honest["alice"])).ok
    hostile_page = await context.new_page()
    assert (await hostile_page.goto(hostile["alice"])).ok
    await hostile_page.evaluate(toss(DOMAIN))
    assert await tossed_cookie_is_held(context, DOMAIN)
    await reloads_and_joins(page)
    await live.until_joined(1, honest_topic)


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    sim = Simulator(PROBE, 2)
    await sim.start()
    yield sim
    await sim.close()


async def test_in_dev_a_peer_cannot_lock_out_the_dashboard_or_another_peer(
        browser: Browser, simulator: Simulator) -> None:
    context = await browser.new_context()
    pages = {}
    for name, url in (("dashboard", simulator.dashboard_url),
                      ("bob", simulator.peer("bob").url), ("alice", simulator.peer("alice").url)):
        pages[name] = await context.new_page()
        assert (await pages[name].goto(url)).ok
    await pages["alice"].evaluate(toss("sim.localhost"))
    assert await tossed_cookie_is_held(context, "sim.localhost")
    await reloads_and_joins(pages["bob"])
    await eventually(lambda: "bob" in simulator.joined())
    response = await pages["dashboard"].reload()
    assert response is not None and response.status == 200
    assert await pages["dashboard"].evaluate(
        "fetch('/api/state').then((response) => response.status)") == 200
