#!/usr/bin/env python3
"""`webxdc-rt` with the event loop's turns measured: how much CPU time the main thread
spends between two waits for I/O (one turn: everything ready runs, nothing new is read).
A realtime item that arrives during a turn waits for its end, so the longest turns bound
what other work (telling a committed group of updates, reading a page's burst) adds to its
latency, in CPU time, which other processes on the machine change far less than wall time.

    .venv/bin/python bench/loop_turns.py serve APP --members ... [the command's arguments]

It runs asyncio's own event loop (`--loop asyncio`, unless told otherwise): uvloop's turns
cannot be seen from Python. On SIGTERM or Ctrl-C it stops and prints one line to stderr:
`loop turns: N, busy turns M, p50/p99/p99.9/max X ms` (of the busy turns: those that ran
anything for 50 µs or more).
"""

from __future__ import annotations

import selectors
import signal
import statistics
import sys
import time
from typing import Any

from webxdc_rt.cli import main

BUSY_S = 50e-6
_turns: list[float] = []
_last: list[float] = []


def _measured_select(self: selectors.EpollSelector, timeout: float | None = None
                     ) -> list[tuple[selectors.SelectorKey, int]]:
    started = time.thread_time()
    if _last:
        _turns.append(started - _last[0])
    ready = _ORIGINAL_SELECT(self, timeout)
    _last[:] = [time.thread_time()]
    return ready


_ORIGINAL_SELECT = selectors.EpollSelector.select


def report() -> str:
    """The line that sums up the turns measured so far."""
    busy = [turn for turn in _turns if turn >= BUSY_S]
    if len(busy) < 2:
        return f"loop turns: {len(_turns)}, busy turns {len(busy)}"
    cuts = statistics.quantiles(busy, n=1000, method="inclusive")
    return (f"loop turns: {len(_turns)}, busy turns {len(busy)}, p50/p99/p99.9/max "
            f"{cuts[499] * 1000:.2f}/{cuts[989] * 1000:.2f}/{cuts[998] * 1000:.2f}/"
            f"{max(busy) * 1000:.2f} ms")


def _stop(*_: Any) -> None:
    raise KeyboardInterrupt


def run() -> None:
    """Run the command with the turns measured; print the figures when it ends."""
    selectors.EpollSelector.select = _measured_select  # type: ignore[method-assign,assignment]
    signal.signal(signal.SIGTERM, _stop)
    argv = sys.argv[1:]
    if "--loop" not in argv:  # uvloop's turns cannot be seen from Python
        argv[1:1] = ["--loop", "asyncio"]
    try:
        main(argv)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        print(report(), file=sys.stderr, flush=True)


if __name__ == "__main__":
    run()
