"""Faults on a page's link to the host, for browser tests."""

from __future__ import annotations

from playwright.async_api import Page


async def hold_link_down(page: Page, live_host) -> None:
    """Cut the page's link and keep it down until `let_link_up`: meanwhile the bridge's
    reconnects reach an address the host refuses, however fast they come."""
    await page.evaluate("""() => {
      window.__RealSocket = window.WebSocket;
      window.WebSocket = class extends window.__RealSocket {
        constructor(url, ...rest) { super(url.replace("/socket", "/held"), ...rest); }
      };
    }""")
    await live_host.host.disconnect(live_host.last_pages[0].label)
    await page.wait_for_function("window.__sockets[0].readyState === WebSocket.CLOSED")


async def let_link_up(page: Page) -> None:
    """The bridge's next reconnect reaches the host again."""
    await page.evaluate("() => { window.WebSocket = window.__RealSocket; }")
