"""The Redis broker on a Redis Cluster started by the test: channels spread over the
primaries by hash slot (sharded pub/sub), and items keep crossing when an operator moves a
channel's slot to another primary or a primary dies and its replica takes over. Chats,
members and updates live in the store (SQLite or PostgreSQL), not in Redis: only realtime
items cross the cluster, so a failover costs at most the items in flight."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import quote

import pytest
from certificates import issue, make_ca
from peers import eventually, joined
from ports import free_port
from redis_cluster import RedisCluster
from test_redis_processes import running_hosts

from webxdc_rt.brokers.limits import BrokerLimits
from webxdc_rt.brokers.redis import RedisBroker, RedisClusterBroker, parse_redis_url
from webxdc_rt.brokers.redis.budgets import pool_key
from webxdc_rt.brokers.redis.topology import key_slot
from webxdc_rt.core import wire
from webxdc_rt.core.fanout import Published
from webxdc_rt.core.shares import Request

FAST = BrokerLimits(reconnect_min_s=0.02, reconnect_max_s=0.2)
TOPICS = [f"rt/chat-1/app-{index}" for index in range(12)]


def channel(topic: str) -> str:
    return f"webxdc-rt:0:{topic}"


@pytest.fixture(scope="module")
def three_primaries(tmp_path_factory) -> Iterator[RedisCluster]:
    """Three primaries without replicas, for tests that leave the cluster as it was."""
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def own_cluster(tmp_path, request) -> Iterator[RedisCluster]:
    """A cluster of the test's own (three primaries, and the replicas the test asks for
    with `@pytest.mark.parametrize("own_cluster", [N], indirect=True)`)."""
    cluster = RedisCluster(tmp_path / "cluster", replicas=getattr(request, "param", 0))
    yield cluster.start()
    cluster.stop()


@pytest.fixture
def brokers(started):
    """A factory of started cluster brokers, all closed after."""
    async def start(cluster: RedisCluster) -> RedisClusterBroker:
        return await started(RedisClusterBroker(parse_redis_url(cluster.url), FAST))

    return start


def item(broker: RedisClusterBroker, number: int) -> Published:
    return Published(broker.node_id, 1, wire.encode_stamp(1.0), b"%d" % number)


def numbers(items: list[Published]) -> list[int]:
    return [int(item.payload) for item in items]


async def cross_every_topic(cluster: RedisCluster, one: RedisClusterBroker,
                            two: RedisClusterBroker) -> None:
    """Items on every topic cross from `one` to `two` in order, once; each channel's
    subscribers are on the primary of its slot."""
    assert one.connected and two.connected
    here: dict[str, list[Published]] = {topic: [] for topic in TOPICS}
    there: dict[str, list[Published]] = {topic: [] for topic in TOPICS}
    for topic in TOPICS:
        one.subscribe(topic, lambda t, i: here[t].append(i))
        two.subscribe(topic, lambda t, i: there[t].append(i))
        await one.ready(topic)
        await two.ready(topic)
    for topic in TOPICS:
        assert cluster.owner(cluster.slot(channel(topic))).shard_subscribers(
            channel(topic)) == 2
    for number, topic in itertools.product(range(50), TOPICS):
        one.publish(topic, item(one, number))
    for topic in TOPICS:
        await eventually(lambda t=topic: len(there[t]) == 50)
        assert numbers(there[topic]) == list(range(50))  # in order, each once
        assert numbers(here[topic]) == list(range(50))  # its own, directly, never twice
    assert one.counts.dropped == 0 and two.counts.received == 50 * len(TOPICS)


async def test_channels_spread_over_the_primaries_and_items_cross(brokers, three_primaries):
    owners = {three_primaries.owner(three_primaries.slot(channel(t))).port for t in TOPICS}
    assert len(owners) >= 2  # the channels are on more than one shard
    await cross_every_topic(three_primaries, await brokers(three_primaries),
                            await brokers(three_primaries))


@pytest.mark.parametrize("name", [
    "webxdc-rt:0:rt/chat-1/app-1", "", "{user1000}.following", "foo{}{bar}",
    "foo{{bar}}zap", "{bar", "a{b}c{d}", "\u00e9t\u00e9"])
def test_hash_slots_are_those_redis_computes(three_primaries, name):
    assert key_slot(name.encode()) == three_primaries.slot(name)


async def test_the_slot_map_is_learned_from_the_next_node_when_one_is_down(
        started, three_primaries):
    live = three_primaries.servers[1]
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{live.port}/0"
    broker = await started(RedisClusterBroker(parse_redis_url(url), FAST))
    assert broker.connected


async def test_items_cross_on_a_cluster_over_tls(started, tmp_path):
    ca = make_ca(tmp_path / "certs")
    node = issue(ca, tmp_path / "certs", "node")
    cluster = RedisCluster(tmp_path / "cluster", tls=(node.cert, node.key, ca.cert)).start()
    try:
        address = parse_redis_url(f"{cluster.url}?ssl_ca_certs={quote(str(ca.cert))}")
        await cross_every_topic(cluster, await started(RedisClusterBroker(address, FAST)),
                                await started(RedisClusterBroker(address, FAST)))
    finally:
        cluster.stop()


async def test_a_plain_redis_url_on_a_cluster_node_says_to_name_the_cluster(
        started, three_primaries, caplog):
    caplog.set_level(logging.WARNING)
    topic = next(t for t in TOPICS if three_primaries.owner(
        three_primaries.slot(channel(t))) is not three_primaries.servers[0])
    broker = await started(RedisBroker(parse_redis_url(three_primaries.servers[0].url)))
    broker.publish(topic, item(broker, 1))
    await eventually(lambda: broker.counts.dropped == 1)
    assert any("MOVED" in r.getMessage() and "redis+cluster://" in r.getMessage()
               for r in caplog.records)


async def stream(broker: RedisClusterBroker, topic: str, sent: list[int]) -> None:
    """Publish numbered items, a few each millisecond, until cancelled."""
    for number in itertools.count():
        broker.publish(topic, item(broker, number))
        sent.append(number)
        await asyncio.sleep(0.001)  # pacing the stream, not waiting for anything


async def disturbed_stream(brokers, cluster: RedisCluster, topic: str,
                           disturb: Callable[[], Awaitable[None]]) -> list[int]:
    """Stream items from one broker to another on `topic`, `disturb` the cluster once
    items cross, and return the numbers received once items sent well after it crossed
    too."""
    one, two = await brokers(cluster), await brokers(cluster)
    received: list[Published] = []
    two.subscribe(topic, lambda t, i: received.append(i))
    await two.ready(topic)
    sent: list[int] = []
    sender = asyncio.create_task(stream(one, topic, sent))
    try:
        await eventually(lambda: len(received) > 20)
        await disturb()
        disturbed_at = len(sent)
        await eventually(lambda: numbers(received)[-1] > disturbed_at + 50, timeout=30)
    finally:
        sender.cancel()
    await eventually(lambda: one.connected and two.connected)
    return numbers(received)


async def test_items_keep_crossing_when_a_slot_moves_mid_stream(brokers, own_cluster):
    topic = TOPICS[0]
    slot = own_cluster.slot(channel(topic))
    source = own_cluster.owner(slot)
    target = next(p for p in own_cluster.primaries() if p is not source)
    got = await disturbed_stream(brokers, own_cluster, topic, lambda: asyncio.to_thread(
        own_cluster.move, slot, target))
    assert got == sorted(set(got))  # in order, each once, whatever was lost in the move
    assert target.shard_subscribers(channel(topic)) == 1
    assert source.shard_subscribers(channel(topic)) == 0


@pytest.mark.parametrize("own_cluster", [1], indirect=True)
async def test_items_keep_crossing_after_a_primary_dies_and_its_replica_takes_over(
        brokers, own_cluster):
    topic = TOPICS[0]
    slot = own_cluster.slot(channel(topic))
    dead = own_cluster.owner(slot)
    got = await disturbed_stream(brokers, own_cluster, topic, lambda: asyncio.to_thread(
        own_cluster.kill, dead))
    assert got == sorted(set(got))
    # the node asked may learn of the promotion after the broker did
    await eventually(lambda: own_cluster.owner(slot) is not dead, timeout=30)
    assert own_cluster.owner(slot).shard_subscribers(channel(topic)) == 1


async def test_pages_on_two_host_processes_reach_each_other_through_the_cluster(
        three_primaries, tmp_path):
    with running_hosts(tmp_path, three_primaries.url, count=2) as (first, second):
        alice = await joined(first.url("alice"))
        bob = await joined(second.url("bob"))
        sent = [b"item %d" % number for number in range(200)]
        for payload in sent:
            alice.channel.send(payload)
        await eventually(lambda: len(bob.inbox) == len(sent))
        assert bob.inbox == sent and alice.inbox == []
        bob.channel.send(b"back")
        await alice.got(b"back")
        for member in (alice, bob):
            await member.peer.close()


POOL_BURST = 20.0
POOL_RATE = 1e-4
"""A page's pool: 20 tokens, refilled by next to nothing during the test."""


