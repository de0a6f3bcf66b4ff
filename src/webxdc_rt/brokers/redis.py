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
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import SplitResult, unquote, urlsplit

import hiredis

from ..core.fanout import Handler, Published, new_node_id
from ..host.http_guard import describe_exception
from .items import decode_item, encode_header, origin_prefix
from .limits import BrokerLimits
from .memory import Subscriptions

__all__ = ["RedisAddress", "parse_redis_url", "BrokerCounts", "RedisBroker",
           "DEFAULT_REDIS_PORT"]

log = logging.getLogger(__name__)

DEFAULT_REDIS_PORT = 6379
CHANNEL_PREFIX = "webxdc-rt"
SMALL_ITEM_BYTES = 8192
"""Items up to this size are joined into one buffer with their command; larger payloads are
written as they are, never copied."""
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_PROBES = 10, 5, 3
"""TCP keepalive on both connections, so that a Redis host that vanished without closing
them (power loss, a cut network) is noticed within about 25 seconds."""
_PUBLISH_PREFIXES_KEPT = 4096


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where Redis listens, as `--broker redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` says."""

    host: str
    port: int = DEFAULT_REDIS_PORT
    db: int = 0
    """Redis pub/sub is shared by all databases of a server; the number becomes part of
    every channel name, so that deployments sharing one Redis can keep apart by it."""
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        """The address without credentials, for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """The address in a `redis://` URL; ValueError naming what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid redis:// URL ({exc}): {_shown(url)}") from None
    if parts.scheme != "redis":
        raise ValueError(f"expects a redis://HOST:PORT/DB URL, got {_shown(url)}")
    if not parts.hostname:
        raise ValueError(f"names no host: {_shown(url)}")
    if parts.query or parts.fragment:
        raise ValueError(f"takes no query or fragment: {_shown(url)}")
    db_text = parts.path.lstrip("/")
    if "/" in db_text or (db_text and not (db_text.isascii() and db_text.isdigit())):
        raise ValueError(f"the path must be a database number, got {parts.path!r}")
    db = int(db_text) if db_text else 0
    if port == 0:
        raise ValueError(f"port must be from 1 to 65535: {_shown(url)}")
    return RedisAddress(
        host=parts.hostname, port=port or DEFAULT_REDIS_PORT, db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None)


def _shown(url: str) -> str:
    """`url` with any password masked, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return repr(url)
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return repr(SplitResult(parts.scheme, f"{user}:***@{netloc}", parts.path,
                                parts.query, parts.fragment).geturl())
    except ValueError:
        return "(an unreadable URL)"


@dataclass(slots=True)
class BrokerCounts:
    """What crossed Redis, and what did not, since the broker started."""

    published: int = 0
    """Items handed to Redis for the other processes."""
    dropped: int = 0
    """Items that could not cross: Redis unreachable, the outgoing queue full, or written
    to a connection that broke before Redis acknowledged them."""
    received: int = 0
    """Items from other processes delivered to this one's connections."""
    malformed: int = 0
    """Messages on this process's channels that were not well-formed items, dropped."""


class _Link(asyncio.Protocol):
    """One connection to Redis: replies are parsed by hiredis and handed to `on_reply`;
    `lost` completes with the reason once the connection ends."""

    def __init__(self, on_reply: Callable[[Any], None], max_pending_bytes: int) -> None:
        self.on_reply = on_reply
        self.max_pending_bytes = max_pending_bytes
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        while True:
            try:
                while (reply := reader.gets()) is not False:
                    self.on_reply(reply)
                break
            except hiredis.ProtocolError as exc:
                self.drop(f"unreadable reply from Redis ({exc})")
                return
            except Exception as exc:  # a bug where an item is delivered: this item only
                log.error("broker: delivering a message from Redis failed: %s",
                          describe_exception(exc))
        if reader.len() > self.max_pending_bytes:
            self.drop(f"a message from Redis of over {self.max_pending_bytes} bytes")

    @property
    def alive(self) -> bool:
        """Connected and not lost: commands may be written."""
        return self.transport is not None and not self.lost.done()

    def drop(self, reason: str) -> None:
        """Close the connection for `reason` (the broker connects again)."""
        if not self.lost.done():
            self.lost.set_result(reason)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(f"connection lost ({exc})" if exc else "connection closed")


