"""What the bridge does with each frame from the host, in headless Chromium: refusals are shown
to the app's author in the console, and a frame it cannot read is skipped with a warning while
everything after it still arrives. Frames a real host never sends are put on the page's socket
by Playwright's WebSocket routing, between the page and a live host."""

from __future__ import annotations

import datetime
import json
import re

from peers import eventually
from playwright.async_api import Browser, ConsoleMessage, Page, WebSocketRoute

LISTEN = """async () => {
  window.updates = [];
  await window.webxdc.setUpdateListener((update) => updates.push(update.payload));
}"""
JOIN = """() => {
  window.items = [];
  window.ch = window.webxdc.joinRealtimeChannel();
  ch.setListener((data) => items.push(new TextDecoder().decode(data)));
}"""


class Console:
    """What a page wrote to its console and threw uncaught, recorded as it happens."""

    def __init__(self, page: Page) -> None:
        self.messages: list[tuple[str, str]] = []
        self.page_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    def _on_console(self, message: ConsoleMessage) -> None:
        self.messages.append((message.type, message.text))

    def of(self, kind: str, prefix: str = "webxdc-rt: ") -> list[str]:
        """The texts of `kind` ("error", "warning") that start with `prefix`."""
        return [text for type_, text in self.messages
                if type_ == kind and text.startswith(prefix)]


async def routed_page(browser: Browser, url: str) -> tuple[Page, list[WebSocketRoute]]:
    """Open an invite link in a fresh context whose WebSockets pass through a route that
    forwards every frame both ways; the routes are returned so a test can add its own."""
    context = await browser.new_context()
    page = await context.new_page()
    routes: list[WebSocketRoute] = []

    def route(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        routes.append(socket)

    await page.route_web_socket(re.compile(r"^wss?://"), route)
    response = await page.goto(url)
    assert response is not None and response.ok
    await page.wait_for_function("window.webxdc !== undefined")
    return page, routes


async def test_a_refused_update_is_shown_with_its_code_and_the_next_one_arrives(
        live_host, open_page):
    urls = live_host.share(["alice", "bob"])
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    console = Console(alice)
    for page in (alice, bob):
        await page.evaluate(LISTEN)
    await alice.evaluate(r"""() => webxdc.sendUpdate({payload: "\ud800"})""")
    await eventually(lambda: console.of("error") != [])
    await alice.evaluate("""() => webxdc.sendUpdate({payload: "fine"})""")
    for page in (alice, bob):
        await page.wait_for_function("updates.length === 1")
        assert await page.evaluate("updates") == ["fine"]
    errors = console.of("error")
    assert len(errors) == 1 and errors[0].startswith("webxdc-rt: bad-text: ")
    assert "surrogate" in errors[0]  # the host's reason, as it gave it
    assert console.page_errors == []


async def test_a_frame_the_bridge_cannot_read_is_skipped_with_a_warning(
        live_host, open_page, browser):
    urls = live_host.share(["alice", "bob"])
    alice, routes = await routed_page(browser, urls["alice"])
    bob = await open_page(urls["bob"])
    console = Console(alice)
    for page in (alice, bob):
        await page.evaluate(LISTEN)
        await page.evaluate(JOIN)
    await live_host.until_joined(2)
    bad_frames = {
        "not json {": "not JSON",
        "null": "not a JSON object",
        "[1, 2]": "not a JSON object",
        '{"kind": "update"}': "no string field 'type'",
        '{"type": "update", "listen": 1}': "update: 'update' is not an object",
        '{"type": "update", "listen": 1, "update": {"payload": 1}}':
            "update: 'update.serial' is not a non-negative integer",
        '{"type": "update-backlog-done"}': "update-backlog-done: 'listen'",
        '{"type": "joined", "epoch": "1"}': "joined: 'epoch'",
        '{"type": "joined", "epoch": 1, "time_ms": "soon"}': "joined: 'time_ms'",
        '{"type": "reply", "id": 1}': "reply: 'ok' is not a boolean",
        '{"type": "error", "message": "no code"}': "error: 'code' is not a string",
    }
    for frame in bad_frames:
        routes[0].send(frame)
    routes[0].send(json.dumps({"type": "some-later-kind", "data": None}))  # ignored quietly
    await eventually(lambda: len(console.of("warning")) >= len(bad_frames))
    await bob.evaluate("""() => {
        webxdc.sendUpdate({payload: "still heard"});
        ch.send(new TextEncoder().encode("item after"));
    }""")
    await alice.wait_for_function("updates.length === 1 && items.length === 1")
    assert await alice.evaluate("[updates, items]") == [["still heard"], ["item after"]]
    warnings = console.of("warning")
    assert len(warnings) == len(bad_frames)
    for warning, problem in zip(warnings, bad_frames.values(), strict=True):
        assert warning.startswith("webxdc-rt: a frame from the host was skipped: ")
        assert problem in warning
    assert console.page_errors == []


async def test_a_listener_that_throws_does_not_stop_later_frames(live_host, open_page):
    urls = live_host.share(["alice", "bob"])
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    console = Console(alice)
    await alice.evaluate("""async () => {
        window.updates = [];
        await webxdc.setUpdateListener((update) => {
            updates.push(update.payload);
            throw new Error("the app's own bug");
        });
        window.items = [];
        window.ch = webxdc.joinRealtimeChannel();
        ch.setListener((data) => {
            items.push(new TextDecoder().decode(data));
            throw new Error("the app's own bug");
        });
    }""")
    await bob.evaluate(JOIN)
    await live_host.until_joined(2)
    for n in (1, 2):
        await bob.evaluate(f"""() => {{
            webxdc.sendUpdate({{payload: {n}}});
            ch.send(new TextEncoder().encode("item {n}"));
        }}""")
        await alice.wait_for_function(f"updates.length === {n} && items.length === {n}")
    assert await alice.evaluate("[updates, items]") == [[1, 2], ["item 1", "item 2"]]
    await eventually(lambda: len(console.page_errors) == 4)  # each reported, as uncaught


async def test_rate_limited_is_shown_at_most_once_per_five_seconds(live_host, browser):
    urls = live_host.share(["alice"])
    alice, routes = await routed_page(browser, urls["alice"])
    console = Console(alice)
    await alice.clock.pause_at(datetime.datetime.now() + datetime.timedelta(minutes=1))
    rate_limited = json.dumps({"type": "error", "code": "rate-limited", "message": "slowed"})
    marker = json.dumps({"type": "error", "code": "marker", "message": "1"})
    for frame in (rate_limited, rate_limited, rate_limited, marker):
        routes[0].send(frame)
    await eventually(lambda: console.of("error") != [])
    assert console.of("warning") == ["webxdc-rt: rate-limited: slowed"]
    await alice.clock.fast_forward(4_900)
    routes[0].send(rate_limited)
    routes[0].send(marker.replace('"1"', '"2"'))
    await eventually(lambda: len(console.of("error")) == 2)
    assert len(console.of("warning")) == 1
    await alice.clock.fast_forward(100)
    routes[0].send(rate_limited)
    routes[0].send(marker.replace('"1"', '"3"'))
    await eventually(lambda: len(console.of("error")) == 3)
    assert console.of("warning") == ["webxdc-rt: rate-limited: slowed"] * 2
    assert console.of("error") == [f"webxdc-rt: marker: {n}" for n in (1, 2, 3)]
