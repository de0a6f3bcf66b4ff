"""A page's allowances hold across `webxdc-rt serve` processes sharing one Redis or one
Redis Cluster: one page with a socket on each of two processes gets its allowance once, not
once per process; and while Redis is unreachable each process gives the page its whole
allowance (fail open)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from peers import Member, eventually, joined
from redis_cluster import RedisCluster
from redis_server import RedisServer
from serve_processes import ServeProcess

BURST = 20
"""The page's burst of realtime items; its rate is next to nothing (one per 100 s), so what a
page may send in the test is its burst."""
LIMITS = ("--limit", f"realtime.send_items_burst={BURST}",
          "--limit", "realtime.send_items_per_s=0.01",
          "--limit", "updates.burst=10", "--limit", "updates.interval_ms=100000")


@pytest.fixture(params=["redis", "cluster"])
def broker_url(request, tmp_path) -> Iterator[str]:
    """The URL of a Redis, or of a Redis Cluster of three primaries, of the test's own."""
    if request.param == "redis":
        server = RedisServer(tmp_path / "redis").start()
        yield server.url
        server.stop()
    else:
        cluster = RedisCluster(tmp_path / "cluster").start()
        yield cluster.url
        cluster.stop()


@pytest.fixture
def two_hosts(tmp_path, broker_url) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    """Two processes serving one chat through `broker_url`, started one after the other
    (the first creates the chat in the shared data folder)."""
    hosts: list[ServeProcess] = []
    try:
        for _ in range(2):
            hosts.append(ServeProcess(tmp_path, tmp_path / "data", broker_url,
                                      options=LIMITS))
        yield hosts[0], hosts[1]
    finally:
        for host in hosts:
            host.stop()


async def flood_until_paced(senders: list[Member], markers: list[Member],
                            receiver: Member) -> int:
    """Every sender sends three bursts' worth at once and waits until the host slows it
    (`rate-limited`); then each marker (another page, on the process of the sender at the
    same index) sends one item, which reaches `receiver` after everything that process
    published before. Returns how many of the senders' items reached `receiver`."""
    for sender in senders:
        for index in range(3 * BURST):
            sender.channel.send(b"item %d" % index)
    for sender in senders:
        await eventually(lambda s=sender: any(error.code == "rate-limited"
                                              for error in s.peer.errors), timeout=30)
    for index, marker in enumerate(markers):
        marker.channel.send(b"marker %d" % index)
    for index in range(len(markers)):
        await receiver.got(b"marker %d" % index)
    return sum(1 for item in receiver.inbox if item.startswith(b"item"))


async def test_one_page_on_two_processes_gets_its_allowance_once(two_hosts):
    one, two = two_hosts
    alice_here, alice_there = await joined(one.urls["alice"]), await joined(two.urls["alice"])
    carol_here, carol_there = await joined(one.urls["carol"]), await joined(two.urls["carol"])
    bob = await joined(one.urls["bob"])
    arrived = await flood_until_paced([alice_here, alice_there], [carol_here, carol_there],
                                      bob)
    # Each process may spend one item per socket past what it held (`core.shares`).
    assert BURST <= arrived <= BURST + 2
    for member in (alice_here, alice_there, carol_here, carol_there, bob):
        await member.peer.close()


async def test_without_redis_each_process_gives_the_whole_allowance(tmp_path):
    redis = RedisServer(tmp_path / "redis")  # never started: unreachable from the first
    one = ServeProcess(tmp_path, tmp_path / "data", redis.url, options=LIMITS)
    try:
        alice, carol = await joined(one.urls["alice"]), await joined(one.urls["carol"])
        bob = await joined(one.urls["bob"])
        arrived = await flood_until_paced([alice], [carol], bob)
        assert arrived == BURST + 1  # the burst, and the item that went into debt
        assert len(one.warnings("budgets:")) == 1  # said once, however often it applied
        assert "whole allowance" in one.warnings("budgets:")[0]
        for member in (alice, carol, bob):
            await member.peer.close()
    finally:
        one.stop()


async def test_status_updates_beyond_the_pages_burst_are_refused_across_processes(
        two_hosts):
    updates_burst = 10  # set in LIMITS, with a pace of one per 100 s
    one, two = two_hosts
    senders = [await joined(one.urls["alice"]), await joined(two.urls["alice"])]
    accepted: list[list[int]] = [[], []]
    for index, sender in enumerate(senders):
        # Each process sends its own pages the updates it stored, live.
        await sender.peer.set_update_listener(
            lambda update, mine=accepted[index]: mine.append(update["payload"]))
    for index, sender in enumerate(senders):
        for _ in range(2 * updates_burst):
            sender.peer.send_update({"payload": index})

    def refused(member: Member) -> int:
        return sum(1 for error in member.peer.errors if error.code == "update-rate")

    for index, sender in enumerate(senders):
        await eventually(lambda i=index, s=sender:
                         len(accepted[i]) + refused(s) == 2 * updates_burst, timeout=30)
    assert updates_burst // 2 <= len(accepted[0]) + len(accepted[1]) <= updates_burst
    for sender in senders:
        await sender.peer.close()
