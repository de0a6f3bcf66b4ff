"""The `webxdc-rt dev` dashboard in headless Chromium: every peer a frame on its own origin,
peers added, removed and reset from the dashboard, the live log, faults set from the
dashboard, and live reload of an app folder."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from peers import eventually
from playwright.async_api import Browser, Frame, Page

from webxdc_rt.dev.simulator import Simulator

PROBE = Path(__file__).parent.parent / "apps" / "probe"

JOIN = """() => {
  window.items = [];
  window.ch = window.webxdc.joinRealtimeChannel();
  ch.setListener((data) => items.push(new TextDecoder().decode(data)));
}"""
LISTEN = """async () => {
  window.updates = [];
  await window.webxdc.setUpdateListener((update) => updates.push(update.payload));
}"""


@pytest.fixture
async def app_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    shutil.copytree(PROBE, folder)
    return folder


@pytest.fixture
async def simulator(app_folder: Path) -> AsyncIterator[Simulator]:
    sim = Simulator(app_folder, 2)
    await sim.start()
    yield sim
    await sim.close()


@pytest.fixture
async def dashboard(browser: Browser, simulator: Simulator) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda exc: print(f"dashboard error: {exc}"))
    response = await page.goto(simulator.dashboard_url)
    assert response is not None and response.ok
    yield page
    await context.close()


async def peer_frame(page: Page, member: str) -> Frame:
    """The frame of `member`'s page, once its bridge is loaded."""
    await eventually(lambda: page.frame(name=member) is not None)
    frame = page.frame(name=member)
    assert frame is not None
    await frame.wait_for_function("window.webxdc !== undefined && window.webxdc.selfAddr")
    return frame


async def joined_frame(page: Page, simulator: Simulator, member: str) -> Frame:
    frame = await peer_frame(page, member)
    await frame.evaluate(JOIN)
    await eventually(lambda: member in simulator.joined())
    return frame


async def test_peers_are_frames_on_their_own_origins_with_name_and_self_addr(
        dashboard: Page, simulator: Simulator) -> None:
    alice = await peer_frame(dashboard, "alice")
    bob = await peer_frame(dashboard, "bob")
    assert alice.url.split("/")[2] != bob.url.split("/")[2]
    assert await alice.evaluate("window.webxdc.selfName") == "alice"
    await alice.evaluate("localStorage.setItem('k', 'alice')")
    assert await bob.evaluate("localStorage.getItem('k')") is None
    card = dashboard.locator("article.peer[data-member=bob]")
    assert await card.locator(".addr").text_content() == simulator.peer("bob").self_addr
    allow = await card.locator("iframe").get_attribute("allow")
    assert allow is not None and "camera" in allow and "clipboard-write" in allow


async def test_an_added_peer_joins_and_receives(dashboard: Page, simulator: Simulator) -> None:
    alice = await joined_frame(dashboard, simulator, "alice")
    await dashboard.click("#add-peer")
    carol = await joined_frame(dashboard, simulator, "carol")
    await alice.evaluate("ch.send(new TextEncoder().encode('hi carol'))")
    await carol.wait_for_function("items.includes('hi carol')")


async def test_a_removed_peer_is_seen_to_leave(dashboard: Page, simulator: Simulator) -> None:
    alice = await joined_frame(dashboard, simulator, "alice")
    await joined_frame(dashboard, simulator, "bob")
    await dashboard.click("article.peer[data-member=bob] .remove")
    await dashboard.locator("#log li[data-kind=leave]", has_text="bob left").wait_for()
    assert await dashboard.locator("article.peer[data-member=bob]").count() == 0
    await alice.evaluate("ch.send(new TextEncoder().encode('anyone?'))")
    await eventually(lambda: simulator.traffic.peer("alice").items_sent == 1)
    assert simulator.joined() == ["alice"]


async def test_the_log_shows_an_item_with_its_sender_receiver_and_size(
        dashboard: Page, simulator: Simulator) -> None:
    alice = await joined_frame(dashboard, simulator, "alice")
    bob = await joined_frame(dashboard, simulator, "bob")
    await alice.evaluate("ch.send(new TextEncoder().encode('12345'))")
    await bob.wait_for_function("items.length === 1")
    row = dashboard.locator("#log li[data-kind=item]")
    await row.wait_for()
    text = await row.text_content()
    assert text is not None and "alice → bob" in text and "5 B" in text and '"12345"' in text
    await dashboard.locator("#rates tr[data-member=bob] td:nth-child(8)",
                            has_text="1").wait_for()


async def test_offline_from_the_dashboard_loses_items_and_holds_updates(
        dashboard: Page, simulator: Simulator) -> None:
    alice = await joined_frame(dashboard, simulator, "alice")
    bob = await joined_frame(dashboard, simulator, "bob")
    await bob.evaluate(LISTEN)
    card = dashboard.locator("article.peer[data-member=bob]")
    await card.locator(".toggle-faults").click()
    await card.locator("input[name=offline]").check()
    await card.locator("button[type=submit]").click()
    await card.locator(".faults", has_text="offline").wait_for()
    await alice.evaluate("ch.send(new TextEncoder().encode('lost'))")
    await alice.evaluate("window.webxdc.sendUpdate({payload: 'held'}, '')")
    await eventually(lambda: sum(simulator.traffic.peer("bob").lost.values()) == 1)
    await dashboard.locator("#log li[data-kind=update]").wait_for()
    assert await bob.evaluate("updates") == [] and await bob.evaluate("items") == []
    await card.locator("input[name=offline]").uncheck()
    await card.locator("button[type=submit]").click()
    await bob.wait_for_function("updates.length === 1 && updates[0] === 'held'")
    assert await bob.evaluate("items") == []


