"""The Redis broker against a real redis-server: two brokers in one event loop stand for two
host processes (each has its own node id and its own connections to Redis)."""

from __future__ import annotations

import asyncio
import logging
import signal

import pytest
from peers import eventually
from ports import free_port
from redis_server import RedisServer

from webxdc_rt.brokers.items import encode_header, origin_prefix
from webxdc_rt.brokers.limits import BrokerLimits
from webxdc_rt.brokers.redis import RedisAddress, RedisBroker, RedisTls, parse_redis_url
from webxdc_rt.core import wire
from webxdc_rt.core.fanout import Published

TOPIC = "rt/chat-1/app-1"
CHANNEL = f"webxdc-rt:0:{TOPIC}"
FAST = BrokerLimits(reconnect_min_s=0.02, reconnect_max_s=0.2)


class Recorder:
    """A subscriber that keeps the payloads it is handed."""

    def __init__(self) -> None:
        self.items: list[Published] = []

    def __call__(self, topic: str, item: Published) -> None:
        assert topic == TOPIC
        self.items.append(item)

    @property
    def payloads(self) -> list[bytes]:
        return [bytes(item.payload) for item in self.items]


@pytest.fixture
def brokers(redis_server, started):
    """A factory of started brokers on the test's Redis, all closed after."""

    async def start(limits: BrokerLimits = FAST, port: int | None = None,
                    max_payload_bytes: int = 128_000) -> RedisBroker:
        address = RedisAddress("127.0.0.1", port or redis_server.port)
        return await started(RedisBroker(address, limits, max_payload_bytes))

    return start


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("webxdc_rt.brokers.redis") and r.levelno >= logging.WARNING]


def item(broker: RedisBroker, payload: bytes, sender: int = 1) -> Published:
    return Published(broker.node_id, sender, wire.encode_stamp(1.0), payload)


async def subscribed(broker: RedisBroker, recorder: Recorder) -> Recorder:
    broker.subscribe(TOPIC, recorder)
    await broker.ready(TOPIC)
    return recorder


