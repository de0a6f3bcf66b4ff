"""The aiohttp host: serves each member's page of each shared app on its own origin, checks
invites, and glues WebSocket connections to the realtime hub.

`Host` composes the parts, each a module of its own: `routing` (which page a request is
for, invites), `pages` (app files, the bridge, CSP and the security headers), `sockets` (the
WebSocket shell around each connection's session), `feed` (status updates and chat
messages), `outbound` (the way out to one connection), `http_guard` (the TCP connections),
and `settings`. It owns the aiohttp application and the operations on open connections that
management and tools use (`disconnect`, `retire`, `connection_stats`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

from aiohttp import WSCloseCode, web

from ..brokers.memory import InMemoryBroker
from ..core.delivery import DropCount
from ..core.fanout import Broker
from ..core.realtime import RealtimeHub
from ..core.shares import ShareSource
from ..core.stats import HostStats
from ..model.chats import Entrance, Page, Registry
from ..model.xdc import AppSource
from ..stores.api import StoreApi
from ..stores.sqlite import SqliteStore
from . import http_guard, pages
from .feed import UpdateFeed
from .hooks import HostHooks
from .pages import Pages
from .routing import HOST_PREFIX, OriginResolver, Router, presents
from .settings import HostSettings
from .sockets import Sockets

__all__ = ["Host", "HostSettings", "HostHooks", "ConnectionStats"]

MAX_REQUEST_BODY_BYTES = 64 * 1024
"""Largest request body aiohttp reads for a handler (no page endpoint takes a body)."""


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """What the host can tell of one open connection, for logs, metrics and tools."""

    page: str
    """The label of the member page it belongs to."""
    connection: int
    """Its number in this process."""
    joined: bool
    """Whether it is joined to its realtime channel."""
    dropped: DropCount
    """Realtime items dropped for it because it did not keep up."""
    waiting_bytes: int
    """Realtime bytes waiting in the host for it now."""
    in_flight_bytes: int | None
    """Realtime bytes sent that it has not reported read; None if it does not report."""
    read_rate: float | None
    """Bytes per second it has been seen to read when it had more to read; None if unknown."""


class Host:
    """The webxdc-rt host: pages, invites, app files, the bridge and realtime sockets."""

    def __init__(
        self,
        registry: Registry,
        sources: dict[str, AppSource],
        settings: HostSettings | None = None,
        broker: Broker | None = None,
        store: StoreApi | None = None,
        hooks: HostHooks | None = None,
        shares: ShareSource | None = None,
    ) -> None:
        self.registry = registry
        self.sources = sources
        self.settings = settings = settings or HostSettings()
        self.hooks = hooks = hooks or HostHooks()
        self.broker = broker or InMemoryBroker()
        self.hub = RealtimeHub(settings.realtime, self.broker.node_id)
        self.store: StoreApi = store or SqliteStore()
        self.feed = UpdateFeed(self.store, settings.updates, settings.chat, time.monotonic,
                               route=hooks.route_update, watch_messages=hooks.watch_messages)
        self.stats = HostStats()
        """What this host counted since it started (read by `metrics.py`)."""
        self.router = Router(registry, sources, settings)
        self.pages = Pages(settings, sources, hooks.app_proxy)
        self.sockets = Sockets(settings, self.hub, self.broker, self.feed, self.stats,
                               hooks.route_item, shares)
        self.channel_drops: dict[str, DropCount] = self.sockets.channel_drops
        """Realtime items dropped per channel (app copy topic) that had connections."""

    # -- application -------------------------------------------------------------------

    # Headers: every response the application makes gets the security headers and the
    # `Server` name from the `on_response_prepare` signal; those aiohttp makes before any
    # route is found (malformed requests) get them from `http_guard`, which also answers any
    # exception a handler lets escape (a 500 page, one log line). So no handler needs to
    # catch the unexpected itself.

    def application(self) -> web.Application:
        """The aiohttp application that serves every page of this host."""
        app = web.Application(middlewares=[self.router.middleware],
                              client_max_size=MAX_REQUEST_BODY_BYTES)
        app.on_response_prepare.append(pages.on_response_prepare)
        if self.settings.frame_ancestors:
            app.on_response_prepare.append(self.pages.allow_framing)
        app.router.add_get(HOST_PREFIX + "/invite/{token}", self.router.invite)
        app.router.add_get(HOST_PREFIX + "/socket", self.sockets.handle)
        app.router.add_route("*", HOST_PREFIX + "/{tail:.*}", self.router.not_found)
        app.router.add_get("/webxdc.js", self.pages.bridge)
        app.router.add_get("/{tail:.*}", self.pages.app_file)
        app.on_shutdown.append(self._close_sockets)
        return app

    def runner(self) -> http_guard.GuardedAppRunner:
        """The runner that serves this host with its connection limits and timeouts; the
        command line and the tests both serve through it (add a `web.TCPSite`)."""
        settings = self.settings
        return http_guard.GuardedAppRunner(
            self.application(),
            max_tcp_connections=settings.max_tcp_connections,
            fd_reserve=settings.fd_reserve,
            header_timeout_s=settings.header_timeout_s,
            max_preauth_bytes=settings.max_preauth_bytes,
            max_http_connections_per_page=settings.max_http_connections_per_page,
            decorate=pages.decorate,
            keepalive_timeout=settings.idle_timeout_s,
            max_line_size=settings.max_request_line_bytes,
            max_field_size=settings.max_header_bytes,
            max_headers=settings.max_headers,
        )

    def presents(self, request: web.Request, entrance: Entrance) -> bool:
        """Whether the request shows the token of `entrance` (a page, a home page)."""
        return presents(request, entrance, self.settings.max_session_cookies)

    def mount(self, resolver: OriginResolver) -> None:
        """Serve the origins `resolver` knows beside the app pages (see `OriginResolver`);
        their responses get the same headers as the pages'."""
        self.router.mount(resolver)

    def invite_url(self, page: Entrance, port: int) -> str:
        """The secret link that opens `page` (or a home page) as its member."""
        return self.router.invite_url(page, port)

    # -- open connections --------------------------------------------------------------

    def connection_stats(self) -> list[ConnectionStats]:
        """A snapshot of every open connection, with its drops and what is in flight."""
        stats = []
        for sink, shell in self.sockets.shells.items():
            window, conn = sink.window, shell.session.conn
            stats.append(ConnectionStats(
                page=shell.page.label, connection=conn.id, joined=conn.joined,
                dropped=replace(sink.items.counts), waiting_bytes=sink.items.waiting_bytes,
                in_flight_bytes=sink.in_flight_bytes if window.reporting else None,
                read_rate=window.rate))
        return stats

    def connection_counts(self) -> tuple[int, int]:
        """WebSocket connections open now, and how many of them are joined to their
        realtime channel."""
        shells = self.sockets.shells.values()
        return len(shells), sum(1 for shell in shells if shell.session.conn.joined)

    def page_of_connection(self, conn_id: int) -> Page | None:
        """The member page an open connection of this process belongs to."""
        for shell in self.sockets.shells.values():
            if shell.session.conn.id == conn_id:
                return shell.page
        return None

    async def disconnect(self, label: str, reason: str = "disconnected by the host") -> int:
        """Close every socket of one member's page (it may reconnect while its invite is
        valid); return how many were closed."""
        shells = [shell for shell in self.sockets.shells.values() if shell.page.label == label]
        await self.sockets.close(shells, WSCloseCode.SERVICE_RESTART, reason)
        return len(shells)

    async def retire(self, labels: list[str], reason: str) -> int:
        """Pages and home pages that no longer exist (their member removed, their app copy
        removed, their links revoked): close every socket of theirs at once and forget
        their allowances; return how many sockets were closed. The registry has already
        forgotten them (or changed their tokens), so they cannot reconnect."""
        closed = await asyncio.gather(*(self.disconnect(label, reason) for label in labels))
        for label in labels:
            self.sockets.budgets.pop(label, None)
        return sum(closed)

    async def _close_sockets(self, app: web.Application) -> None:
        shells = list(self.sockets.shells.values())
        await self.sockets.close(shells, WSCloseCode.GOING_AWAY, "host shutting down")
        # A handler may be pausing a paced page; its socket is gone, so is its work.
        for shell in list(self.sockets.shells.values()):
            if shell.handler is not None:
                shell.handler.cancel()
