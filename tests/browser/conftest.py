"""Browser fixtures: Debian's headless Chromium driven by Playwright (never a downloaded one)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = os.environ.get("WEBXDC_RT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# Counts the binary WebSocket messages a page receives, from outside the bridge, so tests
# can tell "the item arrived and was dropped" from "the item has not arrived yet".
COUNT_SOCKET_ITEMS = """
(() => {
  const Native = window.WebSocket;
  window.__socketItems = 0;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      this.addEventListener("message", (event) => {
        if (typeof event.data !== "string") window.__socketItems += 1;
      });
    }
  };
})();
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install the Debian package 'chromium'")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def launch_browser() -> AsyncIterator[Callable[[list[str]], Awaitable[Browser]]]:
    """Launches Debian's Chromium with extra command-line arguments; closed after the test."""
    async with async_playwright() as playwright:
        launched: list[Browser] = []

        async def launch(extra_args: list[str]) -> Browser:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS + extra_args)
            launched.append(browser)
            return browser

        yield launch
        for browser in launched:
            await browser.close()


@pytest.fixture
def open_page(browser: Browser):
    """Open an invite link in the shared browser context; return the app's page."""

    context_holder: list = []

    async def opener(url: str, path: str | None = None) -> Page:
        if not context_holder:
            context = await browser.new_context()
            await context.add_init_script(COUNT_SOCKET_ITEMS)
            context_holder.append(context)
        page = await context_holder[0].new_page()
        page.on("pageerror", lambda exc: print(f"page error: {exc}"))
        response = await page.goto(url)
        assert response is not None and response.ok, f"{url}: {response and response.status}"
        if path is not None:
            await page.goto(page.url.rstrip("/") + path)
        await page.wait_for_function("window.webxdc !== undefined")
        return page

    return opener