class RedisBroker:
    """The broker of a host process that shares channels with other processes through
    Redis. `start()` it in the host's event loop before use and `close()` it after."""

    def __init__(self, address: RedisAddress, limits: BrokerLimits | None = None,
                 max_payload_bytes: int = 128_000, node_id: str | None = None) -> None:
        self.address = address
        self.limits = limits or BrokerLimits()
        self.node_id = node_id or new_node_id()
        self.counts = BrokerCounts()
        self._max_payload_bytes = max_payload_bytes
        self._own_prefix = origin_prefix(self.node_id)
        self._subscriptions = Subscriptions()
        self._handlers = self._subscriptions.handlers
        self._topic_of_channel: dict[bytes, str] = {}
        self._publish_prefixes: dict[str, bytes] = {}
        # SSUBSCRIBE replies still to come per channel on the current connection, and the
        # joins waiting for them (`ready`).
        self._unconfirmed: dict[bytes, int] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._pub: _Link | None = None
        self._sub: _Link | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._pending_items = 0
        self._flush_handle: asyncio.Handle | None = None
        self._unanswered = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._outage_since: float | None = None
        self._dropped_before_outage = 0
        self._malformed_reported = False
        self._refusal_reported = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis (both connections, in the background from then on) and return
        once the first attempt succeeded or failed; failure is reported and retried."""
        loop = asyncio.get_running_loop()
        first: list[asyncio.Future[None]] = [loop.create_future(), loop.create_future()]
        self._tasks = [asyncio.create_task(self._keep_link(publisher, first[publisher]))
                       for publisher in (True, False)]
        await asyncio.wait(first)

    async def close(self) -> None:
        """Stop: close both connections; nothing more is published or delivered."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._release_waiters(None)

    @property
    def connected(self) -> bool:
        """Both connections to Redis are up: items cross, and arrive."""
        return self._pub is not None and self._sub is not None

    # -- the Broker protocol -----------------------------------------------------------

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call `handler` for items on `topic`: from this process at once, from others once
        Redis confirmed the subscription (see `ready`)."""
        if not self._subscriptions.add(topic, handler):
            return
        channel = self._channel(topic)
        self._topic_of_channel[channel] = topic
        if self._sub is not None and self._sub.alive:
            self._send_subscribe(self._sub, (channel,))

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling `handler` for `topic`; the process leaves the Redis channel once
        nobody here listens."""
        if not self._subscriptions.remove(topic, handler):
            return
        channel = self._channel(topic)
        del self._topic_of_channel[channel]
        self._release_waiters(topic)
        if self._sub is not None and self._sub.alive:
            assert self._sub.transport is not None
            self._sub.transport.write(_command("SUNSUBSCRIBE", channel))

    async def ready(self, topic: str) -> None:
        """Return once Redis confirmed this process's subscription to `topic`, at once while
        Redis is unreachable, or after `BrokerLimits.join_wait_s` at most."""
        if self._sub is None or not self._unconfirmed.get(self._channel(topic)):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(topic, []).append(waiter)
        try:
            await asyncio.wait_for(waiter, self.limits.join_wait_s)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(topic)
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[topic]

    def publish(self, topic: str, item: Published) -> None:
        """Deliver `item` to this process's subscribers now and queue it for Redis; drop
        and count it for the other processes when Redis is unreachable or the queue full."""
        for handler in self._handlers.get(topic, ()):
            handler(topic, item)
        link = self._pub
        if link is None or link.transport is None or link.lost.done():
            self.counts.dropped += 1
            return
        payload = item.payload
        header = encode_header(self._own_prefix, item.sender)
        size = len(header) + len(payload)
        if (self._pending_bytes + link.transport.get_write_buffer_size() + size
                > self.limits.max_queued_bytes):
            self.counts.dropped += 1
            return
        prefix = self._publish_prefixes.get(topic) or self._publish_prefix(topic)
        if len(payload) <= SMALL_ITEM_BYTES:
            self._pending.append(b"%s$%d\r\n%s%s\r\n" % (prefix, size, header, payload))
        else:
            self._pending += (b"%s$%d\r\n%s" % (prefix, size, header), payload, b"\r\n")
        self._pending_bytes += size
        self._pending_items += 1
        self.counts.published += 1
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def topic_count(self) -> int:
        """How many topics this process listens to (for tests and metrics)."""
        return len(self._handlers)

    # -- publishing --------------------------------------------------------------------

    def _flush(self) -> None:
        """Write what this turn of the event loop published, with one system call."""
        self._flush_handle = None
        pending, items = self._pending, self._pending_items
        self._pending, self._pending_bytes, self._pending_items = [], 0, 0
        link = self._pub
        if link is not None and link.transport is not None and not link.lost.done():
            link.transport.writelines(pending)
            self._unanswered += items
        else:  # Redis was lost during this turn
            self.counts.dropped += items
            self.counts.published -= items

    def _publish_prefix(self, topic: str) -> bytes:
        if len(self._publish_prefixes) >= _PUBLISH_PREFIXES_KEPT:
            self._publish_prefixes.clear()
        channel = self._channel(topic)
        prefix = b"*3\r\n$8\r\nSPUBLISH\r\n$%d\r\n%s\r\n" % (len(channel), channel)
        self._publish_prefixes[topic] = prefix
        return prefix

    def _on_publisher_reply(self, reply: Any) -> None:
        if isinstance(reply, int):
            self._unanswered -= 1
        elif isinstance(reply, hiredis.ReplyError):
            self._unanswered -= 1
            self.counts.dropped += 1
            self.counts.published -= 1
            self._report_refusal(reply)

    # -- receiving ---------------------------------------------------------------------

    def _on_subscriber_reply(self, reply: Any) -> None:
        if type(reply) is not list or len(reply) != 3:
            if isinstance(reply, hiredis.ReplyError):
                # The connection stays: dropping it would only repeat the refusal.
                self._report_refusal(reply)
            return
        kind, channel, data = reply
        if kind == b"smessage":
            if type(data) is not bytes or data.startswith(self._own_prefix):
                return  # this process's own item: its receivers here have it already
            topic = self._topic_of_channel.get(channel)
            if topic is None:
                return  # left since: nobody here listens
            item = decode_item(data, self._max_payload_bytes)
            if item is None:
                self._malformed()
                return
            self.counts.received += 1
            for handler in self._handlers.get(topic, ()):
                handler(topic, item)
        elif kind == b"ssubscribe":
            left = self._unconfirmed.get(channel, 0) - 1
            if left > 0:
                self._unconfirmed[channel] = left
                return
            self._unconfirmed.pop(channel, None)
            topic = self._topic_of_channel.get(channel)
            if topic is not None:
                self._release_waiters(topic)

    def _malformed(self) -> None:
        self.counts.malformed += 1
        if not self._malformed_reported:
            self._malformed_reported = True
            log.warning("broker: dropped a message on a channel of %s that is not "
                        "a realtime item (counted, not reported again)", self.address)

    def _report_refusal(self, reply: hiredis.ReplyError) -> None:
        if not self._refusal_reported:
            self._refusal_reported = True
            hint = " (sharded pub/sub needs Redis 7 or later)" if "unknown command" in str(
                reply).lower() else ""
            log.warning("broker: %s refused a command: %s%s", self.address,
                        reply, hint)

    # -- connections -------------------------------------------------------------------

    def _channel(self, topic: str) -> bytes:
        return f"{CHANNEL_PREFIX}:{self.address.db}:{topic}".encode()

    def _send_subscribe(self, link: _Link, channels: tuple[bytes, ...]) -> None:
        assert link.transport is not None
        for channel in channels:
            self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1
        link.transport.write(_command("SSUBSCRIBE", *channels))

    def _release_waiters(self, topic: str | None) -> None:
        """Let the joins waiting on `topic` (None: on every topic) go on."""
        topics = list(self._waiters) if topic is None else [topic]
        for name in topics:
            for waiter in self._waiters.pop(name, ()):
                if not waiter.done():
                    waiter.set_result(None)

    async def _keep_link(self, publisher: bool, first: asyncio.Future[None]) -> None:
        """Keep one connection (the publishing or the subscribing one) open: connect,
        serve until it breaks, wait, connect again."""
        limits = self.limits
        delay = limits.reconnect_min_s
        on_reply = self._on_publisher_reply if publisher else self._on_subscriber_reply
        max_pending = self._max_payload_bytes + 64 * 1024
        link: _Link | None = None
        try:
            while True:
                link = _Link(on_reply, max_pending)
                reason = await self._open(link)
                if reason is None:
                    delay = limits.reconnect_min_s
                    self._link_up(link, publisher)
                    if not first.done():
                        first.set_result(None)
                    reason = await link.lost
                    self._link_down(publisher, reason)
                else:
                    if link.transport is not None:
                        link.transport.abort()
                    self._link_failed(reason)
                    if not first.done():
                        first.set_result(None)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, limits.reconnect_max_s)
        finally:
            if link is not None and link.transport is not None:
                link.transport.abort()
            if publisher:
                self._pub = None
            else:
                self._sub = None

    async def _open(self, link: _Link) -> str | None:
        """Connect `link` and say hello (credentials, then PING); None once Redis answered,
        else why not."""
        address = self.address
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.limits.connect_timeout_s):
                await loop.create_connection(lambda: link, address.host, address.port)
                assert link.transport is not None
                _keep_alive(link.transport)
                answered: asyncio.Future[Any] = loop.create_future()
                serve = link.on_reply
                replies: list[Any] = []
                expected = 2 if address.password is not None else 1

                def hello(reply: Any) -> None:
                    replies.append(reply)
                    if len(replies) == expected and not answered.done():
                        answered.set_result(None)

                link.on_reply = hello
                if address.password is not None:
                    auth = (("AUTH", address.username, address.password) if address.username
                            else ("AUTH", address.password))
                    link.transport.write(_command(*auth))
                link.transport.write(_command("PING"))
                done, _ = await asyncio.wait((answered, link.lost),
                                             return_when=asyncio.FIRST_COMPLETED)
                if link.lost.done():
                    return link.lost.result()
                link.on_reply = serve
        except TimeoutError:
            return f"no answer within {self.limits.connect_timeout_s:g} s"
        except OSError as exc:
            return exc.strerror or str(exc)
        refused = next((r for r in replies if isinstance(r, hiredis.ReplyError)), None)
        if refused is not None:
            return f"refused: {refused}"
        return None

    def _link_up(self, link: _Link, publisher: bool) -> None:
        if publisher:
            self._unanswered = 0
            self._pub = link
        else:
            self._unconfirmed.clear()
            self._sub = link
            channels = tuple(self._topic_of_channel)
            for start in range(0, len(channels), 512):
                self._send_subscribe(link, channels[start:start + 512])
        if self.connected and self._outage_since is not None:
            dropped = self.counts.dropped - self._dropped_before_outage
            log.warning("broker: %s reachable again after %.1f s; %d realtime "
                        "items could not cross between processes meanwhile", self.address,
                        time.monotonic() - self._outage_since, dropped)
            self._outage_since = None

    def _link_down(self, publisher: bool, reason: str) -> None:
        if publisher:
            self._pub = None
            # What was written but not acknowledged may or may not have crossed.
            self.counts.dropped += self._unanswered
            self.counts.published -= self._unanswered
            self._unanswered = 0
        else:
            self._sub = None
            self._unconfirmed.clear()
            self._release_waiters(None)
        self._link_failed(reason)

    def _link_failed(self, reason: str) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._dropped_before_outage = self.counts.dropped
            log.warning("broker: %s unreachable (%s); realtime items reach this "
                        "process's pages only until it is back (retrying)", self.address,
                        reason)


def _command(*args: str | bytes) -> bytes:
    """One Redis command in the protocol's encoding (hiredis packs it)."""
    # The stubs of hiredis declare a one-element tuple; any number of arguments is meant.
    packed: bytes = hiredis.pack_command(cast(Any, args))
    return packed


def _keep_alive(transport: asyncio.Transport) -> None:
    """Turn on TCP keepalive where the platform offers it (see KEEPALIVE_IDLE_S)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
                              ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                              ("TCP_KEEPCNT", KEEPALIVE_PROBES)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    except OSError:
        pass  # keepalive is a refinement: without it the connection still works
