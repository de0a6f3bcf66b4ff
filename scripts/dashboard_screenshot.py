#!/usr/bin/env python3
"""Makes docs/dashboard.png, the README's picture of `webxdc-rt dev`: the bundled sketch pad
with three peers, one with faults, strokes drawn in two frames, and the log beside them.

    .venv/bin/python scripts/dashboard_screenshot.py [OUTPUT]

Uses Debian's Chromium (WEBXDC_RT_CHROMIUM to use another) through Playwright.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from playwright.async_api import Page, async_playwright

from webxdc_rt.cli import example_path
from webxdc_rt.dev.faults import PeerFaults
from webxdc_rt.dev.simulator import Simulator

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"


async def draw(page: Page, member: str, offset: int) -> None:
    box = await page.locator(f"article.peer[data-member={member}] iframe").bounding_box()
    assert box is not None
    x, y = box["x"] + 60 + offset, box["y"] + 160  # below the sketch pad's header
    await page.mouse.move(x, y)
    await page.mouse.down()
    for step in range(60):
        await page.mouse.move(x + step * 4, y + 60 + 50 * ((step // 10) % 2), steps=2)
    await page.mouse.up()


async def main(output: Path) -> None:
    async with Simulator(example_path(), 3) as simulator, async_playwright() as playwright:
        simulator.set_faults("carol", PeerFaults(latency_ms=120, jitter_ms=30,
                                                 loss_percent=5, seed=1))
        browser = await playwright.chromium.launch(
            executable_path=os.environ.get("WEBXDC_RT_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu"])
        page = await browser.new_page(viewport={"width": 1600, "height": 900})
        await page.goto(simulator.dashboard_url)
        for member in ("alice", "bob", "carol"):
            frame = page.frame(name=member)
            while frame is None:
                await asyncio.sleep(0.05)
                frame = page.frame(name=member)
            await frame.wait_for_load_state()
        await page.locator("#log li").first.wait_for()
        await draw(page, "alice", 0)
        await draw(page, "bob", 40)
        await page.wait_for_timeout(600)  # a picture, not a test: two batches of the log
        output.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(output))
        await browser.close()
    print(output)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