# -- the address --------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("redis://localhost", RedisAddress("localhost", 6379, 0)),
    ("redis://10.0.0.5:6380/3", RedisAddress("10.0.0.5", 6380, 3)),
    ("redis://[::1]:7000/0", RedisAddress("::1", 7000, 0)),
    ("redis://:s%40cret@h:1/", RedisAddress("h", 1, 0, None, "s@cret")),
    ("redis://me:pw@h/2", RedisAddress("h", 6379, 2, "me", "pw")),
    ("rediss://h:6380/1", RedisAddress("h", 6380, 1, tls=RedisTls())),
    ("rediss://h?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem",
     RedisAddress("h", tls=RedisTls("/ca.pem", "/c.pem", "/k.pem"))),
    ("rediss://h?ssl_cert_reqs=none", RedisAddress("h", tls=RedisTls(cert_reqs="none"))),
    ("redis+cluster://a:7000,b:7001,[::1]:7002/0",
     RedisAddress("a", 7000, cluster=True, seeds=(("b", 7001), ("::1", 7002)))),
    ("rediss+cluster://:pw@a", RedisAddress("a", password="pw", tls=RedisTls(),
                                            cluster=True)),
])
def test_redis_urls_are_read(url, expected):
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize("url, fragment", [
    ("http://localhost:6379", "expects a redis://"),
    ("redis+sentinel://localhost", "expects a redis://"),
    ("redis://a:1,b:2", "not a valid"),
    ("redis+cluster://a:1,", "names no host"),
    ("rediss://h?ssl_cert_reqs=optional", "required or none"),
    ("rediss://h?ssl=true", "only the query options"),
    ("rediss://h?ssl_ca_certs=a&ssl_ca_certs=b", "each once"),
    ("rediss://h?ssl_keyfile=k.pem", "needs ssl_certfile"),
    ("localhost:6379", "expects a redis://"),
    ("redis://", "names no host"),
    ("redis://h:99999", "not a valid"),
    ("redis://h:0", "from 1 to 65535"),
    ("redis://h:x", "not a valid"),
    ("redis://h/db1", "database number"),
    ("redis://h/1/2", "database number"),
    ("redis://h/0?ssl=1", "no query"),
])
def test_bad_redis_urls_are_refused_with_the_reason(url, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_redis_url(url)


def test_messages_never_show_the_password():
    with pytest.raises(ValueError) as refused:
        parse_redis_url("redis://me:hunter2@h/x")
    assert "hunter2" not in str(refused.value)
    assert "hunter2" not in str(parse_redis_url("redis://me:hunter2@h/1"))
    with pytest.raises(ValueError) as refused:
        parse_redis_url("redis+cluster://me:hunter2@a:1,b:x")
    assert "hunter2" not in str(refused.value)


# -- items between processes --------------------------------------------------------------

async def test_the_stamp_and_payload_cross_as_they_were_published(brokers):
    """The stamp travels beside the payload in the process and in front of it on Redis:
    what arrives has both as they were, at any size (a large payload as a view)."""
    one, two = await brokers(), await brokers()
    there = await subscribed(two, Recorder())
    payloads = [b"", b"small", bytes(range(256)) * 32 + b"!", bytes(128_000)]
    for number, payload in enumerate(payloads):
        one.publish(TOPIC, Published(one.node_id, 1, wire.encode_stamp(float(number)),
                                     memoryview(payload) if len(payload) > 8192 else payload))
    await eventually(lambda: len(there.items) == len(payloads))
    assert [i.stamp for i in there.items] == [wire.encode_stamp(float(n))
                                              for n in range(len(payloads))]
    assert there.payloads == payloads


async def test_items_cross_in_order_once_and_never_back_to_their_process(brokers, redis_server):
    one, two = await brokers(), await brokers()
    here, there = await subscribed(one, Recorder()), await subscribed(two, Recorder())
    assert redis_server.shard_subscribers(CHANNEL) == 2
    sent = [b"%d" % i for i in range(2000)]
    for payload in sent:
        one.publish(TOPIC, item(one, payload, sender=7))
    await eventually(lambda: len(there.items) == len(sent))
    assert there.payloads == sent
    assert {(i.origin, i.sender) for i in there.items} == {(one.node_id, 7)}
    # The publishing process got each item once, directly, and skipped Redis's copy.
    two.publish(TOPIC, item(two, b"fence"))
    await eventually(lambda: b"fence" in here.payloads)
    assert here.payloads == [*sent, b"fence"]
    assert one.counts.published == len(sent) and one.counts.dropped == 0
    assert two.counts.received == len(sent) and two.counts.malformed == 0


async def test_a_process_listens_on_redis_only_while_subscribed(brokers, redis_server):
    one, two, witness = await brokers(), await brokers(), await brokers()
    there = Recorder()
    assert redis_server.shard_subscribers(CHANNEL) == 0
    await subscribed(two, there)
    assert redis_server.shard_subscribers(CHANNEL) == 1
    seen = await subscribed(witness, Recorder())
    two.unsubscribe(TOPIC, there)
    await eventually(lambda: redis_server.shard_subscribers(CHANNEL) == 1)
    one.publish(TOPIC, item(one, b"after leave"))
    await eventually(lambda: seen.payloads == [b"after leave"])  # Redis has passed it on
    again = await subscribed(two, Recorder())  # a new join: only what comes after it
    one.publish(TOPIC, item(one, b"after join"))
    await eventually(lambda: again.payloads == [b"after join"])
    assert there.payloads == []


async def test_ready_returns_once_redis_confirmed_the_subscription(brokers):
    one, two = await brokers(), await brokers()
    there = Recorder()
    two.subscribe(TOPIC, there)
    await two.ready(TOPIC)
    one.publish(TOPIC, item(one, b"right after the join"))  # no wait in between
    await eventually(lambda: there.payloads == [b"right after the join"])


async def test_messages_that_are_not_items_are_dropped_counted_and_reported_once(
        brokers, redis_server, caplog):
    one, two = await brokers(), await brokers(max_payload_bytes=100)
    there = await subscribed(two, Recorder())
    junk = [b"", b"\x01", b"hello", bytes([1, 3]) + b"a:c" + b"\0" * 8,
            encode_header(origin_prefix("abc"), 1, b"x" * wire.ITEM_HEADER_BYTES) + b"x" * 101]
    for message in junk:
        assert redis_server.command("SPUBLISH", CHANNEL, message) == 1
    one.publish(TOPIC, item(one, b"still delivered"))
    await eventually(lambda: there.payloads == [b"still delivered"])
    assert two.counts.malformed == len(junk)
    assert len([w for w in warnings(caplog) if "not a realtime item" in w]) == 1
    assert two.connected


async def test_an_oversized_message_costs_the_connection_not_the_process(
        brokers, redis_server, caplog):
    one, two = await brokers(), await brokers(max_payload_bytes=1000)
    there = await subscribed(two, Recorder())
    redis_server.command("SPUBLISH", CHANNEL, b"\1" * (1000 + 200_000))
    # The subscribing connection is dropped at the bound, and opened again by itself.
    await eventually(lambda: any("over 66536 bytes" in w for w in warnings(caplog)))
    await eventually(lambda: two.connected)
    await two.ready(TOPIC)
    one.publish(TOPIC, item(one, b"after"))
    await eventually(lambda: there.payloads == [b"after"])


# -- faults -------------------------------------------------------------------------------

async def test_unreachable_at_start_then_reachable(brokers, tmp_path, caplog):
    port = free_port()
    one = await brokers(port=port)
    assert not one.connected
    local = await subscribed(one, Recorder())
    one.publish(TOPIC, item(one, b"local only"))
    assert local.payloads == [b"local only"]  # this process's pages keep working
    assert one.counts.dropped == 1
    assert len(warnings(caplog)) == 1 and "unreachable" in warnings(caplog)[0]
    server = RedisServer(tmp_path / "late-redis", port).start()
    try:
        await eventually(lambda: one.connected)
        two = await brokers(port=port)
        there = await subscribed(two, Recorder())
        await one.ready(TOPIC)
        one.publish(TOPIC, item(one, b"across"))
        await eventually(lambda: there.payloads == [b"across"])
        back = [w for w in warnings(caplog) if "reachable again" in w]
        assert len(back) == 1 and "1 realtime items could not cross" in back[0]
    finally:
        await one.close()
        server.stop()


async def test_redis_restarted_mid_stream(brokers, redis_server, caplog):
    one, two = await brokers(), await brokers()
    here, there = await subscribed(one, Recorder()), await subscribed(two, Recorder())
    sequence = 0

    def send() -> None:
        nonlocal sequence
        sequence += 1
        one.publish(TOPIC, item(one, b"%d" % sequence))

    send()
    await eventually(lambda: len(there.items) == 1)
    redis_server.stop()
    await eventually(lambda: not one.connected and not two.connected)
    for _ in range(5):
        send()
    redis_server.start()
    await eventually(lambda: one.connected and two.connected)
    await two.ready(TOPIC)
    send()
    await eventually(lambda: there.payloads[-1] == b"%d" % sequence)
    numbers = [int(p) for p in there.payloads]
    assert numbers == sorted(set(numbers))  # in order, no duplicates
    assert [int(p) for p in here.payloads] == list(range(1, sequence + 1))
    assert one.counts.dropped >= 5
    down = [w for w in warnings(caplog) if "unreachable" in w]
    back = [w for w in warnings(caplog) if "reachable again" in w]
    assert len(down) == 2 and len(back) == 2  # one pair per broker


async def test_a_stalled_redis_drops_items_at_the_queue_bound(brokers, redis_server):
    limits = BrokerLimits(max_queued_bytes=256 * 1024, reconnect_min_s=0.02,
                          reconnect_max_s=0.2)
    one = await brokers(limits)
    local = await subscribed(one, Recorder())
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        payload = b"\0" * 100_000
        for _ in range(5000):  # the kernel's socket buffers fill first, then the queue
            one.publish(TOPIC, item(one, payload))
            await asyncio.sleep(0)  # the end of the loop's turn: the batch is written
            if one.counts.dropped:
                break
        assert one.counts.dropped == 1
        assert len(local.items) == one.counts.published + 1  # local delivery never stopped
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    two = await brokers()
    there = await subscribed(two, Recorder())
    one.publish(TOPIC, item(one, b"flowing again"))
    await eventually(lambda: there.payloads[-1:] == [b"flowing again"])


async def test_a_redis_without_sharded_pub_sub_is_reported_once(tmp_path, caplog):
    server = RedisServer(tmp_path / "old-redis", None, "--rename-command", "SPUBLISH", "",
                         "--rename-command", "SSUBSCRIBE", "").start()
    broker = RedisBroker(RedisAddress("127.0.0.1", server.port), FAST)
    try:
        await broker.start()
        local = await subscribed(broker, Recorder())
        for n in range(3):
            broker.publish(TOPIC, item(broker, b"%d" % n))
        assert local.payloads == [b"0", b"1", b"2"]  # this process's pages keep working
        await eventually(lambda: broker.counts.dropped == 3)
        assert broker.counts.published == 0
        assert len(warnings(caplog)) == 1
        assert "needs Redis 7 or later" in warnings(caplog)[0]
        assert broker.connected
    finally:
        await broker.close()
        server.stop()
