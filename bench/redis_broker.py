#!/usr/bin/env python3
"""Instructions per realtime item through the Redis broker, counted by callgrind.

    python bench/redis_broker.py [--items N] [--size BYTES] [--src PATH] [--cluster]

Two `RedisBroker`s in one process stand for two host processes on one redis-server (started
here on a free loopback port, nothing persisted): one publishes N items on a channel, the
other receives them. Both sides of the broker are measured (framing the `SPUBLISH`, the
write, hiredis parsing the acknowledgements and the `smessage`s, decoding and handing each
item on), Redis itself is not (it is another process). Each case runs under
`valgrind --tool=callgrind` with no items and with N, and the difference divided by N is
reported, so the figure does not depend on the machine's load. `--src` names the source
tree to measure (e.g. another worktree's `src`), to compare two versions. `--cluster` runs
the same through `RedisClusterBroker` on a three-primary Redis Cluster started here.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_items(src: str, url: str, items: int, size: int) -> None:
    """The measured run (under callgrind, from `main`)."""
    sys.path.insert(0, src)
    from webxdc_rt.brokers.limits import BrokerLimits
    from webxdc_rt.brokers.redis import RedisBroker, parse_redis_url
    from webxdc_rt.core import wire
    from webxdc_rt.core.fanout import Published

    topic = "rt/chat-1/app-1"
    # The stamp beside the payload, or (in versions before it was) in front of it.
    stamp, body = wire.encode_stamp(1.0), b"p" * size
    parts = (stamp, body) if "stamp" in Published._fields else (stamp + body,)

    async def run() -> None:
        address = parse_redis_url(url)
        if getattr(address, "cluster", False):  # older versions have no cluster broker
            from webxdc_rt.brokers.redis import RedisClusterBroker as Broker
        else:
            Broker = RedisBroker  # noqa: N806 (a class, as in the branch above)
        one, two = Broker(address, BrokerLimits()), Broker(address, BrokerLimits())
        item = Published(one.node_id, 1, *parts)
        await one.start()
        await two.start()
        done = asyncio.get_running_loop().create_future()
        received = 0

        def on_item(_topic: str, _item: Published) -> None:
            nonlocal received
            received += 1
            if received == items and not done.done():
                done.set_result(None)

        two.subscribe(topic, on_item)
        await two.ready(topic)
        for start in range(0, items, 100):  # as pages send: bursts, one loop turn each
            for _ in range(min(100, items - start)):
                one.publish(topic, item)
            await asyncio.sleep(0)
        if items:
            await asyncio.wait_for(done, 120)
        await one.close()
        await two.close()

    asyncio.run(run())


def instructions(src: str, url: str, items: int, size: int) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--run", "--src", src, "--url", url, "--items", str(items),
         "--size", str(size)], capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None or done.returncode != 0:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--src", default=str(ROOT / "src"))
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_items(args.src, args.url, args.items, args.size)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from redis_cluster import RedisCluster
    from redis_server import RedisServer

    with tempfile.TemporaryDirectory() as folder:
        redis = (RedisCluster(Path(folder)) if args.cluster
                 else RedisServer(Path(folder))).start()
        try:
            base = instructions(args.src, redis.url, 0, args.size)
            full = instructions(args.src, redis.url, args.items, args.size)
        finally:
            redis.stop()
    kind = "a Redis Cluster" if args.cluster else "one Redis"
    print(f"{(full - base) / args.items:.0f} instructions per item on {kind} "
          f"({args.items} items of {args.size} bytes, {args.src})")


if __name__ == "__main__":
    main()
