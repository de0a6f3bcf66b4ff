#!/usr/bin/env python3
"""What sharing a page's allowances between processes costs per realtime item.

    python bench/shared_budgets.py [--items N] [--requests N]

Two measurements:

1. Instructions per item of `Session.receive_item` (the session's check and the page's
   budget charged), counted by callgrind as `bench/hot_path.py` does (a run with N items
   less a run with none, divided by N), with the page's own budget and with a shared one
   whose pool answers at once in the process (`core.shares.take`): the share's counters on
   every item and, once per half share, a request and its answer. The realtime limits are
   the defaults (2000 items per share of 200) and one item is sent per millisecond, so the
   rate never binds. Instruction counts do not depend on the machine's load.
2. A request to a real Redis (`brokers.redis.budgets.RedisShares`, one `EVAL` of the pool
   script): its round trip, this process's CPU and redis-server's CPU per request, one
   request in flight at a time. Per item it is divided by the items one request serves
   (half a share: 100 by default). CPU and wall time depend on the machine's load: say
   what it was when quoting them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def run_items(items: int, shared: bool) -> None:
    """The measured loop (run under callgrind by `instructions`)."""
    from webxdc_rt.core import wire
    from webxdc_rt.core.budget import PageBudget
    from webxdc_rt.core.limits import ChatLimits, RealtimeLimits, UpdateLimits
    from webxdc_rt.core.realtime import RealtimeHub
    from webxdc_rt.core.session import Publish, Session, SessionRules
    from webxdc_rt.core.shares import Pool, Shared, shared_page_budget, take

    class LocalPools:  # answers at once, as a pool in the process
        def __init__(self) -> None:
            self.pools: dict[str, Pool] = {}
            self.now = 0.0

        def ask(self, share: Shared) -> None:
            grants, balances = [], []
            for name, rate, burst, debt, want in share.request():
                pool, granted = take(self.pools.get(name), rate, burst, debt, want, self.now)
                self.pools[name] = pool
                grants.append(granted)
                balances.append(pool.balance)
            share.granted(tuple(grants), tuple(balances), self.now)

        def give_back(self, share: Shared) -> None:
            pass

    limits, source = RealtimeLimits(), LocalPools()
    hub = RealtimeHub(limits)
    budget = PageBudget.fresh(limits, UpdateLimits(), ChatLimits(), 100.0, 200, 0.0)
    if shared:
        budget = shared_page_budget("page", source, 0.1, 0.05, budget, 0.0)
    session = Session(hub, hub.open("topic", None, 0.0, budget.realtime),  # type: ignore
                      budget, SessionRules(UpdateLimits(), ChatLimits(), 32))
    session.receive_text('{"type":"join","epoch":1,"stamped":true}', 0.0)
    payload = wire.encode_stamp(0.0) + bytes(100)
    for n in range(items):
        now = n / 1000.0
        source.now = now
        effects = session.receive_item(payload, now)
        if len(effects) != 1 or type(effects[0]) is not Publish:
            raise AssertionError(effects)


def instructions(items: int, shared: bool) -> int:
    """Instructions callgrind counts for a run with `items` items."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--run", str(items), "shared" if shared else "own"],
        capture_output=True, text=True, env=env, check=True)
    match = re.search(r"refs:\s+([\d,]+)", done.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


async def redis_requests(port: int, count: int) -> tuple[float, float]:
    """Round trip and this process's CPU per request, in microseconds."""
    from webxdc_rt.brokers.limits import BrokerLimits
    from webxdc_rt.brokers.redis import parse_redis_url
    from webxdc_rt.brokers.redis.budgets import RedisShares
    from webxdc_rt.core.limits import RealtimeLimits
    from webxdc_rt.core.shares import SharedSendBudget

    shares = RedisShares(parse_redis_url(f"redis://127.0.0.1:{port}/0"), BrokerLimits())
    await shares.start()
    limits = RealtimeLimits()
    share = SharedSendBudget("page", shares, limits.send_items_per_s, limits.send_items_burst,
                             limits.send_bytes_per_s, limits.send_bytes_burst, 0.1, 0.05,
                             time.monotonic())
    loop = asyncio.get_running_loop()
    started, cpu = time.perf_counter(), _cpu()
    for _ in range(count):
        answered = loop.create_future()
        shares.ask(share)
        share.when_answered(lambda a=answered: a.set_result(None))
        await answered
        shares.give_back(share)  # so that the pool never runs dry
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    await shares.close()
    # Each loop turn is two requests (a take and a give-back); the round trip is the take's.
    return wall / count * 1e6, cpu / (2 * count) * 1e6


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def redis_cpu(port: int) -> float:
    """redis-server's CPU seconds so far (INFO cpu)."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"INFO cpu\r\n")
        text = b""
        while b"used_cpu_user:" not in text or not text.endswith(b"\r\n"):
            text += conn.recv(65536)
    values = dict(line.split(":", 1) for line in text.decode().splitlines() if ":" in line)
    return float(values["used_cpu_sys"]) + float(values["used_cpu_user"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_items(int(args.run[0]), args.run[1] == "shared")
        return
    if shutil.which("valgrind") is None or shutil.which("redis-server") is None:
        sys.exit("bench/shared_budgets.py needs valgrind and redis-server")
    print("budget  instructions per item (Session.receive_item, 100-byte items)")
    for shared in (False, True):
        per_item = (instructions(args.items, shared) - instructions(0, shared)) / args.items
        print(f"{'shared' if shared else 'own':<7} {per_item:>10,.0f}", flush=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
        try:
            while True:
                try:
                    before = redis_cpu(port)
                    break
                except OSError:
                    time.sleep(0.01)
            rtt, cpu = asyncio.run(redis_requests(port, args.requests))
            server_cpu = (redis_cpu(port) - before) / (2 * args.requests) * 1e6
        finally:
            server.terminate()
            server.wait()
    items = 100  # half of a share of the default 2000-item burst
    print(f"request to Redis: round trip {rtt:.0f} us, host CPU {cpu:.1f} us, redis-server "
          f"CPU {server_cpu:.1f} us; per item (one request per {items} items): host "
          f"{cpu / items:.2f} us, redis-server {server_cpu / items:.2f} us")


if __name__ == "__main__":
    main()
