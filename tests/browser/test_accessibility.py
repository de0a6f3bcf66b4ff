"""Every page the project serves, checked as people use it: axe-core's WCAG 2.1 A and AA
rules in the light and the dark scheme, on a desktop and on a phone; the keyboard's focus
kept where the user was across refreshes and removals; news announced; on a phone no
sideways scrolling and targets of at least 24 px (44 px for the main actions)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from a11y import assert_accessible, assert_fits_a_phone, focused, phone_context
from peers import eventually
from playwright.async_api import Browser, Page
from test_home import chat_with_two_apps, open_home

from webxdc_rt.cli import example_path
from webxdc_rt.dev.simulator import Simulator

NOTIFY = "(notify) => webxdc.sendUpdate({payload: 1, notify}, '')"
POST = "(text) => webxdc.sendToChat({text, file: {name: text + '.txt', plainText: text}})"


async def app_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function("window.webxdc !== undefined")
    return page


# -- the home page -----------------------------------------------------------------------

async def test_the_home_page_meets_wcag_aa_in_both_schemes_and_on_a_phone(
        service, browser, tmp_path):
    links = await chat_with_two_apps(service, tmp_path)
    app = await app_page(browser, links["alice"]["apps"][0]["url"])
    await app.evaluate(POST, "minutes")
    await app.evaluate(NOTIFY, {links["bob"]["apps"][0]["self_addr"]: "your move"})
    for context in (await browser.new_context(), await phone_context(browser)):
        home = await open_home(context, links["bob"]["url"])
        await home.locator("#notifications li.unread").wait_for()
        await home.locator("#messages li a").wait_for()
        await home.locator("#problem").evaluate("(p) => { p.hidden = false; "
                                                "p.textContent = 'Could not reach'; }")
        await assert_accessible(home, "home page with news")
        await home.locator("#badge").click()
        await assert_accessible(home, "home page, news read")
        await context.close()


async def test_the_home_page_fits_a_phone(service, browser, tmp_path):
    links = await chat_with_two_apps(service, tmp_path)
    app = await app_page(browser, links["alice"]["apps"][0]["url"])
    await app.evaluate(POST, "a rather long name of a file that an app posted to the chat")
    context = await phone_context(browser)
    home = await open_home(context, links["bob"]["url"])
    await home.locator("#messages li a").wait_for()
    await assert_fits_a_phone(home, "#apps a, #share-form button, #share-file")
    await context.close()


async def test_the_keyboard_focus_stays_where_it_was_when_the_home_page_refreshes(
        service, browser, tmp_path):
    links = await chat_with_two_apps(service, tmp_path)
    bob_addr = links["bob"]["apps"][0]["self_addr"]
    app = await app_page(browser, links["alice"]["apps"][0]["url"])
    await app.evaluate(POST, "first")
    context = await browser.new_context()
    home = await open_home(context, links["bob"]["url"])
    download = home.locator("#messages li a")
    await download.wait_for()
    await download.focus()
    before = await focused(home)
    # News in every list: a message, a notification; the page rebuilds what changed.
    await app.evaluate(POST, "second")
    await app.evaluate(NOTIFY, {bob_addr: "your move"})
    await home.locator("#notifications li").wait_for()
    await home.locator("#messages li", has_text="second").wait_for()
    assert await focused(home) == before
    # The news is said politely, and unread is written, not only shown in bold.
    await home.wait_for_function(
        "document.querySelector('#news').textContent.includes('your move')")
    assert await home.locator("#news").get_attribute("aria-live") == "polite"
    assert "New" in await home.locator("#notifications li.unread").text_content()
    # Marking the news read takes the badge away: the focus goes to the notifications.
    await home.locator("#badge").focus()
    await home.keyboard.press("Enter")
    await home.locator("#badge").wait_for(state="hidden")
    assert await focused(home) == "notifications-title"
    await home.keyboard.press("Tab")
    assert await focused(home) != "body"
    await context.close()


# -- the dashboard -----------------------------------------------------------------------

@pytest.fixture
async def sketch_simulator() -> AsyncIterator[Simulator]:
    simulator = Simulator(example_path(), 3)
    await simulator.start()
    yield simulator
    await simulator.close()


async def open_dashboard(context, simulator: Simulator) -> Page:
    page = await context.new_page()
    response = await page.goto(simulator.dashboard_url)
    assert response is not None and response.ok
    for member in ("alice", "bob", "carol"):
        await eventually(lambda member=member: page.frame(name=member) is not None)
        frame = page.frame(name=member)
        assert frame is not None
        await frame.wait_for_function("document.querySelector('#people li') !== null")
    await page.locator("#log li").first.wait_for()
    return page


async def test_the_dashboard_meets_wcag_aa_with_its_peers_on_a_desktop_and_a_phone(
        browser, sketch_simulator):
    for context in (await browser.new_context(viewport={"width": 1400, "height": 900}),
                    await phone_context(browser)):
        page = await open_dashboard(context, sketch_simulator)
        await assert_accessible(page, "dashboard", frames=True)
        carol = page.locator("article.peer[data-member=carol]")
        await page.get_by_role("button", name="Faults of carol").click()
        assert await page.get_by_role("button", name="Faults of carol").get_attribute(
            "aria-expanded") == "true"
        await carol.locator("input[name=offline]").check()
        await carol.locator("button[type=submit]").click()
        await carol.locator(".faults", has_text="offline").wait_for()
        await assert_accessible(page, "dashboard with faults open")
        await context.close()


async def test_the_dashboard_fits_a_phone_and_one_peer_fills_it(browser, sketch_simulator):
    context = await phone_context(browser)
    page = await open_dashboard(context, sketch_simulator)
    await assert_fits_a_phone(page, "#add-peer")
    # The log is under the peers, not beside them.
    frames = await page.locator("#frames").bounding_box()
    log = await page.locator("#log-panel").bounding_box()
    assert frames is not None and log is not None and log["y"] >= frames["y"] + frames["height"]
    await page.get_by_role("button", name="Fill the screen with bob").click()
    bob = await page.locator("article.peer[data-member=bob] iframe").bounding_box()
    assert bob is not None and bob["width"] >= 380 and bob["height"] >= 600
    assert await page.locator("article.peer[data-member=alice]").is_hidden()
    assert await page.locator("#top").evaluate("(header) => header.inert")
    # Escape brings the others back; the focus stays on the button that was pressed.
    await page.keyboard.press("Escape")
    await page.locator("article.peer[data-member=alice]").wait_for()
    assert await focused(page) == "Fill the screen with bob"
    assert await page.get_by_role("button", name="Fill the screen with bob").get_attribute(
        "aria-pressed") == "false"
    await context.close()


async def test_the_dashboard_by_keyboard_alone(browser, sketch_simulator):
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await open_dashboard(context, sketch_simulator)
    # Each peer's controls say whose they are; joined is written, not only coloured.
    for member in ("alice", "bob", "carol"):
        for name in (f"Reload {member}", f"Faults of {member}", f"Remove {member}"):
            assert await page.get_by_role("button", name=name).count() == 1
    await page.locator("article.peer[data-member=alice] .state", has_text="joined").wait_for()
    # Removing a peer leaves the focus on the next peer's remove button.
    await page.get_by_role("button", name="Remove bob").focus()
    await page.keyboard.press("Enter")
    await page.locator("article.peer[data-member=bob]").wait_for(state="detached")
    # (the socket may take bob's card away before the command's answer moves the focus)
    await page.wait_for_function("document.activeElement !== document.body")
    assert await focused(page) == "Remove carol"
    # Enter in the partition field splits the peers.
    await page.locator("#partition").focus()
    await page.keyboard.type("alice | carol")
    await page.keyboard.press("Enter")
    await page.locator("article.peer[data-member=alice] .faults", has_text="group 1").wait_for()
    # The splitter between the peers and the log moves with the arrow keys.
    splitter = page.get_by_role("separator", name="Width of the log")
    width = (await page.locator("#log-panel").bounding_box() or {})["width"]
    await splitter.focus()
    await page.keyboard.press("ArrowLeft")
    await page.keyboard.press("ArrowLeft")
    wider = (await page.locator("#log-panel").bounding_box() or {})["width"]
    assert wider > width
    assert await splitter.get_attribute("aria-valuenow") == str(round(wider))
    await context.close()


# -- the bundled sketch app --------------------------------------------------------------

async def test_the_sketch_app_meets_wcag_aa_and_fits_a_phone_with_five_people(
        browser, sketch_simulator):
    for _ in range(2):
        sketch_simulator.add_peer()
    pages = []
    for member in ("bob", "carol", "dave", "erin"):
        pages.append(await app_page(browser, sketch_simulator.peer(member).url))
    context = await phone_context(browser)
    page = await context.new_page()
    await page.goto(sketch_simulator.peer("alice").url)
    await page.wait_for_function("document.querySelectorAll('#people li').length === 5")
    assert await page.locator("#status").get_attribute("role") == "status"
    await assert_accessible(page, "sketch with five people")
    await assert_fits_a_phone(page, "#clear")
    clear = await page.locator("#clear").bounding_box()
    assert clear is not None and clear["x"] + clear["width"] <= 390
    for other in pages:
        await other.context.close()
    await context.close()
