"""The subscribing side of a Redis broker: the shard channels this process is in while one
of its connections is joined there, the confirmations joins wait for, and the items that
arrive from the other processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import hiredis

from ...core.fanout import Handler
from ..items import decode_item
from ..limits import BrokerLimits
from .counts import BrokerCounts
from .link import Link, command
from .reports import Reports, Side, is_redirect

__all__ = ["Subscriber"]

_SUBSCRIBED_AT_ONCE = 512
"""Channels named in one `SSUBSCRIBE` when a new connection subscribes again."""


class Subscriber:
    """The subscribing connection's user (`link.LinkEvents`): sends `SSUBSCRIBE` and
    `SUNSUBSCRIBE`, and hands the items on this process's channels to `handlers`."""

    def __init__(self, channel: Callable[[str], bytes],
                 handlers: Mapping[str, tuple[Handler, ...]], own_prefix: bytes,
                 max_payload_bytes: int, limits: BrokerLimits, counts: BrokerCounts,
                 reports: Reports, side: Side = "subscriber",
                 on_redirect: Callable[[], None] | None = None,
                 channels_per_command: int = _SUBSCRIBED_AT_ONCE) -> None:
        self.link: Link | None = None
        self._side = side
        self._on_redirect = on_redirect
        # A cluster node takes only channels of one slot in one command.
        self._channels_per_command = channels_per_command
        self._channel = channel
        self._handlers = handlers
        self._own_prefix = own_prefix
        self._max_payload_bytes = max_payload_bytes
        self._limits = limits
        self._counts = counts
        self._reports = reports
        self._topic_of_channel: dict[bytes, str] = {}
        # SSUBSCRIBE replies still to come per channel on the current connection, and the
        # joins waiting for them (`ready`).
        self._unconfirmed: dict[bytes, int] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def add(self, topic: str) -> None:
        """Join the channel of `topic` (someone here listens to it now)."""
        channel = self._channel(topic)
        self._topic_of_channel[channel] = topic
        if self.link is not None and self.link.alive:
            self._subscribe(self.link, (channel,))

    def remove(self, topic: str, tell_redis: bool = True) -> None:
        """Leave the channel of `topic` (nobody here listens any more, or another node of a
        cluster serves it now: then Redis is not told)."""
        channel = self._channel(topic)
        del self._topic_of_channel[channel]
        self.release(topic)
        if not tell_redis:  # confirmations from the node it was on count no more
            self._unconfirmed.pop(channel, None)
        if tell_redis and self.link is not None and self.link.alive:
            assert self.link.transport is not None
            self.link.transport.write(command("SUNSUBSCRIBE", channel))

    async def ready(self, topic: str) -> None:
        """Return once Redis confirmed the subscription to `topic`, at once while Redis is
        unreachable, or after `BrokerLimits.join_wait_s` at most."""
        if self.link is None or not self._unconfirmed.get(self._channel(topic)):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(topic, []).append(waiter)
        try:
            await asyncio.wait_for(waiter, self._limits.join_wait_s)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(topic)
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[topic]

    def release(self, topic: str | None) -> None:
        """Let the joins waiting on `topic` (None: on every topic) go on."""
        topics = list(self._waiters) if topic is None else [topic]
        for name in topics:
            for waiter in self._waiters.pop(name, ()):
                if not waiter.done():
                    waiter.set_result(None)

    def _subscribe(self, link: Link, channels: tuple[bytes, ...]) -> None:
        assert link.transport is not None
        for channel in channels:
            self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1
        link.transport.write(command("SSUBSCRIBE", *channels))

    # -- link.LinkEvents ---------------------------------------------------------------

    def on_reply(self, reply: Any) -> None:
        """An item on a channel, a confirmed subscription, or a refusal."""
        if type(reply) is not list or len(reply) != 3:
            if isinstance(reply, hiredis.ReplyError):
                if self._on_redirect is not None and is_redirect(reply):
                    self._on_redirect()  # the cluster's slot map changed: learn it again
                else:  # the connection stays: dropping it would only repeat the refusal
                    self._reports.refused(reply)
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
                self._reports.malformed()
                return
            self._counts.received += 1
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
                self.release(topic)
        elif kind == b"sunsubscribe" and channel in self._topic_of_channel:
            # Not asked for: a cluster node gave the channel's slot to another node.
            if self._on_redirect is not None:
                self._on_redirect()

    def link_up(self, link: Link) -> None:
        """Subscribe `link` to every channel this process is in."""
        self._unconfirmed.clear()
        self.link = link
        channels = tuple(self._topic_of_channel)
        step = self._channels_per_command
        for start in range(0, len(channels), step):
            self._subscribe(link, channels[start:start + step])
        self._reports.link_up(self._side)

    def link_lost(self, reason: str) -> None:
        """No subscription holds any more: let the waiting joins go on."""
        self.link = None
        self._unconfirmed.clear()
        self.release(None)
        self._reports.link_down(self._side)
        self._reports.unreachable(reason)

    def link_failed(self, reason: str) -> None:
        """Report the outage."""
        self._reports.unreachable(reason)

    def link_closed(self) -> None:
        """Receive nothing more from Redis."""
        self.link = None
        self._reports.link_down(self._side)
