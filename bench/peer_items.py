#!/usr/bin/env python3
"""Instructions per realtime item between two Python peers, counted by callgrind.

    python bench/peer_items.py [--items N] [--size BYTES] [--src DIR]

One peer sends N items of SIZE bytes to another through a host in the same process, over
real loopback sockets (the host of `tests/live.py`), draining every 100 items; run twice
under `valgrind --tool=callgrind`, with no items and with N, and the difference divided by N
is reported: both peers' send and receive paths plus the host's. `--src` measures another
source tree (say `git archive integ src | tar -x -C /tmp/integ`, then `--src /tmp/integ/src`)
so that a change to the peer is compared with the same host around it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path

from hot_path import callgrind_refs  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent


async def run_items(items: int, size: int) -> None:
    """The measured run (under callgrind, by `main`)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from live import LiveHost

    from webxdc_rt.client import connect

    live = LiveHost()
    await live.start()
    urls = live.share(["alice", "bob"])
    alice, bob = await connect(urls["alice"]), await connect(urls["bob"])
    sender, receiver = alice.join_realtime_channel(), bob.join_realtime_channel()
    received = 0
    all_in = asyncio.Event()

    def count(data: bytes) -> None:
        nonlocal received
        received += 1
        if received == items:
            all_in.set()

    receiver.set_listener(count)
    await sender.joined()
    await receiver.joined()
    payload = bytes(size)
    for n in range(items):
        sender.send(payload)
        if n % 100 == 99:
            await sender.drain()
    if items:
        await all_in.wait()
    await alice.close()
    await bob.close()
    await live.stop()


def instructions(items: int, size: int, src: Path) -> int:
    """Instructions callgrind counts for a run with `items` items."""
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(src))
    return callgrind_refs([__file__, "--run", str(items), str(size)], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--run", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        asyncio.run(run_items(*args.run))
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/peer_items.py needs valgrind (Debian package valgrind)")
    per_item = (instructions(args.items, args.size, args.src)
                - instructions(0, args.size, args.src)) / args.items
    print(f"{args.src}: {per_item:,.0f} instructions per {args.size}-byte item")


if __name__ == "__main__":
    main()
