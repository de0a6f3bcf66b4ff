"""A Redis that accepts connections and never answers (stopped, overloaded, a half-dead
network path) is as unreachable for pages' budgets as one that refuses connections: each
process gives a page its whole allowance on its own (fail open) instead of refusing every
status update past the share it held when Redis stalled."""

from __future__ import annotations

import os
import signal

from peers import eventually, joined
from redis_server import RedisServer
from serve_processes import ServeProcess

UPDATES_BURST = 10
LIMITS = ("--limit", f"updates.burst={UPDATES_BURST}",
          "--limit", "updates.interval_ms=100000",
          "--limit", "broker.budget_answer_timeout_s=0.5")


async def test_a_stalled_redis_fails_open_for_status_updates(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    host = ServeProcess(tmp_path, tmp_path / "data", redis.url, options=LIMITS)
    assert redis.process is not None
    stopped = False
    try:
        alice = await joined(host.urls["alice"])
        stored: list[int] = []
        await alice.peer.set_update_listener(lambda update: stored.append(update["payload"]))
        alice.peer.send_update({"payload": 0})
        await eventually(lambda: stored == [0])  # Redis answered the first share
        os.kill(redis.process.pid, signal.SIGSTOP)
        stopped = True
        alice.peer.send_update({"payload": -1})  # spends the share held: asks the pool
        # Whatever is refused while the stall is not yet known, the process then answers
        # pools itself and the page has its burst again.
        await eventually(lambda: host.warnings("budgets: no answer"), timeout=30)
        refused_before = sum(1 for e in alice.peer.errors if e.code == "update-rate")
        for index in range(1, UPDATES_BURST):
            alice.peer.send_update({"payload": index})
        await eventually(lambda: len(stored) + sum(
            1 for e in alice.peer.errors if e.code == "update-rate") - refused_before
            >= UPDATES_BURST, timeout=30)
        assert len([p for p in stored if p > 0]) == UPDATES_BURST - 1
        await alice.peer.close()
    finally:
        if stopped:
            os.kill(redis.process.pid, signal.SIGCONT)
        host.stop()
        redis.stop()
