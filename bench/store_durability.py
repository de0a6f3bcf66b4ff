#!/usr/bin/env python3
"""What durable commits cost: `SqliteStore.append_update` and `SqliteStore.add_chat_message`
with SQLite's `synchronous=NORMAL` (WAL; the last commits may be lost on power loss) against
`FULL` (the log is fsynced at every commit; the host's default), on the file system of the
data directory.

    .venv/bin/python bench/store_durability.py [--data-dir DIR] [--seconds 2]

For each mode and each kind of write (an update of 100 bytes, an update of 10,000 bytes, a
chat message with a 64 KiB file) it appends one at a time through the store's public API, as
the host does, for `--seconds` (at most 20,000 writes), in a temporary folder made inside the
data directory (or its nearest existing parent) and removed afterwards; it prints writes per
second and the per-write latency (p50, p99, max), a raw `write(4 KiB) + fsync` for
reference, and what FULL means at the host's default update rate.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from webxdc_rt.cli import default_data_dir
from webxdc_rt.core.limits import UpdateLimits
from webxdc_rt.core.updates import Update
from webxdc_rt.stores.sqlite import SqliteStore, Synchronous

MAX_WRITES = 20_000
WARM_UP = 20


def main() -> None:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=default_data_dir(),
                        help="measure on this directory's file system (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="time per mode and kind of write (default: %(default)s)")
    args = parser.parse_args()
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]))
    base = _existing_ancestor(Path(args.data_dir))
    with tempfile.TemporaryDirectory(prefix="webxdc-rt-bench-", dir=base) as scratch:
        print(f"file system of {base}: {_mount_of(base)}")
        fsync = _fsync_latencies(Path(scratch) / "probe", args.seconds / 2)
        print(f"raw write(4 KiB)+fsync: p50 {_ms(fsync, 50)}, p99 {_ms(fsync, 99)} "
              f"({len(fsync)} calls)")
        print(f"{'kind of write':<28}{'mode':<8}{'writes/s':>10}{'p50':>10}{'p99':>10}"
              f"{'max':>10}")
        results: dict[tuple[str, str], list[int]] = {}
        for kind, make_writer in KINDS.items():
            for mode in ("NORMAL", "FULL"):
                folder = Path(tempfile.mkdtemp(dir=scratch))
                latencies = _measure(folder, mode, make_writer, args.seconds)
                results[kind, mode] = latencies
                rate = len(latencies) / (sum(latencies) / 1e9)
                print(f"{kind:<28}{mode:<8}{rate:>10,.0f}{_ms(latencies, 50):>10}"
                      f"{_ms(latencies, 99):>10}{_ms(latencies, 100):>10}")
    per_page = 1000 / UpdateLimits().interval_ms
    for mode in ("NORMAL", "FULL"):
        mean_s = statistics.fmean(results["update, 100 B", mode]) / 1e9
        print(f"{mode}: at the default update pace ({per_page:g}/s per page after a burst of "
              f"{UpdateLimits().burst}) a page sending flat out costs "
              f"{per_page * mean_s * 100:.2f}% of the event loop in commits; "
              f"{1 / mean_s / per_page:,.0f} such pages would fill it")


def _update_writer(size: int) -> Callable[[SqliteStore, str], None]:
    payload = '"' + "x" * (size - 2) + '"'

    def write(store: SqliteStore, app_id: str) -> None:
        store.append_update(app_id, "m1", Update(payload, info="bench"))
    return write


def _chat_writer(size: int) -> Callable[[SqliteStore, str], None]:
    data = os.urandom(size)

    def write(store: SqliteStore, app_id: str) -> None:
        store.add_chat_message("chat", app_id, "alice", "a file", "f.bin", data)
    return write


KINDS: dict[str, Callable[[], Callable[[SqliteStore, str], None]]] = {
    "update, 100 B": lambda: _update_writer(100),
    "update, 10,000 B": lambda: _update_writer(10_000),
    "chat message, 64 KiB file": lambda: _chat_writer(64 * 1024),
}


def _measure(folder: Path, mode: Synchronous, make_writer: Callable[[], Callable[[SqliteStore, str],
             None]], seconds: float) -> list[int]:
    """Nanoseconds of each write, one at a time, for `seconds` or MAX_WRITES writes."""
    store = SqliteStore.in_directory(folder, synchronous=mode)
    assert store.synchronous == mode
    pages = store.share(store.load_registry(), "chat", ["alice", "bob"], "Bench", "bench")
    app_id = pages[0].app.id
    write = make_writer()
    for _ in range(WARM_UP):
        write(store, app_id)
    latencies: list[int] = []
    deadline = time.perf_counter() + seconds
    while len(latencies) < MAX_WRITES and time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        write(store, app_id)
        latencies.append(time.perf_counter_ns() - start)
    store.close()
    return latencies


def _fsync_latencies(path: Path, seconds: float) -> list[int]:
    block = os.urandom(4096)
    latencies: list[int] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        deadline = time.perf_counter() + seconds
        while len(latencies) < MAX_WRITES and time.perf_counter() < deadline:
            start = time.perf_counter_ns()
            os.write(fd, block)
            os.fsync(fd)
            latencies.append(time.perf_counter_ns() - start)
    finally:
        os.close(fd)
    return latencies


def _ms(latencies: list[int], percentile: int) -> str:
    ordered = sorted(latencies)
    index = min(len(ordered) - 1, len(ordered) * percentile // 100)
    return f"{ordered[index] / 1e6:.3f} ms"


def _existing_ancestor(path: Path) -> Path:
    path = path.expanduser().resolve()
    while not path.is_dir():
        path = path.parent
    return path


def _mount_of(path: Path) -> str:
    """The device and file system type the path lives on, from /proc/mounts."""
    best = ("?", "?", "")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount_point, fs_type = line.split()[:3]
            if str(path).startswith(mount_point) and len(mount_point) >= len(best[2]):
                best = (device, fs_type, mount_point)
    except OSError:
        pass
    return f"{best[0]} ({best[1]}) mounted on {best[2] or '?'}"


if __name__ == "__main__":
    main()
