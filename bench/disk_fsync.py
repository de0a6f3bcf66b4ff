#!/usr/bin/env python3
"""The disk's own limit on durable writes: how many small writes per second it makes
durable one at a time, each `os.write` of 100 bytes followed by `os.fsync` (what SQLite's
`synchronous=FULL` asks for at a commit) or by `os.fdatasync` (what PostgreSQL's default
`wal_sync_method` asks for on Linux), in a file of the folder given.

    .venv/bin/python bench/disk_fsync.py [--dir DIR] [--seconds 3]

A store that commits one write per sync cannot go past these figures; group commit goes
past them by putting many writes in each sync (`bench/store_backends.py` says how many).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable


def syncs_per_second(folder: str, sync: Callable[[int], None], seconds: float
                     ) -> tuple[float, float, float]:
    """Writes made durable per second, and the p50 and p99 of one write and sync, in ms."""
    with tempfile.NamedTemporaryFile(dir=folder) as file:
        fd = file.fileno()
        record = b"x" * 100
        times: list[float] = []
        ended = time.perf_counter() + seconds
        while time.perf_counter() < ended:
            started = time.perf_counter()
            os.write(fd, record)
            sync(fd)
            times.append(time.perf_counter() - started)
    cuts = statistics.quantiles(times, n=100)
    return len(times) / sum(times), cuts[49] * 1000, cuts[98] * 1000


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="where the file goes (default: the "
                        "temporary folder)")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    for name, sync in (("write + fsync", os.fsync), ("write + fdatasync", os.fdatasync)):
        rate, p50, p99 = syncs_per_second(args.dir or tempfile.gettempdir(), sync,
                                          args.seconds)
        print(f"{name:18} {rate:8.0f}/s  p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")


if __name__ == "__main__":
    main()