class OneAtATime:
    """A page's share (`core.shares.Shared`) that asks its pool for one token each time
    and counts what it was granted."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.got = 0.0
        self.answers = 0

    def request(self) -> Request:
        return (("items", POOL_RATE, POOL_BURST, 0.0, 1.0),)

    def granted(self, grants: tuple[float, ...], balances: tuple[float, ...],
                now: float) -> None:
        self.got += grants[0]
        self.answers += 1

    def release(self) -> Request:
        return (("items", POOL_RATE, POOL_BURST, 0.0, 0.0),)

    def wake(self) -> None:
        pass


async def take_one(broker: RedisClusterBroker, share: OneAtATime) -> None:
    """Ask `broker`'s pools for one token for `share`, and wait for the answer."""
    answers = share.answers
    broker.shares.ask(share)
    await eventually(lambda: share.answers > answers)


async def test_a_pages_pool_is_counted_once_while_its_slot_moves(brokers, own_cluster,
                                                                 caplog):
    caplog.set_level(logging.WARNING)
    processes = [await brokers(own_cluster), await brokers(own_cluster)]
    shares = [OneAtATime("chat-1/alice"), OneAtATime("chat-1/alice")]

    async def take(rounds: int) -> None:
        for _ in range(rounds):
            for broker, share in zip(processes, shares, strict=True):
                await take_one(broker, share)

    key = pool_key(0, "chat-1/alice")
    slot = own_cluster.slot(key)
    target = next(p for p in own_cluster.primaries() if p is not own_cluster.owner(slot))
    await take(3)
    source = await asyncio.to_thread(own_cluster.begin_move, slot, target)
    await take(2)  # the pool is still on the source, which serves it
    await asyncio.to_thread(own_cluster.migrate_keys, slot, source, target)
    await take(2)  # the source answers ASK: the pool is on the target already
    await asyncio.to_thread(own_cluster.finish_move, slot, source, target)
    await take(2)  # the source answers MOVED
    await take(5)  # the pool is empty after 20 tokens, whichever process took them
    assert POOL_BURST <= shares[0].got + shares[1].got < POOL_BURST + 0.1
    assert target.command("EXISTS", key) == 1
    assert source.command("CLUSTER", "COUNTKEYSINSLOT", str(slot)) == 0
    refusals = source.command("INFO", "errorstats").decode()
    assert "errorstat_ASK:" in refusals and "errorstat_MOVED:" in refusals  # both followed
    assert not [r for r in caplog.records if "budgets:" in r.getMessage()]  # no fail open


