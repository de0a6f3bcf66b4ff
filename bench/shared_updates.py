#!/usr/bin/env python3
"""How long a status update takes to reach a page on the sender's process and a page on
another process, with two `webxdc-rt serve` processes sharing one PostgreSQL and one Redis.

    .venv/bin/python bench/shared_updates.py --store postgresql://... --broker redis://... \\
        [--count 500]
    .venv/bin/python bench/shared_updates.py    # the baseline: one process, SQLite

It starts the two processes (127.0.0.1, free ports), connects alice and bob to the first and
carol to the second with the Python peer, and has alice send `--count` updates one at a time,
each once the previous one reached both bob and carol; it prints the latency from send to
receipt at bob (same process) and at carol (other process): p50, p99, max. Without
`--store`, one process with SQLite serves all three (carol on the same process too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from webxdc_rt.cli import example_path
from webxdc_rt.client import connect

MEMBERS = ["alice", "bob", "carol"]


def start(store: str | None, broker: str | None,
          folder: str, chat: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    shared = [] if store is None or broker is None else ["--store", store, "--broker", broker]
    process = subprocess.Popen(
        [sys.executable, "-m", "webxdc_rt", "serve", str(example_path()), "--members",
         ",".join(MEMBERS), "--port", "0", "--json", "--data-dir", folder, *shared,
         "--chat", chat, "--limit", "updates.interval_ms=1", "--limit",
         "updates.burst=100000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    lines = [json.loads(process.stdout.readline()) for _ in MEMBERS]
    return process, {line["member"]: line["url"] for line in lines}


def on_port(url: str, other: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{urlsplit(other).port}"))


def summary(name: str, values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100)
    return (f"{name:28} p50 {cuts[49] * 1000:6.2f} ms  p99 {cuts[98] * 1000:6.2f} ms  "
            f"max {max(values) * 1000:6.2f} ms")


async def measure(urls_a: dict[str, str], urls_b: dict[str, str], count: int) -> None:
    alice = await connect(urls_a["alice"])
    received: dict[str, dict[int, float]] = {"bob": {}, "carol": {}}
    arrived = asyncio.Event()

    def recorder(name: str) -> Any:
        def record(update: dict[str, Any]) -> None:
            received[name][update["payload"]] = time.perf_counter()
            arrived.set()
        return record

    bob = await connect(urls_a["bob"])
    carol = await connect(on_port(urls_a["carol"], urls_b["carol"]))
    await bob.set_update_listener(recorder("bob"))
    await carol.set_update_listener(recorder("carol"))
    sent: dict[int, float] = {}
    for n in range(count):
        sent[n] = time.perf_counter()
        alice.send_update({"payload": n})
        while n not in received["bob"] or n not in received["carol"]:
            arrived.clear()
            await arrived.wait()
    for name in ("bob", "carol"):
        where = "same process" if name == "bob" or urls_a == urls_b else "other process"
        print(summary(f"{name} ({where})", [received[name][n] - sent[n] for n in sent]))
    for peer in (alice, bob, carol):
        await peer.close()


def main() -> None:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=None, help="a postgresql:// URL")
    parser.add_argument("--broker", default=None, help="a redis:// URL")
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        chat = f"bench {uuid.uuid4().hex[:8]}"  # a new chat: no backlog from earlier runs
        processes = [start(args.store, args.broker, folder, chat)]
        if args.store is not None:
            processes.append(start(args.store, args.broker, folder, chat))
        try:
            asyncio.run(measure(processes[0][1], processes[-1][1], args.count))
        finally:
            for process, _ in processes:
                process.send_signal(signal.SIGTERM)
                process.wait()


if __name__ == "__main__":
    main()
