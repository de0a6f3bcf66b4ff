#!/usr/bin/env python3
"""What a status update costs the event loop in each store: SQLite in the data directory
(`synchronous=FULL`, the default) against PostgreSQL over loopback TCP (its defaults:
`fsync=on`, `synchronous_commit=on`), through the stores' public API one call at a time, as
the host makes them.

    .venv/bin/python bench/store_backends.py --store postgresql://USER@127.0.0.1:5432/DB \\
        [--data-dir DIR] [--seconds 2]

For each store it measures `append_update` of a 100-byte update, the read a process makes
when another one announces an update (`read_updates` of one row, off the event loop as the
host makes it), and a backlog chunk of 1,000 rows (`read_updates`); it prints calls per
second and per-call latency (p50, p99).
Then it measures what PostgreSQL takes from several processes at once: 1 and 4 processes
appending 800 updates each, to one app copy each and all to one app copy (whose appends the
per-copy lock serialises). The PostgreSQL database gets the host's schema if it has none; the
rows written are deleted.

    .venv/bin/python bench/store_backends.py --case burst [--store postgresql://...] \
        [--pages 16] [--seconds 5] [--limit updates.max_in_flight_per_socket=1 ...]
    .venv/bin/python bench/store_backends.py --case mixed [--store postgresql://...] \
        [--pages 4] [--seconds 5] [--pace-ms 100]

The host cases run one `webxdc-rt serve` process (SQLite in a temporary data directory, or
`--store`), with the per-page limits on updates and on text frames raised (`--limit
updates.interval_ms=1 --limit updates.burst=1000000 --limit control_per_s=1000000 --limit
control_burst=1000000`), and Python peers in other processes. `burst`: `--pages` pages send
updates as fast as the host takes them (each keeps its socket full); one more page listens
and counts them: durable updates per second (an update is sent to listeners only once its
commit is durable), and the host's CPU time per update (which the machine's other load
changes less than the rate). `--limit NAME=VALUE` (repeated) is passed on to the host, to
compare settings in one run; with `--turns` the host runs under `bench/loop_turns.py`, and
the CPU time of its event loop's busy turns is printed too (what a realtime item arriving
during one waits for, whatever else runs on the machine). `mixed`: two more pages exchange
realtime items at 500/s in all (250/s each, 64 bytes) while `--pages` pages flood updates,
then again with no updates: the items' latency from send to receipt (p50, p99) in both, and
the update rate. With `--pace-ms MS` (burst and mixed), the host keeps its default per-page
update limits (one update per 100 ms after a burst of 50) and each flooding page sends one
update every MS ms instead of as fast as the host takes them: a flood at the pace a host
allows by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from webxdc_rt.cli import example_path
from webxdc_rt.client import connect
from webxdc_rt.core.updates import Update
from webxdc_rt.stores.api import StoreApi
from webxdc_rt.stores.postgres import PostgresStore
from webxdc_rt.stores.sqlite import SqliteStore

MAX_CALLS = 20_000


def measure(call: Callable[[], object], seconds: float) -> tuple[float, float, float]:
    """Calls per second, p50 and p99 latency in ms of `call` made for `seconds`."""
    for _ in range(20):
        call()
    times: list[float] = []
    ended = time.perf_counter() + seconds
    while time.perf_counter() < ended and len(times) < MAX_CALLS:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    cuts = statistics.quantiles(times, n=100)
    return len(times) / sum(times), cuts[49] * 1000, cuts[98] * 1000


def run(name: str, store: StoreApi, seconds: float) -> None:
    app_id = f"bench-{uuid.uuid4().hex}"
    update = Update('"' + "x" * 98 + '"')
    rows = [(name, "append_update (100 B)",
             measure(lambda: store.append_update(app_id, "m", update), seconds))]
    last = store.max_serial(app_id)

    loop = asyncio.new_event_loop()

    def read(after: int) -> None:
        loop.run_until_complete(store.read_updates(app_id, after, 1 << 20))

    rows.append((name, "read one announced update", measure(lambda: read(last - 1), seconds)))
    stored = loop.run_until_complete(store.read_updates(app_id, 0, 1 << 30)).updates
    for _ in range(1000 - len(stored)):  # a chunk holds 1,000 updates at most
        store.append_update(app_id, "m", update)
    rows.append((name, "backlog read, 1,000 rows", measure(lambda: read(0), seconds / 2)))
    loop.close()
    for store_name, what, (rate, p50, p99) in rows:
        print(f"{store_name:10} {what:28} {rate:9.0f}/s  p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
    store.remove_app(app_id)


async def concurrent_commits(store: StoreApi, senders: int, seconds: float
                             ) -> tuple[float, float]:
    """`senders` tasks each committing updates one after another (as a page's socket
    does) for `seconds`: updates per second, and writes per commit."""
    app_id = f"bench-{uuid.uuid4().hex}"
    update = Update('"' + "x" * 98 + '"')
    stopped = False

    async def sender() -> None:
        while not stopped:
            await store.commit_update(app_id, "m", update, lambda serial: None)

    tasks = [asyncio.ensure_future(sender()) for _ in range(senders)]
    await asyncio.sleep(0.5)
    commits = store.commits  # type: ignore[attr-defined]
    writes, groups, started = commits.writes, commits.groups, time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (commits.writes - writes) / (time.perf_counter() - started)
    per_group = (commits.writes - writes) / max(1, commits.groups - groups)
    stopped = True
    await asyncio.gather(*tasks)
    store.remove_app(app_id)
    return rate, per_group


def run_concurrent(name: str, store: StoreApi, seconds: float) -> None:
    for senders in (1, 16, 64):
        rate, per_group = asyncio.run(concurrent_commits(store, senders, seconds))
        print(f"{name:10} commit_update, {senders:2} senders at once  {rate:9.0f}/s  "
              f"{per_group:5.1f} updates per commit")


def append_many(url: str, app_id: str, count: int) -> None:
    """One process appending `count` updates to `app_id`."""
    store = PostgresStore(url)
    update = Update('"' + "x" * 98 + '"')
    for _ in range(count):
        store.append_update(app_id, "m", update)
    store.close()


def run_parallel(url: str) -> None:
    run_id = uuid.uuid4().hex
    for shared_copy in (False, True):
        for processes in (1, 4):
            apps = [f"bench-{run_id}-{0 if shared_copy else index}"
                    for index in range(processes)]
            with multiprocessing.Pool(processes) as pool:
                started = time.perf_counter()
                pool.starmap(append_many, [(url, app_id, 800) for app_id in apps])
                elapsed = time.perf_counter() - started
            where = "all to one app copy" if shared_copy else "one app copy each"
            print(f"postgresql {processes} process(es) appending, {where:20} "
                  f"{processes * 800 / elapsed:7.0f} updates/s in all")
    cleaner = PostgresStore(url)
    for index in range(4):
        cleaner.remove_app(f"bench-{run_id}-{index}")
    cleaner.close()


# -- host cases: pages flooding updates, with and without realtime traffic --------------


def serve(store: str | None, members: list[str], folder: str, limits: list[str],
          turns: bool, paced: bool = False) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """A `webxdc-rt serve` process with raised update limits, or the default ones if
    `paced` (its loop's turns measured if `turns`: see `host_turns`); its invite links."""
    raised = [] if paced else ["--limit", "updates.interval_ms=1",
                               "--limit", "updates.burst=1000000"]
    command = ([str(Path(__file__).parent / "loop_turns.py")] if turns
               else ["-m", "webxdc_rt"])
    process = subprocess.Popen(
        [sys.executable, *command, "serve", str(example_path()), "--members",
         ",".join(members), "--port", "0", "--json", "--data-dir", folder,
         *([] if store is None else ["--store", store]),
         "--chat", f"bench {uuid.uuid4().hex[:8]}", *raised, "--limit", "control_per_s=1000000",
         "--limit", "control_burst=1000000",
         *(arg for limit in limits for arg in ("--limit", limit))],
        stdout=subprocess.PIPE, stderr=(Path(folder) / "stderr").open("w"), text=True)
    assert process.stdout is not None
    lines = [json.loads(process.stdout.readline()) for _ in members]
    return process, {line["member"]: line["url"] for line in lines}


UNANSWERED_PER_PAGE = 64
"""Updates a flooding page sends ahead of what the listening page received: enough to keep
the host's window full, and a bound on what is left to deliver once the measure ends."""


async def flood(urls: dict[str, str], senders: list[str], seconds: float,
                pace_ms: float = 0) -> tuple[float, int]:
    """`senders` send updates as fast as the host takes them (or one every `pace_ms`) for
    `seconds` (after 1 s of warming up); the updates per second a listening page
    received, and errors the senders were sent."""
    observer = await connect(urls["observer"])
    received = sent_total = 0
    progress = asyncio.Event()

    def count(update: object) -> None:
        nonlocal received
        received += 1
        progress.set()

    await observer.set_update_listener(count)
    peers = [await connect(urls[name]) for name in senders]
    stopped = False

    ahead = UNANSWERED_PER_PAGE * len(senders)

    async def paced(peer: object, offset: float) -> None:
        due = time.perf_counter() + offset
        sent = 0
        while not stopped:
            peer.send_update({"payload": sent})  # type: ignore[attr-defined]
            sent += 1
            due += pace_ms / 1000
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async def send(peer: object) -> None:
        nonlocal sent_total
        sent = 0
        while not stopped:
            while sent_total - received >= ahead and not stopped:
                progress.clear()
                await progress.wait()
            for _ in range(32):
                peer.send_update({"payload": sent})  # type: ignore[attr-defined]
                sent += 1
            sent_total += 32
            await peer.drain()  # type: ignore[attr-defined]

    tasks = [asyncio.ensure_future(
        paced(peer, n * pace_ms / 1000 / len(peers)) if pace_ms else send(peer))
        for n, peer in enumerate(peers)]
    await asyncio.sleep(1.0)
    start_count, started = received, time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (received - start_count) / (time.perf_counter() - started)
    stopped = True
    progress.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    errors = sum(len(peer.errors) for peer in peers)
    for peer in (*peers, observer):
        await peer.close()
    return rate, errors


def flood_process(urls: dict[str, str], senders: list[str], seconds: float, pace_ms: float,
                  results: multiprocessing.Queue[tuple[float, int]]) -> None:
    """`flood` in a process of its own (the realtime pages are measured apart)."""
    results.put(asyncio.run(flood(urls, senders, seconds, pace_ms)))


async def realtime_latency(urls: dict[str, str], seconds: float) -> list[float]:
    """Two pages send each other 250 items/s each for `seconds` (after 1 s of warming up);
    the latency of every item received in that time."""
    peers = [await connect(urls[name]) for name in ("rt0", "rt1")]
    channels = [peer.join_realtime_channel() for peer in peers]
    for channel in channels:
        await channel.joined()
    latencies: list[float] = []
    measuring = False

    def receive(data: bytes) -> None:
        if measuring:
            latencies.append(time.perf_counter() - struct.unpack_from("d", data)[0])

    for channel in channels:
        channel.set_listener(receive)
    stopped = False

    async def pace(channel: object, offset: float) -> None:
        due = time.perf_counter() + offset
        while not stopped:
            channel.send(struct.pack("d", time.perf_counter()) + bytes(56))  # type: ignore
            due += 1 / 250
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    tasks = [asyncio.ensure_future(pace(channel, n / 500))
             for n, channel in enumerate(channels)]
    await asyncio.sleep(1.0)
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    stopped = True
    await asyncio.gather(*tasks)
    for peer in peers:
        await peer.close()
    return latencies


def cpu_seconds(pid: int) -> float:
    """CPU time a process used so far (user and system, all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_turns(process: subprocess.Popen[str], folder: str) -> str:
    """Stop the host; what `bench/loop_turns.py` said of its loop's turns, if it ran it."""
    process.send_signal(signal.SIGTERM)
    process.wait()
    lines = (Path(folder) / "stderr").read_text().splitlines()
    return next((line for line in reversed(lines) if line.startswith("loop turns")), "")


def host_case(case: str, store: str | None, pages: int, seconds: float,
              limits: list[str], turns: bool, pace_ms: float = 0) -> None:
    """Run the `burst` or `mixed` case against a fresh host and print its figures."""
    senders = [f"sender{n}" for n in range(pages)]
    name = "postgresql" if store else "sqlite"
    with tempfile.TemporaryDirectory() as folder:
        process, urls = serve(store, [*senders, "observer", "rt0", "rt1"], folder, limits,
                              turns, bool(pace_ms))
        paced = f" paced one per {pace_ms:g} ms" if pace_ms else ""
        try:
            if case == "burst":
                cpu, started = cpu_seconds(process.pid), time.perf_counter()
                rate, errors = asyncio.run(flood(urls, senders, seconds, pace_ms))
                share = (cpu_seconds(process.pid) - cpu) / (time.perf_counter() - started)
                print(f"{name:10} burst: {pages} pages flooding{paced} {rate:9.0f} durable "
                      f"updates/s  ({errors} refused; the host used {share:.0%} of a core, "
                      f"{share / rate * 1e6:.0f} µs per update) {' '.join(limits)}")
                return
            print(f"{name:10} mixed:{paced} {' '.join(limits)}")
            quiet = asyncio.run(realtime_latency(urls, seconds))
            results: multiprocessing.Queue[tuple[float, int]] = multiprocessing.Queue()
            flooder = multiprocessing.Process(target=flood_process,
                                              args=(urls, senders, seconds + 1, pace_ms,
                                                    results))
            flooder.start()
            time.sleep(1.0)
            busy = asyncio.run(realtime_latency(urls, seconds))
            rate, errors = results.get()
            flooder.join()
            for what, values in (("no updates", quiet),
                                 (f"{pages} pages flooding", busy)):
                cuts = statistics.quantiles(values, n=100)
                print(f"{name:10} mixed: realtime 500/s, {what:18} p50 "
                      f"{cuts[49] * 1000:6.2f} ms  p99 {cuts[98] * 1000:6.2f} ms  "
                      f"({len(values)} items)")
            print(f"{name:10} mixed: {rate:9.0f} durable updates/s meanwhile ({errors} refused)")
        finally:
            measured = host_turns(process, folder)
            if measured:
                print(f"{name:10} {case}: host {measured}")


def main() -> None:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=None, help="a postgresql:// URL (required for "
                        "the calls case; the host cases use SQLite without it)")
    parser.add_argument("--data-dir", default=None, help="where SQLite's file goes "
                        "(default: a temporary folder)")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--case", choices=("calls", "burst", "mixed"), default="calls")
    parser.add_argument("--pages", type=int, default=16, help="pages flooding updates")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="a limit for the host of the burst and mixed cases")
    parser.add_argument("--turns", action="store_true", help="measure the host's event "
                        "loop turns (burst and mixed cases)")
    parser.add_argument("--pace-ms", type=float, default=0, help="each flooding page sends "
                        "one update every this many ms, to a host with its default update "
                        "limits (burst and mixed cases; 0: as fast as the host takes them)")
    args = parser.parse_args()
    if args.case != "calls":
        host_case(args.case, args.store, args.pages, args.seconds, args.limit, args.turns,
                  args.pace_ms)
        return
    if args.store is None:
        parser.error("the calls case needs --store")
    with tempfile.TemporaryDirectory(dir=args.data_dir) as folder:
        sqlite = SqliteStore.in_directory(Path(folder))
        run("sqlite", sqlite, args.seconds)
        run_concurrent("sqlite", sqlite, args.seconds)
        sqlite.close()
    postgres = PostgresStore(args.store)
    run("postgresql", postgres, args.seconds)
    run_concurrent("postgresql", postgres, args.seconds)
    postgres.close()
    run_parallel(args.store)


if __name__ == "__main__":
    main()
