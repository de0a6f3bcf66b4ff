#!/usr/bin/env python3
"""Browser-to-browser realtime benchmark: two pages of one app in headless Chromium, talking
through each host's own bridge, webxdc-rt side by side with webxdc-dev 0.21.0, on loopback.

    python bench/browser.py [--json] [--quick] [--repeat N] [--hosts webxdc-rt,webxdc-dev]
                            [--sizes 100,4000,128000] [--flood-s 5] [--pin]

It installs what it needs on first run (the project's .venv, webxdc-dev from the npm
registry into bench/node, Debian's chromium) and re-runs itself inside the virtual
environment. The app is bench/browser_app: its index.html loads sockets.js (which counts
the WebSockets the bridge opens and how they closed, without touching frames), the host's
webxdc.js, then bench.js (the phases). Chromium is driven over a bare DevTools connection
(bench/cdp.py: Runtime.evaluate only; no Network domain, no Playwright, both of which copy
every WebSocket frame). Each page gets its own browser context, so the two never share a
renderer process.

For each payload size (100, 4,000 and 128,000 bytes) the hosts take turns; each host is
started fresh, page A sends and page B receives:
1. throughput: A keeps a window of items in flight (sent but not yet acknowledged; B sends
   A an acknowledgement over the channel every window/4 items); items B receives per
   second over the run minus its first half second,
2. latency: A sends at a steady rate (500 items/s, 100/s at 128,000 bytes, as in
   bench/realtime.py; a quarter of the host's throughput if that is lower); p50 / p99 of the
   age of each item when B's listener gets it, from A's timestamp in the payload
   (performance.timeOrigin + performance.now(), one clock for all pages of the machine),
3. flood: A calls send() as fast as it returns for 5 s, yielding to its event loop every
   10 ms (only while its own socket holds over 256 MiB unsent does it wait, reported as
   "held", or Chromium would buffer until the renderer runs out of memory; a bridge that
   queues every item reaches it within a second at 4,000 and 128,000 bytes); then B is
   given until nothing more arrives (or 45 s). Reported: items A sent per second, items B
   received per second during the flood, items lost (sent minus received), the age of the
   oldest item B received, how long the backlog took to drain after the flood, and the
   WebSockets B's bridge opened again (reconnects) with the close codes that preceded them.
webxdc-rt's per-page send limits are raised (`--limit`) so that they do not bind; every other
setting is its default. Host and Chromium share the cores (`--pin`: the host on core 0,
Chromium's processes on core 1, which then limits them). On two cores the whole is CPU-bound
(Chromium's network service, both renderers and the host), so the report also says how much
CPU other processes and the hypervisor took while measuring (bench/cpu_share.py); with more
than a few percent, the figures are low and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hosts
from cdp import Cdp, Chromium, Page
from cpu_share import CpuShare
from hosts import Running, ensure_environment
from realtime import SIZES, STEADY_RATE

APP = hosts.BENCH / "browser_app"
HOSTS: dict[str, Callable[..., Running]] = {
    "webxdc-rt": hosts.start_webxdc_rt, "webxdc-dev": hosts.start_webxdc_dev}
HOST_CPU, BROWSER_CPU = "0", "1"

THROUGHPUT_WINDOW_BYTES = 4 * 1024 * 1024
"""Bytes the throughput phase keeps in flight; the window in items is this over the item
size, between 8 and 256 items."""
WARM_UP_S = 0.5
"""The start of the throughput phase that is not counted (the window filling up)."""
FLOOD_BUFFER_CAP = 256 * 1024 * 1024
"""Unsent bytes in the flooding page's socket above which it waits instead of sending."""
QUIET_S = 1.5
"""A phase is over when its items all arrived, or none has for this long and the sender's
socket has nothing left to send."""


# -- the phases ---------------------------------------------------------------------------

PHASE_HANDSHAKE, PHASE_THROUGHPUT, PHASE_LATENCY, PHASE_FLOOD = 1, 2, 3, 4


async def wait_for_delivery(receiver: Page, sender: Page, expected: int, cap_s: float) -> bool:
    """Until `expected` items arrived, or none has for QUIET_S and the sender has nothing
    left to send, or `cap_s` passed; whether the phase ended before the cap."""
    give_up = time.monotonic() + cap_s
    while time.monotonic() < give_up:
        progress = await receiver.run("progress")
        if progress["count"] >= expected:
            return True
        last = progress["lastArrivalAt"]
        quiet_ms = progress["now"] - last if last is not None else float("inf")
        if quiet_ms >= QUIET_S * 1000 and await sender.run("bufferedAmount") == 0:
            return True
        await asyncio.sleep(0.1)
    return False


