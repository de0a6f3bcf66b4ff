"""Debian's headless Chromium driven over a bare DevTools Protocol connection.

aiohttp's WebSocket client and a handful of commands (Target.* to open pages, each in a
browser context of its own so that no two share a renderer process; Runtime.evaluate to run
script in them). No domain that reports events is enabled: in particular not Network, which
(like Playwright) copies every WebSocket frame of the page and so distorts saturation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from hosts import CHROMIUM, pinned

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--mute-audio", "--remote-debugging-port=0",
    # Pages of a headless browser count as hidden; without these their timers and tasks
    # would be throttled.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)


class PageError(RuntimeError):
    """A script evaluated in a page threw, or the page could not be opened."""


class Cdp:
    """One DevTools Protocol connection to the browser: commands out, replies matched by id.
    Pages are reached through flat sessions on it; events are not asked for and ignored."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 ) -> None:
        self.http = http
        self.ws = ws
        self.last_id = 0
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str) -> Cdp:
        """The connection to the browser's DevTools endpoint (`ws://...`)."""
        http = aiohttp.ClientSession()
        try:
            return cls(http, await http.ws_connect(url, max_msg_size=0))
        except BaseException:
            await http.close()
            raise

    async def close(self) -> None:
        """Stops reading and closes the connection."""
        self.reader.cancel()
        await self.http.close()

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                reply = json.loads(message.data)
                future = self.waiting.pop(reply.get("id"), None)
                if future is None or future.done():
                    continue
                if "error" in reply:
                    future.set_exception(PageError(reply["error"].get("message", reply)))
                else:
                    future.set_result(reply.get("result", {}))
        finally:
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("the browser closed its connection"))

    async def call(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        """Sends one command (to a page when `session` is given) and returns its result."""
        self.last_id += 1
        command: dict[str, Any] = {"id": self.last_id, "method": method, "params": params or {}}
        if session is not None:
            command["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[self.last_id] = future
        await self.ws.send_str(json.dumps(command))
        return await future


@dataclass
class Page:
    """One tab in a browser context of its own, with the benchmark app loaded."""

    cdp: Cdp
    context: str
    session: str

    @classmethod
    async def open(cls, cdp: Cdp, url: str, timeout_s: float = 20) -> Page:
        """Opens `url` in a new browser context; returns once `window.bench` exists there."""
        context = (await cdp.call("Target.createBrowserContext"))["browserContextId"]
        target = (await cdp.call("Target.createTarget",
                                 {"url": url, "browserContextId": context}))["targetId"]
        session = (await cdp.call("Target.attachToTarget",
                                  {"targetId": target, "flatten": True}))["sessionId"]
        page = cls(cdp, context, session)
        give_up = time.monotonic() + timeout_s
        while True:  # the invite redirects; evaluating during a navigation may fail
            with contextlib.suppress(PageError):
                if await page.evaluate("typeof window.bench === 'object'"):
                    return page
            if time.monotonic() > give_up:
                raise PageError(f"{url}: the benchmark app did not load")
            await asyncio.sleep(0.1)

    async def evaluate(self, expression: str) -> Any:
        """The value of `expression` in the page, promises awaited; PageError if it threw."""
        result = await self.cdp.call("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True,
        }, self.session)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise PageError(text)
        return result["result"].get("value")

    async def run(self, function: str, **arguments: Any) -> Any:
        """`window.bench[function](arguments)` in the page, awaited."""
        return await self.evaluate(f"window.bench.{function}({json.dumps(arguments)})")

    async def close(self) -> None:
        """Closes the page with its browser context."""
        await self.cdp.call("Target.disposeBrowserContext", {"browserContextId": self.context})


class Chromium:
    """Debian's headless Chromium with a fresh profile, in a process group of its own so
    that stopping it stops every process it started."""

    def __init__(self, work: Path, cpu: str | None) -> None:
        self.profile = work / "chromium-profile"
        self.process = subprocess.Popen(
            pinned([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                    "about:blank"], cpu),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(work / "chromium.log", "ab"), start_new_session=True)

    def devtools_url(self, timeout_s: float = 30) -> str:
        """The browser's DevTools WebSocket URL, from the profile's DevToolsActivePort."""
        active = self.profile / "DevToolsActivePort"
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            if self.process.poll() is not None:
                raise RuntimeError("chromium exited at start; see chromium.log")
            lines = active.read_text().split("\n") if active.exists() else []
            if len(lines) >= 2 and lines[1]:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port")

    @staticmethod
    def version() -> str:
        """What `chromium --version` says."""
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True,
                              check=False).stdout.strip()

    def stop(self) -> None:
        """SIGTERM to every process of the browser, SIGKILL after 5 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
