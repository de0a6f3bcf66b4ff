#!/usr/bin/env python3
"""Makes the README's pictures of the pages on a phone (390x844, touch) in docs/: a member's
home page with news in the light and the dark scheme, the dev dashboard in the dark scheme
with the log under the peers, and the bundled sketch pad with five people.

    .venv/bin/python scripts/phone_screenshots.py [FOLDER]

Uses Debian's Chromium (WEBXDC_RT_CHROMIUM to use another) through Playwright.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, async_playwright

from webxdc_rt.cli import example_path
from webxdc_rt.dev.simulator import Simulator

OUTPUT = Path(__file__).resolve().parent.parent / "docs"
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                         "has_touch": True}
COMMAND = [sys.executable, "-m", "webxdc_rt"]


async def run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(*COMMAND, *args,
                                                stdout=asyncio.subprocess.PIPE)
    stdout, _ = await proc.communicate()
    assert proc.returncode == 0, args
    return stdout.decode()


async def app_page(context: BrowserContext, url: str) -> Any:
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function("window.webxdc !== undefined")
    return page


async def home_pictures(browser: Browser, output: Path) -> None:
    """bob's home page with a message and a notification from alice's sketch pad."""
    with tempfile.TemporaryDirectory() as data:
        host = await asyncio.create_subprocess_exec(
            *COMMAND, "host", "--data-dir", data, "--port", "0", "--json",
            stdout=asyncio.subprocess.PIPE)
        assert host.stdout is not None
        await host.stdout.readline()
        try:
            await run("chat", "create", "family", "--members", "alice,bob", "--data-dir", data)
            await run("app", "share", "family", str(example_path()), "--data-dir", data)
            links = {name: json.loads(await run("link", "show", "family", name, "--json",
                                                "--data-dir", data))
                     for name in ("alice", "bob")}
            sender = await browser.new_context()
            app = await app_page(sender, links["alice"]["apps"][0]["url"])
            await app.evaluate("""(bob) => {
                webxdc.sendToChat({text: "Tonight's plan", file: {name: "plan.txt",
                                                                 plainText: "8 pm"}});
                webxdc.sendUpdate({payload: {}, notify: {[bob]: "alice drew on the pad"}}, "");
            }""", links["bob"]["apps"][0]["self_addr"])
            for scheme in ("light", "dark"):
                context = await browser.new_context(color_scheme=scheme, **PHONE)
                home = await context.new_page()
                await home.goto(links["bob"]["url"])
                await home.locator("#notifications li.unread").wait_for()
                await home.locator("#messages li a").wait_for()
                await home.screenshot(path=str(output / f"phone-home-{scheme}.png"))
                await context.close()
            await sender.close()
        finally:
            host.terminate()
            await host.wait()


async def simulator_pictures(browser: Browser, output: Path) -> None:
    """The dashboard of three sketching peers, and the sketch pad of one of five people."""
    async with Simulator(example_path(), 3) as simulator:
        context = await browser.new_context(color_scheme="dark", **PHONE)
        page = await context.new_page()
        await page.goto(simulator.dashboard_url)
        await page.locator("article.peer[data-member=carol] .state",
                           has_text="joined").wait_for()
        await page.locator("#log li").first.wait_for()
        await page.screenshot(path=str(output / "phone-dashboard.png"))
        await context.close()
        for _ in range(2):
            simulator.add_peer()
        others = await browser.new_context()
        for member in ("bob", "carol", "dave", "erin"):
            await app_page(others, simulator.peer(member).url)
        context = await browser.new_context(**PHONE)
        pad = await app_page(context, simulator.peer("alice").url)
        await pad.wait_for_function("document.querySelectorAll('#people li').length === 5")
        box = await pad.locator("#pad").bounding_box()
        assert box is not None
        await pad.mouse.move(box["x"] + 60, box["y"] + 120)
        await pad.mouse.down()
        for step in range(40):
            await pad.mouse.move(box["x"] + 60 + step * 6, box["y"] + 120 + 40 * (step % 2))
        await pad.mouse.up()
        await pad.screenshot(path=str(output / "phone-sketch.png"))
        await context.close()
        await others.close()


async def main(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=os.environ.get("WEBXDC_RT_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu"])
        await home_pictures(browser, output)
        await simulator_pictures(browser, output)
        await browser.close()
    print(output)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