async def throughput(sender: Page, receiver: Page, size: int, args: argparse.Namespace,
                     ) -> dict[str, Any]:
    """Phase 1: items/s through a window of items in flight, acknowledged over the channel."""
    window = args.window or max(8, min(256, THROUGHPUT_WINDOW_BYTES // size))
    await receiver.run("listen", phase=PHASE_THROUGHPUT, ackEvery=max(1, window // 4))
    sent = await sender.run("windowed", phase=PHASE_THROUGHPUT, size=size, window=window,
                            durationMs=args.throughput_s * 1000)
    drained = await wait_for_delivery(receiver, sender, sent["sent"], cap_s=10)
    got = await receiver.run("finish", **{"from": sent["startedAt"] + WARM_UP_S * 1000,
                                          "to": sent["endedAt"]})
    return {"window": window, "items_per_s": got["windowPerS"],
            "mb_per_s": got["windowPerS"] * size / 1e6, "reconnects": got["socketsOpened"],
            "lost": sent["sent"] - got["delivered"] if drained else None}


async def latency(sender: Page, receiver: Page, size: int, rate: float,
                  args: argparse.Namespace) -> dict[str, Any]:
    """Phase 2: p50 / p99 age of items sent at a steady `rate`."""
    duration_s = min(30.0, max(args.latency_s, 20 / rate))  # at least 20 samples
    await receiver.run("listen", phase=PHASE_LATENCY)
    sent = await sender.run("paced", phase=PHASE_LATENCY, size=size, rate=rate,
                            durationMs=duration_s * 1000)
    await wait_for_delivery(receiver, sender, sent["sent"], cap_s=10)
    got = await receiver.run("finish")
    return {"rate_per_s": rate, "samples": got["delivered"], "sent": sent["sent"],
            "lost": sent["sent"] - got["delivered"],
            "p50_ms": got["ageP50Ms"], "p99_ms": got["ageP99Ms"]}


async def flood(sender: Page, receiver: Page, size: int, args: argparse.Namespace,
                ) -> dict[str, Any]:
    """Phase 3: send() as fast as it returns; what arrives, how late, and reconnects."""
    await receiver.run("listen", phase=PHASE_FLOOD)
    sent = await sender.run("flood", phase=PHASE_FLOOD, size=size, durationMs=args.flood_s * 1000,
                            maxBufferedBytes=FLOOD_BUFFER_CAP)
    drained = await wait_for_delivery(receiver, sender, sent["sent"], cap_s=args.drain_s)
    left_unsent = await sender.run("bufferedAmount")
    got = await receiver.run("finish", **{"from": sent["startedAt"], "to": sent["endedAt"]})
    flood_s = (sent["endedAt"] - sent["startedAt"]) / 1000
    last = got["lastArrivalAt"]
    return {
        "sent": sent["sent"], "sent_per_s": sent["sent"] / flood_s,
        "delivered": got["delivered"], "delivered_per_s": got["windowPerS"],
        # Items still on their way when the wait was given up are not known to be lost.
        "lost": sent["sent"] - got["delivered"] if drained else None,
        "lost_share": 1 - got["delivered"] / sent["sent"] if drained and sent["sent"] else None,
        "oldest_ms": got["ageMaxMs"], "age_p50_ms": got["ageP50Ms"],
        "drain_s": (last - sent["endedAt"]) / 1000 if last is not None else None,
        "drained": drained, "left_unsent_bytes": left_unsent,
        "sender_peak_buffered_mb": sent["peakBufferedBytes"] / 2**20,
        "sender_held_s": sent["heldMs"] / 1000,
        "reconnects": got["socketsOpened"], "closes": got["closes"],
        "reordered": got["reordered"],
    }


async def run_case(host: str, size: int, cdp: Cdp, args: argparse.Namespace, work: Path,
                   cleanup: contextlib.ExitStack, load: CpuShare) -> dict[str, Any]:
    """One host at one size: a fresh host, two pages, the three phases."""
    running = HOSTS[host](2, work, app=APP, cpu=args.host_cpu)
    cleanup.callback(running.stop)
    pages: list[Page] = []
    try:
        for url in running.pages:
            pages.append(await Page.open(cdp, url))
        sender, receiver = pages
        await asyncio.gather(*(page.run("handshake", phase=PHASE_HANDSHAKE, timeoutMs=15000)
                               for page in pages))
        record: dict[str, Any] = {"host": host, "size": size}
        case_load = CpuShare()
        with case_load.measuring():
            record["throughput"] = await throughput(sender, receiver, size, args)
        steady = STEADY_RATE.get(size, 500 if size <= 4_000 else 100)
        rate = min(steady, record["throughput"]["items_per_s"] / 4)
        with case_load.measuring():
            record["latency"] = await latency(sender, receiver, size, rate, args)
        if not args.no_flood:
            with case_load.measuring():
                record["flood"] = await flood(sender, receiver, size, args)
        record["others_cpu_share"], record["steal_cpu_share"] = case_load.others, case_load.steal
        load.add(case_load)
        return record
    finally:
        for page in pages:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(page.close(), 5)
        running.stop()


async def run_all(args: argparse.Namespace, work: Path, cleanup: contextlib.ExitStack,
                  load: CpuShare) -> list[dict[str, Any]]:
    """Every case, in one Chromium; the records of every run."""
    chromium = Chromium(work, args.browser_cpu)
    cleanup.callback(chromium.stop)
    cdp = await Cdp.connect(chromium.devtools_url())
    runs = []
    try:
        for size in args.sizes:
            for repetition in range(1, args.repeat + 1):
                for host in args.hosts:  # hosts take turns, so that drift hits both alike
                    runs.append(await run_case(host, size, cdp, args, work, cleanup, load))
                    print(f"# {host} size={size} run {repetition}: done", file=sys.stderr,
                          flush=True)
    finally:
        await cdp.close()
    return runs


def median_record(runs: list[Any]) -> Any:
    """The runs of one case as one: each number the median over the runs, each flag true
    only if it is in every run, anything else as in the first run."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: median_record([run[key] for run in runs]) for key in first}
    if isinstance(first, bool):
        return all(runs)
    if isinstance(first, int | float):
        values = sorted(v for v in runs if v is not None)
        return values[len(values) // 2] if values else None
    return first


# -- reporting ----------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 1) -> str:
    """`value` with thousands separators, or '-' when there is none."""
    return "-" if value is None else f"{value:,.{digits}f}"


def pct(share: float | None) -> float | None:
    """A share as a percentage."""
    return None if share is None else 100 * share


def ratio(a: float | None, b: float | None) -> str:
    """a / b with two decimals, or '-' when either is missing or zero."""
    return "-" if not a or not b else f"{a / b:.2f}"


def print_report(runs: list[dict[str, Any]], args: argparse.Namespace, load: CpuShare) -> None:
    """The tables (medians over the runs of each case), ratios, and the command."""
    records = [median_record([run for run in runs if (run["host"], run["size"]) == case])
               for case in dict.fromkeys((run["host"], run["size"]) for run in runs)]
    print("$ " + shlex.join(["python", "bench/browser.py", *sys.argv[1:]]))
    print(f"# {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
          f"{Chromium.version()}, Python {platform.python_version()}; "
          + ("host on core 0, Chromium on core 1" if args.host_cpu else "not pinned"))
    if args.repeat > 1:
        print(f"# each figure the median of {args.repeat} runs")
    print(f"# while measuring, other processes used {load.others:.0%} of the machine's CPU "
          f"time and the hypervisor took {load.steal:.0%} (steal)")
    print()
    print(f"{'host':<11} {'size':>7} | {'thru/s':>8} {'MB/s':>6} {'win':>4} {'lost':>5} | "
          f"{'at /s':>6} {'p50 ms':>8} {'p99 ms':>8} {'lost':>5}")
    for r in records:
        t, lat = r["throughput"], r["latency"]
        print(f"{r['host']:<11} {r['size']:>7} | {fmt(t['items_per_s'], 0):>8} "
              f"{fmt(t['mb_per_s']):>6} {t['window']:>4} {fmt(t['lost'], 0):>5} | "
              f"{fmt(lat['rate_per_s'], 0):>6} {fmt(lat['p50_ms'], 2):>8} "
              f"{fmt(lat['p99_ms'], 2):>8} {fmt(lat['lost'], 0):>5}")
    floods = [r for r in records if "flood" in r]
    if floods:
        print()
        print(f"flood ({args.flood_s:g} s of send() as fast as it returns):")
        print(f"{'host':<11} {'size':>7} | {'sent/s':>8} {'held s':>6} {'deliv/s':>8} "
              f"{'sent':>8} {'lost':>8} {'lost %':>6} | {'oldest ms':>10} {'age p50':>9} "
              f"{'drain s':>7} | {'reconn':>6}  closes")
        for r in floods:
            f = r["flood"]
            codes = sorted({close["code"] for run in runs if run["host"] == r["host"]
                            and run["size"] == r["size"] for close in run["flood"]["closes"]})
            drain = fmt(f["drain_s"], 1) + ("" if f["drained"] else "+")
            print(f"{r['host']:<11} {r['size']:>7} | {fmt(f['sent_per_s'], 0):>8} "
                  f"{fmt(f['sender_held_s']):>6} "
                  f"{fmt(f['delivered_per_s'], 0):>8} {f['sent']:>8,} {fmt(f['lost'], 0):>8} "
                  f"{fmt(pct(f['lost_share']), 0):>6} | {fmt(f['oldest_ms'], 0):>10} "
                  f"{fmt(f['age_p50_ms'], 0):>9} {drain:>7} | {f['reconnects']:>6}  "
                  f"{','.join(map(str, codes)) or '-'}")
        print(f"  held s: time the sender waited because its socket held over "
              f"{FLOOD_BUFFER_CAP // 2**20} MiB unsent")
        print(f"  drain s: from the end of the flood to the last arrival ('+': still arriving "
              f"after {args.drain_s:g} s, when the wait was given up; what was lost is then "
              f"unknown)")
    by_key = {(r["host"], r["size"]): r for r in records}
    if {"webxdc-rt", "webxdc-dev"} <= set(args.hosts):
        print()
        print("webxdc-rt / webxdc-dev (throughput and delivered: above 1 is better for "
              "webxdc-rt; latency and oldest: below 1 is better):")
        print(f"{'size':>7} | {'thru/s':>7} {'p50':>7} {'p99':>7} | {'deliv/s':>7} "
              f"{'oldest':>7}")
        for size in args.sizes:
            rt, dev = by_key.get(("webxdc-rt", size)), by_key.get(("webxdc-dev", size))
            if not rt or not dev:
                continue
            flood_rt, flood_dev = rt.get("flood", {}), dev.get("flood", {})
            print(f"{size:>7} | "
                  f"{ratio(rt['throughput']['items_per_s'], dev['throughput']['items_per_s']):>7} "
                  f"{ratio(rt['latency']['p50_ms'], dev['latency']['p50_ms']):>7} "
                  f"{ratio(rt['latency']['p99_ms'], dev['latency']['p99_ms']):>7} | "
                  f"{ratio(flood_rt.get('delivered_per_s'), flood_dev.get('delivered_per_s')):>7} "
                  f"{ratio(flood_rt.get('oldest_ms'), flood_dev.get('oldest_ms')):>7}")
    if args.json:
        for run in runs:
            print(json.dumps(run))


def interrupted(signum: int, frame: object) -> None:
    """SIGTERM ends a run as Ctrl-C does: through the clean-up that stops every process."""
    raise KeyboardInterrupt


def main() -> None:
    """Parses the options, sets up what is missing and runs the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="also print one JSON object per case")
    parser.add_argument("--hosts", default=",".join(HOSTS), help="comma-separated hosts to run")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated payload sizes in bytes (at least 16)")
    parser.add_argument("--throughput-s", type=float, default=4.0,
                        help="throughput phase, seconds")
    parser.add_argument("--window", type=int, default=0,
                        help="items in flight in the throughput phase (default: 4 MiB over "
                             "the item size, 8 to 256)")
    parser.add_argument("--latency-s", type=float, default=3.0, help="steady phase, seconds")
    parser.add_argument("--flood-s", type=float, default=5.0, help="flood phase, seconds")
    parser.add_argument("--drain-s", type=float, default=45.0,
                        help="longest wait for a flood's backlog after it ended, seconds")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each case (hosts taking turns); medians are reported")
    parser.add_argument("--no-flood", action="store_true", help="skip the flood phase")
    parser.add_argument("--pin", action="store_true",
                        help="run the host on core 0 and Chromium on core 1")
    parser.add_argument("--quick", action="store_true", help="1.5 s phases, 10 s drain")
    args = parser.parse_args()
    args.hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    unknown = set(args.hosts) - set(HOSTS)
    if unknown:
        parser.error(f"unknown hosts: {', '.join(sorted(unknown))}; known: {', '.join(HOSTS)}")
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if any(not 16 <= s <= 128_000 for s in args.sizes):
        parser.error("sizes must be between 16 and 128000 bytes")
    if args.quick:
        args.throughput_s = args.latency_s = args.flood_s = 1.5
        args.drain_s = 10.0
    pin = args.pin and (os.cpu_count() or 1) >= 2
    args.host_cpu, args.browser_cpu = (HOST_CPU, BROWSER_CPU) if pin else (None, None)
    ensure_environment(chromium=True)
    signal.signal(signal.SIGTERM, interrupted)
    work = Path(tempfile.mkdtemp(prefix="webxdc-rt-browser-bench-"))
    load = CpuShare()
    try:
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(shutil.rmtree, work, ignore_errors=True)
            runs = asyncio.run(run_all(args, work, cleanup, load))
    except KeyboardInterrupt:
        print("interrupted; every process this run started was stopped", file=sys.stderr)
        sys.exit(130)
    print_report(runs, args, load)


if __name__ == "__main__":
    main()
