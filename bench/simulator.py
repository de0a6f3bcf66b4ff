#!/usr/bin/env python3
"""What the simulator's log costs: 4 peers sending 1,000 items/s of 1 kB in all (250 each,
every other peer receiving: 3,000 deliveries/s), against `webxdc-rt serve` with the same
members, and against `webxdc-rt dev` with its dashboard open in headless Chromium.

    .venv/bin/python bench/simulator.py [--seconds 10]

Reports the host process's CPU microseconds per delivery (utime+stime from /proc over the
measured window) and, with the dashboard, its renderer's main-thread busy share (Chromium's
`Performance.getMetrics` TaskDuration over the window). A benchmark, not a test: loopback
only, bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from webxdc_rt.client import connect

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "tests" / "apps" / "probe"
MEMBERS = ["alice", "bob", "carol", "dave"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def start(mode: str, data_dir: str) -> tuple[asyncio.subprocess.Process, dict]:
    command = [sys.executable, "-m", "webxdc_rt"]
    if mode == "serve":
        command += ["serve", str(PROBE), "--members", ",".join(MEMBERS), "--json", "--port",
                    "0", "--data-dir", data_dir]
    else:
        command += ["dev", str(PROBE), "--peers", "4", "--no-open", "--json"]
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    if mode == "serve":
        lines = [json.loads(await process.stdout.readline()) for _ in MEMBERS]
        return process, {"peers": lines}
    return process, json.loads(await process.stdout.readline())


async def run(mode: str, seconds: float, dashboard: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        process, info = await start(mode, data_dir)
        try:
            return await measure(process, info, seconds, dashboard)
        finally:
            process.terminate()
            await process.wait()


async def measure(process: asyncio.subprocess.Process, info: dict, seconds: float,
                  dashboard: bool) -> dict[str, float]:
    peers, received = [], [0]

    def count(_: bytes) -> None:
        received[0] += 1

    for peer_info in info["peers"]:
        peer = await connect(peer_info["url"])
        channel = peer.join_realtime_channel()
        channel.set_listener(count)
        await channel.joined()
        peers.append((peer, channel))
    playwright = browser = cdp = None
    if dashboard:
        from playwright.async_api import async_playwright

        playwright = await async_playwright().start()
        browser = await playwright.chromium.launch(
            executable_path=os.environ.get("WEBXDC_RT_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu"])
        page = await (await browser.new_context(viewport={"width": 1400, "height": 900})
                      ).new_page()
        await page.goto(info["dashboard"])
        await page.wait_for_selector("#rates tbody tr")
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Performance.enable")
    payload = bytes(1000)
    loop = asyncio.get_running_loop()
    per_tick = 10  # every 10 ms, 10 items in all: 1,000 items/s
    tick = 0.01

    async def send_for(duration: float) -> None:
        end = loop.time() + duration
        next_at = loop.time()
        turn = 0
        while loop.time() < end:
            for _ in range(per_tick):
                peers[turn % len(peers)][1].send(payload)
                turn += 1
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    await send_for(2.0)  # warm up
    task_before = await task_duration(cdp)
    cpu_before, wall_before, received_before = cpu_seconds(process.pid), time.monotonic(), \
        received[0]
    await send_for(seconds)
    cpu_after, wall_after, received_after = cpu_seconds(process.pid), time.monotonic(), \
        received[0]
    task_after = await task_duration(cdp)
    for peer, _ in peers:
        await peer.close()
    if browser is not None:
        await browser.close()
    if playwright is not None:
        await playwright.stop()
    deliveries = received_after - received_before
    wall = wall_after - wall_before
    result = {"deliveries_per_s": deliveries / wall,
              "host_cpu_us_per_delivery": (cpu_after - cpu_before) / deliveries * 1e6,
              "host_cpu_share": (cpu_after - cpu_before) / wall}
    if cdp is not None:
        result["dashboard_main_thread_busy"] = (task_after - task_before) / wall
    return result


async def task_duration(cdp: object | None) -> float:
    if cdp is None:
        return 0.0
    metrics = await cdp.send("Performance.getMetrics")  # type: ignore[attr-defined]
    return next(m["value"] for m in metrics["metrics"] if m["name"] == "TaskDuration")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for label, mode, dashboard in (("serve", "serve", False), ("dev, no dashboard", "dev", False),
                                   ("dev, dashboard open", "dev", True)):
        result = await run(mode, args.seconds, dashboard)
        print(f"{label:22} " + "  ".join(f"{k}={v:.3g}" for k, v in result.items()),
              flush=True)


if __name__ == "__main__":
    asyncio.run(main())
