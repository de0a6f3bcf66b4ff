"""The publishing side of a Redis broker: items for the other processes, gathered for one
turn of the event loop and written with one system call, within a bound of bytes waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import hiredis

from ...core.fanout import Published
from ..items import encode_header
from ..limits import BrokerLimits
from .counts import BrokerCounts
from .link import Link
from .reports import Reports, Side, is_redirect

__all__ = ["Publisher", "SMALL_ITEM_BYTES"]

SMALL_ITEM_BYTES = 8192
"""Items up to this size are joined into one buffer with their command; larger payloads are
written as they are, never copied."""
_PUBLISH_PREFIXES_KEPT = 4096


class Publisher:
    """The publishing connection's user (`link.LinkEvents`): queues `SPUBLISH` commands and
    counts what Redis acknowledged, refused, or never saw."""

    def __init__(self, channel: Callable[[str], bytes], own_prefix: bytes, limits: BrokerLimits,
                 counts: BrokerCounts, reports: Reports, side: Side = "publisher",
                 on_redirect: Callable[[], None] | None = None) -> None:
        self.link: Link | None = None
        self._side = side
        self._on_redirect = on_redirect
        self._channel = channel
        self._own_prefix = own_prefix
        self._limits = limits
        self._counts = counts
        self._reports = reports
        self._prefixes: dict[str, bytes] = {}
        self._pending: list[bytes | memoryview] = []
        self._pending_bytes = 0
        self._pending_items = 0
        self._flush_handle: asyncio.Handle | None = None
        self._unanswered = 0

    def queue(self, topic: str, item: Published) -> None:
        """Queue `item` for Redis; drop and count it when Redis is unreachable or the queue
        full."""
        link = self.link
        if link is None or link.transport is None or link.lost.done():
            self._counts.dropped += 1
            return
        payload = item.payload
        header = encode_header(self._own_prefix, item.sender, item.stamp)
        size = len(header) + len(payload)
        if (self._pending_bytes + link.transport.get_write_buffer_size() + size
                > self._limits.max_queued_bytes):
            self._counts.dropped += 1
            return
        prefix = self._prefixes.get(topic) or self._prefix(topic)
        if len(payload) <= SMALL_ITEM_BYTES:
            self._pending.append(b"%s$%d\r\n%s%s\r\n" % (prefix, size, header, payload))
        else:
            self._pending += (b"%s$%d\r\n%s" % (prefix, size, header), payload, b"\r\n")
        self._pending_bytes += size
        self._pending_items += 1
        self._counts.published += 1
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def close(self) -> None:
        """Write nothing more."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    def _flush(self) -> None:
        """Write what this turn of the event loop published, with one system call."""
        self._flush_handle = None
        pending, items = self._pending, self._pending_items
        self._pending, self._pending_bytes, self._pending_items = [], 0, 0
        link = self.link
        if link is not None and link.transport is not None and not link.lost.done():
            link.transport.writelines(pending)
            self._unanswered += items
        else:  # Redis was lost during this turn
            self._counts.dropped += items
            self._counts.published -= items

    def _prefix(self, topic: str) -> bytes:
        if len(self._prefixes) >= _PUBLISH_PREFIXES_KEPT:
            self._prefixes.clear()
        channel = self._channel(topic)
        prefix = b"*3\r\n$8\r\nSPUBLISH\r\n$%d\r\n%s\r\n" % (len(channel), channel)
        self._prefixes[topic] = prefix
        return prefix

    # -- link.LinkEvents ---------------------------------------------------------------

    def on_reply(self, reply: Any) -> None:
        """Redis acknowledged a `SPUBLISH` (with the number of receivers) or refused it."""
        if isinstance(reply, int):
            self._unanswered -= 1
        elif isinstance(reply, hiredis.ReplyError):
            self._unanswered -= 1
            self._counts.dropped += 1
            self._counts.published -= 1
            if self._on_redirect is not None and is_redirect(reply):
                self._on_redirect()  # the cluster's slot map changed: learn it again
            else:
                self._reports.refused(reply)

    def link_up(self, link: Link) -> None:
        """Publish on `link` from now on."""
        self._unanswered = 0
        self.link = link
        self._reports.link_up(self._side)

    def link_lost(self, reason: str) -> None:
        """Count what was written but not acknowledged as dropped: it may or may not have
        crossed."""
        self.link = None
        self._counts.dropped += self._unanswered
        self._counts.published -= self._unanswered
        self._unanswered = 0
        self._reports.link_down(self._side)
        self._reports.unreachable(reason)

    def link_failed(self, reason: str) -> None:
        """Report the outage."""
        self._reports.unreachable(reason)

    def link_closed(self) -> None:
        """Publish nothing more to Redis."""
        self.link = None
        self._reports.link_down(self._side)
