"""Realtime items between host processes through Redis 7 sharded pub/sub.

Every channel's topic is one Redis shard channel (`webxdc-rt:<db>:<topic>`), so a Redis
Cluster would spread channels over its shards. A process subscribes (`SSUBSCRIBE`) to a
channel only while one of its connections is joined there, and publishes (`SPUBLISH`) every
item its connections send as one binary message (`broker_items`: origin, sender, payload).

The publishing process hands each item to its own receivers directly, at once, and to Redis
for the others; the copy Redis brings back to it is recognised by its origin and skipped. So
local receivers never wait for Redis, a Redis outage costs them nothing, and each receiver
gets one sender's items once and in order: local ones over a direct call, remote ones over
one Redis connection that keeps the publisher's order.

`publish` never blocks: items are gathered for one turn of the event loop and written with
one system call; while Redis is unreachable, or once `BrokerLimits.max_queued_bytes` wait
unwritten, an item is dropped and counted (realtime promises no delivery). A lost connection
is reopened with exponential backoff and the process's channels subscribed again, and the
outage is reported once (one warning when Redis is lost, one when it is back).

The client side of the Redis protocol is hiredis (the C parser redis-py itself uses when
installed) on an asyncio transport: redis-py's asyncio client and pub/sub objects cost about
12 µs per published and 20 µs per received message against under 0.5 µs
(`bench/redis_clients.py`), more than the host spends on all the deliveries of an item.

`RedisBroker` (`broker`) is made of a publishing side (`publisher`) and a subscribing side
(`subscriber`), each on one connection kept open by `link`, and the pools of pages'
allowances shared by the processes (`budgets`, on a third connection); `reports` says in
the log, once, what went wrong; `address` reads the `redis://` URL.

Over `rediss://` the connections use TLS, the server's certificate checked (system CAs or
the URL's `ssl_ca_certs`) and required to name the host. On a Redis Cluster
(`redis+cluster://`) `RedisClusterBroker` (`cluster`) keeps such a pair of connections to
every primary and sends each channel's commands to the primary of its hash slot, which it
learns from the cluster (`topology`). Its pools of pages' allowances (`cluster_budgets`)
are kept on the primary of each pool key's hash slot, over a third connection to every
primary; a request follows `MOVED`/`ASK` to the node that holds the pool now, and is
answered from the process's own pool while that primary cannot be reached. Both brokers'
`shares` are `budgets.PagePools`.
"""

from .address import (
    DEFAULT_REDIS_PORT,
    RedisAddress,
    RedisTls,
    checked_tls_context,
    parse_redis_url,
)
from .broker import RedisBroker
from .cluster import RedisClusterBroker, open_redis_broker
from .counts import BrokerCounts

__all__ = ["RedisAddress", "RedisTls", "parse_redis_url", "checked_tls_context",
           "BrokerCounts", "RedisBroker", "RedisClusterBroker", "open_redis_broker",
           "DEFAULT_REDIS_PORT"]
