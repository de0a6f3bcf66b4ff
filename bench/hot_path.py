#!/usr/bin/env python3
"""Instructions per realtime item on the host's hot path, counted by callgrind.

    python bench/hot_path.py [--items N] [--peers 4,16] [--sizes 100,4000,128000]
                             [--sink outbound|counter]

What the server does for each item a page sends, without sockets: the session checks it
(`Session.receive_item`: joined, size, the page's budget), the shell counts it and publishes
it through the in-memory broker, the hub names the receivers, the frame is encoded once and
handed to every receiver's `Outbound` (its socket room and receive window checked, gathered,
written at the end of the loop turn to a transport that takes everything); with
`--sink counter`, to a counter instead, as this benchmark measured before receivers had
queues and windows. Each case runs twice under
`valgrind --tool=callgrind`, with no items and with N, and the difference divided by N is
reported: instructions do not depend on what else the machine is doing, unlike the CPU
time of `bench/realtime.py` on a shared VM, so a change to the hot path can be measured to
the percent. Items are stamped (`wire.items`) as the bridge and the Python peer send
them. aiohttp's frame parsing and the socket writes are not included (they are the
same whatever the session does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_items(items: int, peers: int, size: int, sink_kind: str = "outbound") -> None:
    """The measured loop (run under callgrind by `main`)."""
    sys.path.insert(0, str(ROOT / "src"))
    from webxdc_rt.brokers.memory import InMemoryBroker
    from webxdc_rt.core import wire
    from webxdc_rt.core.budget import PageBudget
    from webxdc_rt.core.fanout import Published
    from webxdc_rt.core.limits import ChatLimits, DeliveryLimits, RealtimeLimits, UpdateLimits
    from webxdc_rt.core.realtime import RealtimeHub
    from webxdc_rt.core.session import Publish, Session, SessionRules, Subscribe
    from webxdc_rt.core.stats import HostStats
    from webxdc_rt.host.outbound import Outbound, WriteBatcher
    from webxdc_rt.host.settings import HostSettings
    from webxdc_rt.host.sockets import Sockets

    class Counter:
        __slots__ = ("frames",)

        def __init__(self) -> None:
            self.frames = 0

        def deliver(self, parts: object, size: int, item: Published) -> None:
            self.frames += 1

    class Transport:  # a socket that takes everything at once
        __slots__ = ("frames",)

        def __init__(self) -> None:
            self.frames = 0

        def get_write_buffer_size(self) -> int:
            return 0

        def is_closing(self) -> bool:
            return False

        def set_write_buffer_limits(self, high: int) -> None:
            pass

        def writelines(self, parts: list[bytes]) -> None:
            self.frames += 1

    class Socket:
        closed = False

    loop = asyncio.new_event_loop()
    batcher = WriteBatcher(loop)

    def new_sink() -> object:
        if sink_kind == "counter":
            return Counter()
        return Outbound(Socket(), Transport(), 16 << 20, 5.0, batcher,  # type: ignore[arg-type]
                        None, DeliveryLimits())  # type: ignore[arg-type]

    def frames(sink: object) -> int:
        return sink.frames if isinstance(sink, Counter) else sink.transport.frames  # type: ignore

    # Budgets wide open: the rate is checked on every item but never binds.
    limits = RealtimeLimits(send_items_per_s=1e12, send_items_burst=10**12,
                            send_bytes_per_s=1e15, send_bytes_burst=10**15)
    hub, broker, stats = RealtimeHub(limits), InMemoryBroker(), HostStats()

    # The host's own fan-out (`Sockets.on_published`); it reads no settings but its hooks.
    on_published = Sockets(HostSettings(), hub, broker, None, stats).on_published  # type: ignore[arg-type]

    rules = SessionRules(UpdateLimits(), ChatLimits(), 32)
    sessions = []

    async def open_sessions() -> None:  # an Outbound watches its socket from the loop
        for _ in range(peers):
            budget = PageBudget.fresh(limits, UpdateLimits(), ChatLimits(), 100.0, 200, 0.0)
            session = Session(hub, hub.open("topic", new_sink(), 0.0, budget.realtime),
                              budget, rules)
            # Stamped items, as the bridge and the Python peer send and receive them.
            join = '{"type":"join","epoch":1,"stamped":true}'
            for effect in session.receive_text(join, 0.0):
                if isinstance(effect, Subscribe):
                    broker.subscribe(effect.topic, on_published)
            sessions.append(session)

    loop.run_until_complete(open_sessions())
    sender, payload = sessions[0], wire.encode_stamp(0.0) + bytes(size)

    async def send_all() -> None:
        for n in range(items):  # as SocketShell._read's hot path, one item a loop turn
            effects = sender.receive_item(payload, float(n))
            first = effects[0]
            if len(effects) != 1 or type(first) is not Publish:
                raise AssertionError(effects)
            stats.realtime_items_in += 1
            stats.realtime_bytes_in += len(payload)
            broker.publish(first.topic, first.item)
            if sink_kind != "counter":
                await asyncio.sleep(0)  # the end of the turn: each receiver's one write

    loop.run_until_complete(send_all())
    assert all(frames(s.conn.sink) == items for s in sessions[1:])


def instructions(items: int, peers: int, size: int, sink_kind: str) -> int:
    """Instructions callgrind counts for a run with `items` items."""
    return callgrind_refs([__file__, "--sink", sink_kind, "--run", str(items), str(peers),
                           str(size)], dict(os.environ, PYTHONHASHSEED="0"))


def callgrind_refs(arguments: list[str], env: dict[str, str]) -> int:
    """Instructions callgrind counts for `python ARGUMENTS` in `env`."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         *arguments], capture_output=True, text=True, env=env, check=True)
    match = re.search(r"refs:\s+([\d,]+)", done.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--peers", default="4,16")
    parser.add_argument("--sizes", default="100,4000,128000")
    parser.add_argument("--sink", choices=("outbound", "counter"), default="outbound")
    parser.add_argument("--run", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_items(*args.run, sink_kind=args.sink)
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/hot_path.py needs valgrind (Debian package valgrind)")
    print("size   peers  instructions per item  per delivery")
    for size in map(int, args.sizes.split(",")):
        for peers in map(int, args.peers.split(",")):
            per_item = (instructions(args.items, peers, size, args.sink)
                        - instructions(0, peers, size, args.sink)) / args.items
            print(f"{size:>6} {peers:>6} {per_item:>22,.0f} {per_item / (peers - 1):>13,.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
