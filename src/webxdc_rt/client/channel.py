"""A peer's membership in its app's realtime channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from ..core import wire

__all__ = ["Listener", "RealtimeChannel"]

log = logging.getLogger(__name__.rpartition(".")[0])

Listener = Callable[[bytes], object]
"""What `set_listener` takes: called with each item's payload."""


class ChannelOwner(Protocol):
    """What a channel needs of its peer."""

    @property
    def limits(self) -> wire.HelloLimits:
        """The limits the host told (`max_payload_bytes` is the one for items)."""

    async def until_closed(self, future: asyncio.Future[Any]) -> bool:
        """Wait for `future` or the peer's end; whether `future` finished first."""

    async def drain(self) -> None:
        """Wait until everything sent so far was written."""

    def _enqueue_item(self, payload: bytes) -> None: ...

    def _channel_left(self, channel: RealtimeChannel) -> None: ...


class RealtimeChannel:
    """This peer's membership in its app's realtime channel, from join until `leave`. A
    reconnecting peer (`connect(..., reconnect=...)`) keeps it across lost links: it joins
    again on each new link, with a new `epoch`."""

    def __init__(self, peer: ChannelOwner, epoch: int) -> None:
        self._peer = peer
        self.epoch = epoch
        """This join's number: the host acknowledges a join by echoing it."""
        self._listener: Listener | None = None
        self._left = False
        self._acknowledged = False
        self._settled = asyncio.Event()
        """Set when the host acknowledged this join, or when the channel was left."""

    def set_listener(self, callback: Listener | None) -> None:
        """Call `callback(data: bytes)` for every item another member sends; replaces the
        previous listener. Items that arrive while no listener is set are dropped (R6)."""
        if callback is not None and not callable(callback):
            raise TypeError("set_listener expects a callable or None")
        if not self._left:
            self._listener = callback

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send one item to every other member joined to the channel; it is dropped (and
        counted in `peer.stats`) if the queue to the host holds too many items already, or
        if a reconnecting peer has no link at the moment (realtime is ephemeral: it is
        never sent late, `stats.items_dropped_offline`).

        Raises TypeError for anything but bytes-like data, ValueError above the host's
        `limits.max_payload_bytes` (128000 by default), RuntimeError after `leave`, and
        ConnectionError once the peer is closed.
        """
        if self._left:
            raise RuntimeError("this realtime channel was left; join a new one")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"realtime data must be bytes-like, not {type(data).__name__}")
        payload = bytes(data)  # a copy: changing `data` later changes nothing sent (R18)
        limit = self._peer.limits.max_payload_bytes
        if len(payload) > limit:
            raise ValueError(f"realtime data of {len(payload)} bytes is over the limit of "
                             f"{limit} bytes")
        self._peer._enqueue_item(payload)

    def leave(self) -> None:
        """Leave the channel: the host is told at once; the listener is never called again."""
        if self._left:
            return
        self._left = True
        self._listener = None
        self._settled.set()
        self._peer._channel_left(self)

    async def joined(self) -> None:
        """Wait until the host applied this join: from then on, every item another member
        sends reaches the listener (items sent before may not: they belong to nobody, R12).
        Joining does not need it; tests and bots that must not miss an item do. After a
        reconnecting peer lost its link, it waits for the join on the next link.

        Raises RuntimeError if the channel was left first, ConnectionError if the link to
        the host closes first (for good, for a reconnecting peer).
        """
        if not self._settled.is_set():
            settled = asyncio.ensure_future(self._settled.wait())
            try:
                await self._peer.until_closed(settled)
            finally:
                settled.cancel()
        if self._left:
            raise RuntimeError("this realtime channel was left; join a new one")
        if not self._acknowledged:
            raise ConnectionError("the link to the host closed before the join took effect")

    async def drain(self) -> None:
        """Wait until everything sent so far was written to the host."""
        await self._peer.drain()

    def _acknowledge(self) -> None:
        self._acknowledged = True
        self._settled.set()

    def _rejoin(self, epoch: int) -> None:
        """The link was lost: this join waits for its acknowledgement on the next one."""
        self.epoch = epoch
        self._acknowledged = False
        if not self._left:
            self._settled.clear()

    def _end(self) -> None:
        """The peer closed: nothing more reaches the listener."""
        self._left = True
        self._listener = None
        self._settled.set()

    def _deliver(self, data: bytes) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(data)
        except Exception:
            log.exception("realtime listener raised; the item is dropped")
