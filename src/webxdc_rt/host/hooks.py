"""What a program embedding the host may plug into it, given at construction (`HostHooks`):
where realtime items and status updates go on their way to receivers, who is told of chat
messages, and what answers requests for app files. The simulator uses them to apply a
network's faults, log the traffic and serve an app from its dev server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ..core.fanout import Published
from ..core.frames import Frame
from ..core.realtime import Connection
from .feed import MessageWatcher, UpdateRoute

__all__ = ["HostHooks", "ItemRoute", "UpdateRoute", "MessageWatcher", "AppProxy"]

ItemRoute = Callable[[str, Published, tuple[Connection, ...], Frame, int], None]
"""Takes a realtime item (topic, item, its receivers, its encoded frame and the frame's size)
and hands it to the receivers' sinks itself, now, later or not at all: how the simulator
applies a network's faults and watches the traffic. The frame carries the item's stamp
(`wire.items`) then its payload, for the receivers whose `stamped` is set; the others are
handed the item with `core.realtime.deliver_bare`."""

AppProxy = Callable[[web.Request], Awaitable[tuple[int, bytes, str] | web.StreamResponse]]
"""Answers a page's request for an app file with a status, a body and its content type (the
host adds its headers and, to HTML documents, its guard), or with a response of its own (a
WebSocket it carries through, an error)."""


@dataclass(frozen=True, slots=True)
class HostHooks:
    """The host's seams, each None for the host's own way."""

    route_item: ItemRoute | None = None
    """Where realtime items go instead of straight to their receivers."""
    route_update: UpdateRoute | None = None
    """Where stored status updates go instead of straight to their listeners."""
    watch_messages: MessageWatcher | None = None
    """Told of every chat message stored."""
    app_proxy: AppProxy | None = None
    """Answers the pages' requests for app files (and WebSockets of the app's own) instead
    of the app sources: the simulator's dev-server mode."""
