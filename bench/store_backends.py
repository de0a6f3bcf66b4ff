#!/usr/bin/env python3
"""What a status update costs the event loop in each store: SQLite in the data directory
(`synchronous=FULL`, the default) against PostgreSQL over loopback TCP (its defaults:
`fsync=on`, `synchronous_commit=on`), through the stores' public API one call at a time, as
the host makes them.

    .venv/bin/python bench/store_backends.py --store postgresql://USER@127.0.0.1:5432/DB \\
        [--data-dir DIR] [--seconds 2]

For each store it measures `append_update` of a 100-byte update, the read a process makes
when another one announces an update (`backlog_chunk` + `updates_after` of one row), and the
backlog read of 1,000 rows; it prints calls per second and per-call latency (p50, p99).
Then it measures what PostgreSQL takes from several processes at once: 1 and 4 processes
appending 800 updates each, to one app copy each and all to one app copy (whose appends the
per-copy lock serialises). The PostgreSQL database gets the host's schema if it has none; the
rows written are deleted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

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

    def announced() -> None:
        count = store.backlog_chunk(app_id, last - 1, 1 << 20)
        store.updates_after(app_id, last - 1, count)

    rows.append((name, "read one announced update", measure(announced, seconds)))
    rows.append((name, "backlog read, 1,000 rows",
                 measure(lambda: store.updates_after(app_id, 0, 1000), seconds / 2)))
    for store_name, what, (rate, p50, p99) in rows:
        print(f"{store_name:10} {what:28} {rate:9.0f}/s  p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
    store.remove_app(app_id)


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


def main() -> None:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="a postgresql:// URL")
    parser.add_argument("--data-dir", default=None, help="where SQLite's file goes "
                        "(default: a temporary folder)")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.data_dir) as folder:
        sqlite = SqliteStore.in_directory(Path(folder))
        run("sqlite", sqlite, args.seconds)
        sqlite.close()
    postgres = PostgresStore(args.store)
    run("postgresql", postgres, args.seconds)
    postgres.close()
    run_parallel(args.store)


if __name__ == "__main__":
    main()