async def test_a_partition_from_the_dashboard(dashboard: Page, simulator: Simulator) -> None:
    await dashboard.click("#add-peer")
    alice = await joined_frame(dashboard, simulator, "alice")
    bob = await joined_frame(dashboard, simulator, "bob")
    carol = await joined_frame(dashboard, simulator, "carol")
    await dashboard.fill("#partition", "alice | bob, carol")
    await dashboard.click("#apply-partition")
    await dashboard.locator("article.peer[data-member=alice] .faults",
                            has_text="group 1").wait_for()
    await alice.evaluate("ch.send(new TextEncoder().encode('from alice'))")
    await bob.evaluate("ch.send(new TextEncoder().encode('from bob'))")
    await carol.wait_for_function("items.includes('from bob')")
    await eventually(lambda: sum(simulator.traffic.peer("carol").lost.values()) == 1)
    assert await carol.evaluate("items") == ["from bob"]
    assert await alice.evaluate("items") == []


async def test_reset_starts_a_fresh_chat(dashboard: Page, simulator: Simulator) -> None:
    alice = await peer_frame(dashboard, "alice")
    await alice.evaluate(LISTEN)
    await alice.evaluate("localStorage.setItem('k', 'v')")
    await alice.evaluate("window.webxdc.sendUpdate({payload: 1}, '')")
    await alice.wait_for_function("updates.length === 1")
    old_url = simulator.peer("alice").url
    await dashboard.click("#reset")
    await eventually(lambda: simulator.peer("alice").url != old_url)

    await eventually(lambda: (f := dashboard.frame(name="alice")) is not None
                     and simulator.peer("alice").label in f.url)
    alice = await peer_frame(dashboard, "alice")
    assert await alice.evaluate("localStorage.getItem('k')") is None
    await alice.evaluate(LISTEN)
    assert await alice.evaluate("updates") == []


async def test_frames_reload_when_an_app_file_changes(
        dashboard: Page, simulator: Simulator, app_folder: Path) -> None:
    alice = await peer_frame(dashboard, "alice")
    await alice.evaluate("window.marker = 1; localStorage.setItem('kept', 'yes')")
    (app_folder / "data.txt").write_text("changed")
    # The frame navigates again: its new document has no marker, its origin's storage stays.
    await alice.wait_for_function("window.marker === undefined")
    alice = await peer_frame(dashboard, "alice")
    assert await alice.evaluate("localStorage.getItem('kept')") == "yes"


async def test_the_dashboard_needs_its_link(browser: Browser, simulator: Simulator) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    response = await page.goto(f"http://dashboard.sim.localhost:{simulator.port}/")
    assert response is not None and response.status == 403
    await context.close()


async def test_the_log_shows_chat_messages_with_their_files_and_refusals(
        dashboard: Page, simulator: Simulator) -> None:
    alice = await peer_frame(dashboard, "alice")
    await alice.evaluate("""window.webxdc.sendToChat(
        {text: 'look', file: {name: 'notes.txt', plainText: 'abc'}})""")
    row = dashboard.locator("#log li[data-kind=message]")
    await row.wait_for()
    text = await row.text_content()
    assert text is not None and "alice sendToChat" in text and "notes.txt (3 B)" in text
    await alice.evaluate("""() => {  // the host refuses what the bridge passes on
        try { window.webxdc.sendUpdate({payload: 1, info: 'x'.repeat(20000)}, ''); }
        catch (error) { return String(error); } }""")
    await dashboard.locator("#log li[data-kind=refused]").wait_for()


async def test_the_plugin_gives_browser_pages_beside_python_peers(
        webxdc_sim, browser: Browser) -> None:
    sim = await webxdc_sim(PROBE, peers=2)
    sim.set_faults("bob", latency_ms=50)
    page = await sim.page("alice", browser)
    await page.evaluate(JOIN)
    bob = await sim.member("bob")
    await eventually(lambda: sim.simulator.joined() == ["alice", "bob"])
    await page.evaluate("ch.send(new TextEncoder().encode('from a page'))")
    await eventually(lambda: bob.inbox == [b"from a page"])
    bob.channel.send(b"from python")
    await page.wait_for_function("items.includes('from python')")


async def test_one_peer_is_reloaded_alone(dashboard: Page, simulator: Simulator) -> None:
    alice = await peer_frame(dashboard, "alice")
    bob = await peer_frame(dashboard, "bob")
    await alice.evaluate("window.marker = 1")
    await bob.evaluate("window.marker = 1")
    await dashboard.click("article.peer[data-member=bob] .reload")
    await bob.wait_for_function("window.marker === undefined && window.webxdc !== undefined")
    assert await alice.evaluate("window.marker") == 1


async def test_the_dashboard_loads_with_no_warning_and_no_missing_file(
        browser: Browser, simulator: Simulator) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    complaints: list[str] = []
    page.on("console", lambda message: complaints.append(f"{message.type}: {message.text}")
            if message.type in ("warning", "error") else None)
    page.on("response", lambda response: complaints.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    await page.goto(simulator.dashboard_url)
    await peer_frame(page, "alice")
    await peer_frame(page, "bob")
    # Chromium asks for the icon on its own schedule: the page names one, and it is there.
    icon = await page.evaluate("document.querySelector('link[rel=icon]')?.href")
    status = await page.evaluate("async (url) => (await fetch(url)).status", icon) if icon else 0
    await context.close()
    assert complaints == []
    assert status == 200
