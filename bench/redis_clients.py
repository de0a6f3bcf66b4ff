#!/usr/bin/env python3
"""CPU per message of two ways to speak to Redis from asyncio: redis-py's asyncio client
(pipelines of 100 `SPUBLISH`, and `PubSub.get_message` on an `SSUBSCRIBE`d channel) and
hiredis on an asyncio transport, as `webxdc_rt.redis_broker` does.

    .venv/bin/pip install redis     # only this benchmark needs redis-py
    .venv/bin/python bench/redis_clients.py

It starts its own redis-server on a free loopback port (nothing persisted) and measures this
process's utime+stime per message for 50,000 messages of 125 bytes (an item's header and a
100-byte payload), on uvloop.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import subprocess
import sys
import tempfile
import time

import hiredis
import uvloop

COUNT = 50_000
MESSAGE = b"\x01\x10" + b"0123456789abcdef" + b"\0" * 8 + b"p" * 100
CHANNEL = b"bench"
BATCH = 100


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Counter(asyncio.Protocol):
    """Counts the replies hiredis parses from a connection."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.count = 0
        self.target = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.reader.gets() is not False:
            self.count += 1
        if self.count >= self.target and not self.done.done():
            self.done.set_result(None)


async def hiredis_publish(port: int) -> float:
    loop = asyncio.get_running_loop()
    transport, counter = await loop.create_connection(Counter, "127.0.0.1", port)
    counter.target = COUNT
    command = hiredis.pack_command(("SPUBLISH", CHANNEL, MESSAGE))
    started = cpu()
    for _ in range(0, COUNT, BATCH):
        transport.writelines([command] * BATCH)
        await asyncio.sleep(0)
    await counter.done
    spent = cpu() - started
    transport.close()
    return spent


async def redis_py_publish(port: int) -> float:
    import redis.asyncio as aredis
    client = aredis.Redis(port=port)
    started = cpu()
    for _ in range(0, COUNT, BATCH):
        pipe = client.pipeline(transaction=False)
        for _ in range(BATCH):
            pipe.execute_command("SPUBLISH", CHANNEL, MESSAGE)
        await pipe.execute()
    spent = cpu() - started
    await client.aclose()
    return spent


def publisher(port: int) -> subprocess.Popen[bytes]:
    """Another process that publishes COUNT messages (its CPU is not counted here)."""
    return subprocess.Popen([sys.executable, __file__, "--publish", str(port)])


async def hiredis_receive(port: int) -> float:
    loop = asyncio.get_running_loop()
    transport, counter = await loop.create_connection(Counter, "127.0.0.1", port)
    counter.target = 1
    transport.write(hiredis.pack_command(("SSUBSCRIBE", CHANNEL)))
    await counter.done
    counter.done, counter.target = loop.create_future(), COUNT + 1
    process = publisher(port)
    while counter.count == 1:
        await asyncio.sleep(0.001)
    started = cpu()
    await counter.done
    spent = cpu() - started
    transport.close()
    process.wait()
    return spent


async def redis_py_receive(port: int) -> float:
    import redis.asyncio as aredis
    client = aredis.Redis(port=port)
    pubsub = client.pubsub()
    await pubsub.ssubscribe(CHANNEL)
    await pubsub.get_message(timeout=1)  # the confirmation
    process = publisher(port)
    received, started = 0, None
    while received < COUNT:
        if await pubsub.get_message(ignore_subscribe_messages=True, timeout=5) is None:
            continue
        if started is None:
            started = cpu()
        received += 1
    spent = cpu() - (started or cpu())
    await client.aclose()
    process.wait()
    return spent


async def main() -> None:
    if sys.argv[1:2] == ["--publish"]:
        await asyncio.sleep(0.2)
        await hiredis_publish(int(sys.argv[2]))
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", folder],
                                  stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            for name, measure in (("publish, redis-py pipelines", redis_py_publish),
                                  ("publish, hiredis", hiredis_publish),
                                  ("receive, redis-py PubSub", redis_py_receive),
                                  ("receive, hiredis", hiredis_receive)):
                spent = await measure(port)
                print(f"{name:<30} {spent / COUNT * 1e6:6.2f} µs CPU per message")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    uvloop.run(main())