@pytest.mark.parametrize("own_cluster", [1], indirect=True)
async def test_a_pages_pool_is_asked_on_the_replica_that_took_over(brokers, own_cluster,
                                                                   caplog):
    caplog.set_level(logging.WARNING)
    broker, share = await brokers(own_cluster), OneAtATime("chat-1/alice")
    key = pool_key(0, "chat-1/alice")
    await take_one(broker, share)
    dead = own_cluster.owner(own_cluster.slot(key))
    await asyncio.to_thread(own_cluster.kill, dead)
    await take_one(broker, share)  # answered by the process's own pool meanwhile

    def said(*fragments: str) -> bool:
        return any(all(fragment in record.getMessage() for fragment in fragments)
                   for record in caplog.records)

    assert said("budgets: no answer from")
    await eventually(lambda: said("budgets: ", "reachable again"), timeout=30)
    # the node asked may learn of the promotion after the broker did
    slot = own_cluster.slot(key)
    await eventually(lambda: own_cluster.owner(slot) is not dead, timeout=30)
    promoted = own_cluster.owner(slot)
    before = float(promoted.command("HGET", key, "items:b"))
    await take_one(broker, share)
    assert promoted is not dead
    assert float(promoted.command("HGET", key, "items:b")) == pytest.approx(before - 1,
                                                                          abs=0.01)
