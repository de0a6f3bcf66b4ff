"""The aiohttp host: serves each member's page of each shared app on its own origin, checks
invites, and glues WebSocket connections to the realtime hub.

Every page lives at `http://<label>.<domain>:<port>/`: the browser keeps storage apart per
origin, so members and app copies never share `localStorage` even in one browser. The invite
link `/.webxdc-rt/invite/<token>` on that origin sets a host-only cookie; every other request
needs that cookie (browsers) or `Authorization: Bearer <token>` (the Python peer), else it is
refused (R14). Under a shared domain a sibling origin may set a cookie of the same name for
the whole domain; the browser then sends both, so every value is tried and the one valid for
the origin asked is taken (see `presented_tokens`). Only the pages of the app copies this
process serves exist: pages stored in the same data folder by another run are unknown here.

Realtime items are fanned out by writing one pre-encoded WebSocket frame to each receiver's
transport. A receiver that does not keep up loses realtime items (stale or crowded out,
counted per connection, channel and host) and keeps its link; it is cut off only when more
than `max_outbound_bytes` of what is never dropped (status updates, chat messages, control
frames) waits for it. So one stalled reader never holds memory or delays anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import mimetypes
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.typedefs import Handler

from ..brokers.limits import BrokerLimits
from ..brokers.memory import InMemoryBroker
from ..core import wire
from ..core.budget import PageBudget
from ..core.delivery import DropCount
from ..core.fanout import Broker, Published
from ..core.frames import binary_frame_parts
from ..core.limits import (
    ChatLimits,
    DeliveryLimits,
    RealtimeLimits,
    UpdateLimits,
    require_non_negative,
    require_positive,
)
from ..core.realtime import Connection, RealtimeHub
from ..core.session import (
    INTERNAL_ERROR,
    Close,
    Discard,
    Effect,
    ListMessages,
    Pause,
    Publish,
    Receipt,
    Replay,
    Send,
    Session,
    SessionRules,
    StoreMessage,
    StoreUpdate,
    Subscribe,
    Unsubscribe,
)
from ..core.stats import HostStats
from ..model.chats import Entrance, Page, Registry
from ..model.sharing import HomeLimits
from ..model.xdc import AppSource, normalize_app_path
from ..stores.api import StoreApi, StoreLimits
from ..stores.sqlite import SqliteStore
from . import fetch_metadata, html_guard, http_guard
from .feed import FeedSocket, StorageFailed, UpdateFeed
from .outbound import Outbound, WriteBatcher

__all__ = ["HostSettings", "Host", "ConnectionStats", "HOST_PREFIX", "SESSION_COOKIE",
           "SECURE_SESSION_COOKIE", "SERVER_NAME", "ItemRoute", "AppProxy", "OriginResolver",
           "presented_tokens", "presents", "same_origin", "invite_response"]

log = logging.getLogger(__name__)

HOST_PREFIX = "/.webxdc-rt"
"""Path prefix of the host's own endpoints on every page origin."""
SESSION_COOKIE = "webxdc_rt"
"""Name of the host-only cookie that carries a page's token after its invite was opened
(over http)."""
SECURE_SESSION_COOKIE = "__Host-" + SESSION_COOKIE
"""Its name over https: browsers take a `__Host-` cookie only when it is Secure, has Path=/
and no Domain, so no other origin (a sibling under the shared domain) can set one that
reaches this origin."""
_SESSION_COOKIES = frozenset({SESSION_COOKIE, SECURE_SESSION_COOKIE})
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""What a token can look like (`secrets.token_urlsafe`); other values are passed over."""
SERVER_NAME = "webxdc-rt"
"""The `Server` header of every response: no Python or aiohttp version for scanners."""

KiB = 1024
MiB = 1024 * KiB

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; "
    "style-src 'self' 'unsafe-inline' blob:; "
    "font-src 'self' data: blob:; "
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
    "connect-src 'self' data: blob:; "
    "img-src 'self' data: blob:; "
    "media-src 'self' data: blob:; "
    "worker-src 'self' blob:; "
    # Only the page itself may frame its files ('self'): another member's page, another app
    # copy or any site may not, so the page's frames are always its own. 'none' would break
    # apps that frame their own pages.
    "frame-ancestors 'self'; "
    # Forms may submit to the page's own origin and nowhere else (no form post reaches the
    # Internet); 'none' would turn a plain form into an error instead of a reload.
    "form-action 'self'; "
    # A <base> may point within the page's own origin only, so it cannot send relative links
    # and form posts elsewhere; 'none' would break apps that set <base href="sub/">.
    "base-uri 'self'"
)
"""Apps may reach their own origin, `data:` and `blob:` only: no Internet. Chromium has no
directive against WebRTC (it logs an error for `webrtc`), so the guard script that opens
every HTML document takes WebRTC away instead (`html_guard`, `static/guard.js`)."""
TRUSTED_TYPES_POLICY = "require-trusted-types-for 'script'"
"""Sent report-only with every guarded document: it blocks nothing, but it makes the browser
consult the guard's default Trusted Types policy about every string that becomes a `srcdoc`
document or the script of a `javascript:` URL, by whatever call, so the guard can put itself
first in those documents. (Enforced, it would also stop strings reaching `eval` and
`importScripts` in workers, which have no such policy.)"""
SANDBOXED_POLICY = CONTENT_SECURITY_POLICY + "; sandbox"
"""For every response that is not HTML: shown as a document (a text file, an SVG or XML
file, an error page), it runs no script and gets an opaque origin, so no app script can
reach its window, which the guard never ran in."""
_GUARD_ELEMENT = html_guard.inline_script(
    resources.files("webxdc_rt.host").joinpath("static/guard.js").read_text("utf-8"))

_CONTENT_TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
    ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm",
    ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp",
}


@dataclass(frozen=True)
class HostSettings:
    """The host's options and the limits it applies to members, with their documented
    defaults (what a `.xdc` may hold is `xdc.ContainerLimits`; the nesting of JSON is the
    protocol's `wire.MAX_JSON_DEPTH`)."""

    realtime: RealtimeLimits = field(default_factory=RealtimeLimits)
    updates: UpdateLimits = field(default_factory=UpdateLimits)
    chat: ChatLimits = field(default_factory=ChatLimits)
    delivery: DeliveryLimits = field(default_factory=DeliveryLimits)
    home: HomeLimits = field(default_factory=HomeLimits)
    broker: BrokerLimits = field(default_factory=BrokerLimits)
    store: StoreLimits = field(default_factory=StoreLimits)
    domain: str = "localhost"
    """Pages are served at `<label>.<domain>`; `*.localhost` needs no DNS in browsers."""
    scheme: str = "http"
    """Scheme of the invite links (`https` behind a TLS proxy)."""
    public_port: int | None = None
    """Port in invite links when it differs from the one bound (behind a proxy)."""
    max_connections: int = 20_000
    """WebSocket connections the host accepts in all."""
    max_connections_per_page: int = 64
    """WebSocket connections one member's page may hold at once (tabs, devices)."""
    max_http_connections_per_page: int = 32
    """Plain HTTP (kept-alive) connections one member's page may hold at once, all its
    tabs and devices together (a browser opens up to 6 per origin). A request that would go
    over it closes the page's connection idle the longest; if none of them is idle, it is
    refused (503) and its connection closed."""
    max_frame_bytes: int = 1 * MiB
    """Largest WebSocket message read; a longer one closes the connection (code 1009)."""
    max_outbound_bytes: int = 16 * MiB
    """Bytes of frames that are never dropped (status updates, chat messages, control
    frames) waiting to be written to one connection; more and it is cut off as too slow.
    Realtime items are held and dropped by `delivery` instead."""
    close_grace_s: float = 5.0
    """How long a connection being cut off gets to take its close frame before it is dropped."""
    max_protocol_errors: int = 32
    """Refused requests one connection may make before it is disconnected (code 1008)."""
    control_per_s: float = 100.0
    """Control messages (text frames) one page may send per second, sustained; a page
    over it is not read from until it is back within it."""
    control_burst: int = 200
    """Control messages one page may send at once before the pace applies."""
    heartbeat_s: float = 30.0
    """Ping interval that finds dead links, which then count as having left (R17)."""
    bridge_max_pending_items: int = 1024
    """Items the browser bridge queues while its link is down (R9); more are dropped."""
    bridge_max_pending_bytes: int = 16 * MiB
    """Bytes the browser bridge queues while its link is down."""
    bridge_max_buffered_bytes: int = 4 * MiB
    """Bytes the browser bridge lets wait in its open socket (`bufferedAmount`): a
    realtime item sent while the socket holds this much is dropped."""
    bridge_max_buffered_ms: float = 100.0
    """Milliseconds of sending the browser bridge lets wait in its open socket, by the rate
    the socket was seen to drain: a realtime item sent while what it holds would take longer
    to leave is dropped, so a page that sends faster than the host takes loses items rather
    than queueing seconds of them (an app's burst of a window of items is not cut into)."""
    max_tcp_connections: int = 25_000
    """TCP connections the host holds in all (pages, WebSockets, and those that have not shown
    an invite yet). At the cap the oldest connection without a valid invite is closed to make
    room; if every one has shown an invite, the longest idle connection of the member page
    holding the most, if that is more than its share of the cap; else the newcomer is
    closed."""
    fd_reserve: int = 64
    """File descriptors kept free below the open-file limit (RLIMIT_NOFILE) for the store,
    logs and listening sockets: the connection cap is lowered to the limit minus this."""
    header_timeout_s: float = 10.0
    """Seconds a new connection has to show a valid invite (its link, the page's cookie or
    bearer token) in a complete request; then it is closed. A request refused for want of an
    invite closes its connection at once."""
    idle_timeout_s: float = 30.0
    """Seconds a kept-alive connection may take, after a response, until its next request
    head is complete; then it is closed. WebSockets are watched by `heartbeat_s` instead."""
    max_preauth_bytes: int = 16 * KiB
    """Bytes of request head a connection may send before it has shown a valid invite; more
    get 431 and a close. Bounds the memory unauthenticated connections hold. A body (an
    upload) is not counted: it is read only once its handler checked the invite."""
    max_request_line_bytes: int = 8190
    """Longest request line (method, path, version); a longer one gets 400 and a close."""
    max_header_bytes: int = 8190
    """Longest single request header line; a longer one gets 400 and a close."""
    max_headers: int = 64
    """Most request header lines; more get 400 and a close."""
    max_session_cookies: int = 64
    """Values of the page's cookie looked at in one request, in the order sent (the rest are
    passed over). A browser sends one for each parent domain and path prefix a sibling
    origin set one for, before or after the page's own; the bound keeps the work small."""
    frame_ancestors: tuple[str, ...] = ()
    """Origins besides the page's own that may show its documents in a frame (the
    simulator's dashboard); none by default."""

    def __post_init__(self) -> None:
        if self.max_frame_bytes <= self.realtime.max_payload_bytes:
            raise ValueError("max_frame_bytes must exceed realtime.max_payload_bytes")
        require_positive(self, "max_connections", "max_connections_per_page",
                         "max_http_connections_per_page", "max_session_cookies",
                         "max_outbound_bytes", "max_protocol_errors", "control_per_s",
                         "control_burst", "heartbeat_s", "bridge_max_pending_items",
                         "bridge_max_pending_bytes", "bridge_max_buffered_bytes",
                         "bridge_max_buffered_ms", "max_tcp_connections", "header_timeout_s",
                         "idle_timeout_s", "max_preauth_bytes", "max_request_line_bytes",
                         "max_header_bytes", "max_headers")
        require_non_negative(self, "fd_reserve", "close_grace_s")


PAGE_KEY = web.RequestKey("page", Page)

ItemRoute = Callable[[str, Published, tuple[Connection, ...], tuple[bytes, ...], int], None]
"""Takes a realtime item (topic, item, its receivers, its encoded frame and the frame's size)
and hands it to the receivers' sinks itself, now, later or not at all: how the simulator
applies a network's faults and watches the traffic."""

AppProxy = Callable[[web.Request], Awaitable[tuple[int, bytes, str] | web.StreamResponse]]
"""Answers a page's request for an app file with a status, a body and its content type (the
host adds its headers and, to HTML documents, its guard), or with a response of its own (a
WebSocket it carries through, an error)."""

OriginResolver = Callable[[str], Handler | None]
"""Given the label of an origin that is no app page (`<label>.<domain>`), the handler that
serves it, or None: how a member's home page is served beside the app pages."""


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


@dataclass(frozen=True, slots=True)
class _Socket:
    """What the host keeps of one open WebSocket, until its handler ends."""

    page: Page
    session: Session
    handler: asyncio.Task[Any]
    """The task reading it, cancelled at shutdown if it is pausing a paced page."""


class Host:
    """The webxdc-rt host: pages, invites, app files, the bridge and realtime sockets."""

    def __init__(
        self,
        registry: Registry,
        sources: dict[str, AppSource],
        settings: HostSettings | None = None,
        broker: Broker | None = None,
        store: StoreApi | None = None,
    ) -> None:
        self.registry = registry
        self.sources = sources
        self.settings = settings or HostSettings()
        self.broker = broker or InMemoryBroker()
        self.hub = RealtimeHub(self.settings.realtime, self.broker.node_id)
        self.store: StoreApi = store or SqliteStore()
        self.feed = UpdateFeed(self.store, self.settings.updates, self.settings.chat,
                               time.monotonic)
        self._sockets: dict[Outbound, _Socket] = {}
        self.stats = HostStats()
        """What this host counted since it started (read by `metrics.py`)."""
        self._session_rules = SessionRules(self.settings.updates, self.settings.chat,
                                           self.settings.max_protocol_errors,
                                           self.stats.sessions)
        self._origin_resolvers: list[OriginResolver] = []
        self._batcher: WriteBatcher | None = None
        self._per_page: dict[str, int] = {}
        self._budgets: dict[str, PageBudget] = {}
        self._hello_limits = hello_limits(self.settings.realtime, self.settings.delivery)
        self.channel_drops: dict[str, DropCount] = {}
        """The same per channel (app copy topic) that had connections."""
        self._bridge_template = (
            resources.files("webxdc_rt.host").joinpath("static/webxdc.js").read_text("utf-8")
        )
        self.route: ItemRoute | None = None
        """Where realtime items go instead of straight to their receivers; None: straight."""
        self.app_proxy: AppProxy | None = None
        """Answers the pages' requests for app files (and WebSockets of the app's own)
        instead of the app sources: the simulator's dev-server mode. None: the sources."""

    # -- application -------------------------------------------------------------------

    def application(self) -> web.Application:
        """The aiohttp application that serves every page of this host."""
        app = web.Application(middlewares=[self._page_middleware], client_max_size=64 * KiB)
        app.on_response_prepare.append(_on_response_prepare)
        if self.settings.frame_ancestors:
            app.on_response_prepare.append(self._allow_framing)
        app.router.add_get(HOST_PREFIX + "/invite/{token}", self._invite)
        app.router.add_get(HOST_PREFIX + "/socket", self._socket)
        app.router.add_route("*", HOST_PREFIX + "/{tail:.*}", self._not_found)
        app.router.add_get("/webxdc.js", self._bridge)
        app.router.add_get("/{tail:.*}", self._app_file)
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
            decorate=_decorate,
            keepalive_timeout=settings.idle_timeout_s,
            max_line_size=settings.max_request_line_bytes,
            max_field_size=settings.max_header_bytes,
            max_headers=settings.max_headers,
        )

    def mount(self, resolver: OriginResolver) -> None:
        """Serve the origins `resolver` knows beside the app pages (see `OriginResolver`);
        their responses get the same headers as the pages'."""
        self._origin_resolvers.append(resolver)

    def invite_url(self, page: Entrance, port: int) -> str:
        """The secret link that opens `page` (or a home page) as its member."""
        settings = self.settings
        shown_port = settings.public_port or port
        default = {"http": 80, "https": 443}.get(settings.scheme)
        port_part = "" if shown_port == default else f":{shown_port}"
        return (f"{settings.scheme}://{page.label}.{settings.domain}{port_part}"
                f"{HOST_PREFIX}/invite/{page.token}")

    # -- request plumbing --------------------------------------------------------------

    # Headers: every response the application makes gets the security headers and the
    # `Server` name from the `on_response_prepare` signal; those aiohttp makes before any
    # route is found (malformed requests) get them from `http_guard`, which also answers any
    # exception a handler lets escape (a 500 page, one log line). So no handler needs to
    # catch the unexpected itself.

    @web.middleware
    async def _page_middleware(self, request: web.Request,
                               handler: Handler) -> web.StreamResponse:
        page = self._page_for_host(request.host)
        if page is None:
            label = self._label_of_host(request.host)
            for resolve in self._origin_resolvers if label is not None else ():
                origin_handler = resolve(label or "")
                if origin_handler is not None:
                    return await origin_handler(request)
            return _refusal(404, "No webxdc app is served at this address; "
                                 "open an invite link.")
        if not request.path.startswith(HOST_PREFIX + "/invite/"):
            if self.presents(request, page):
                http_guard.admit(request, page.label)
            elif not _opaque_app_file_request(request):
                return _refusal(403, "This page needs its invite link: "
                                     "open the link you were given.")
        request[PAGE_KEY] = page
        return await handler(request)

    def _page_for_host(self, host: str) -> Page | None:
        """The page served at this Host header: only pages of the app copies this process
        serves; pages another run stored in the same data folder are as unknown as any."""
        label = self._label_of_host(host)
        page = self.registry.page(label) if label is not None else None
        if page is None or page.app.id not in self.sources:
            return None
        return page

    def _label_of_host(self, host: str) -> str | None:
        """The origin label a Host header names under this host's domain, if it does."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        suffix = "." + self.settings.domain
        if not name.lower().endswith(suffix):
            return None
        return name[: -len(suffix)].lower()

    def presents(self, request: web.Request, entrance: Entrance) -> bool:
        """Whether the request shows the token of `entrance` (a page, a home page)."""
        return presents(request, entrance, self.settings.max_session_cookies)

    # -- handlers ----------------------------------------------------------------------

    async def _invite(self, request: web.Request) -> web.StreamResponse:
        page = request[PAGE_KEY]
        if not page.token_matches(request.match_info["token"]):
            return _refusal(403, "This invite link is not valid.")
        http_guard.admit(request, page.label)
        return invite_response(request, page.token, self.settings.scheme == "https")

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return _text(404, f"Unknown host endpoint: {request.path}")

    async def _bridge(self, request: web.Request) -> web.StreamResponse:
        page = request[PAGE_KEY]
        config = {
            "selfAddr": page.self_addr,
            "selfName": page.member.name,
            "isAppSender": page.member.id == page.app.sender,
            "isBroadcast": False,
            "sendUpdateInterval": self.settings.updates.interval_ms,
            "sendUpdateMaxSize": self.settings.updates.max_payload_bytes,
            "socketPath": HOST_PREFIX + "/socket",
            "maxPayloadBytes": self.settings.realtime.max_payload_bytes,
            "maxPendingItems": self.settings.bridge_max_pending_items,
            "maxPendingBytes": self.settings.bridge_max_pending_bytes,
            "maxBufferedBytes": self.settings.bridge_max_buffered_bytes,
            "maxBufferedMs": self.settings.bridge_max_buffered_ms,
            "receiveWindowBytes": self.settings.delivery.receive_window_bytes,
        }
        # `</` is escaped so that no value can end a surrounding script element.
        config_js = json.dumps(config).replace("</", "<\\/")
        body = self._bridge_template.replace("/*WEBXDC_RT_CONFIG*/null", config_js, 1)
        return web.Response(text=body, content_type="text/javascript",
                            headers={"Cache-Control": "no-store"})

    async def _app_file(self, request: web.Request) -> web.StreamResponse:
        page = request[PAGE_KEY]
        if request.headers.get("Service-Worker") == "script":
            # A service worker could answer the page's requests with documents of its own
            # making, without this host's Content-Security-Policy or guard.
            return _text(403, "Service workers are not available to webxdc apps.")
        if self.app_proxy is not None:
            answer = await self.app_proxy(request)
            if isinstance(answer, web.StreamResponse):
                return answer  # a WebSocket carried through, or an error
            status, body, content_type = answer
            return _app_document(request, body, content_type, status)
        name = normalize_app_path(request.path)
        source = self.sources.get(page.app.id)
        data = source.read(name) if (name is not None and source is not None) else None
        content_type = _content_type(name or "")
        if data is None and name == "favicon.ico" and source is not None:
            # Browsers ask for it on every page load; a 404 would be an error in the console.
            icon = source.read(source.icon) if source.icon else None
            if icon is None:
                return web.Response(status=204, headers={"Cache-Control": "no-cache"})
            data, content_type = icon, _content_type(source.icon or "")
        if data is None:
            return _text(404, f"Not a file of this app: {request.path}")
        response = _app_document(request, data, content_type)
        if _opaque_app_file_request(request):
            # A sandboxed frame of the page loads the app's files (see the rule below).
            response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
            response.headers["Access-Control-Allow-Origin"] = "null"
        return response

    # -- realtime sockets --------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        page = request[PAGE_KEY]
        if not same_origin(request):
            # Another page (another app copy, on a sibling origin of the same site) must not
            # ride on this page's cookie into its channel; browsers always send Origin.
            return _text(403, "WebSocket from another origin refused.")
        refusal = self._connection_refusal(page)
        if refusal:
            self.stats.connections_refused[refusal[0]] += 1
            return _text(503, refusal[1])
        settings = self.settings
        budget = self._budget(page)
        if budget.chat_stored_bytes is None:  # counted once per page, kept up by sessions
            try:
                budget.chat_stored_bytes = self.feed.chat_stored_bytes(page)
            except StorageFailed as exc:
                return _text(503, f"{exc} Try again later.")
        ws = web.WebSocketResponse(compress=False, max_msg_size=settings.max_frame_bytes,
                                   heartbeat=settings.heartbeat_s)
        await ws.prepare(request)
        http_guard.upgraded(request)
        transport = request.transport
        assert transport is not None  # set while the request is being handled
        if self._batcher is None:
            self._batcher = WriteBatcher(asyncio.get_running_loop())
        _ask_socket_buffers(transport, settings.delivery.socket_receive_buffer_bytes,
                            settings.delivery.socket_send_buffer_bytes)
        sink = Outbound(ws, transport, settings.max_outbound_bytes, settings.close_grace_s,
                        self._batcher, request.writer, settings.delivery,
                        f"a connection of page {page.label}",
                        (self._drops_of(page.app.topic), self.stats.drops))
        conn = self.hub.open(page.app.topic, sink, time.monotonic(), budget.realtime)
        session = Session(self.hub, conn, budget, self._session_rules)
        feed_socket = self.feed.new_socket(page, sink, budget)

        def cut() -> None:  # called by the sink, after the write that found it too slow
            self.stats.slow_receivers_cut_off += 1
            self._apply_now(session.cut_off())
            self.feed.forget(feed_socket)

        sink.on_cut = cut
        handler = asyncio.current_task()
        assert handler is not None  # a request is always handled in a task
        self._sockets[sink] = _Socket(page, session, handler)
        self._per_page[page.label] = self._per_page.get(page.label, 0) + 1
        try:
            greeting = session.greet(page.self_addr, page.member.name, self._hello_limits)
            if await self._carry_out(greeting, sink, session, feed_socket):
                await self._read_loop(ws, sink, session, feed_socket)
        except ConnectionError:
            pass  # the link broke while we wrote to it: same as a close
        except Exception as exc:  # a bug, not the client's fault: contain it to this socket
            log.error("internal error on a socket of page %s: %s", page.label,
                      http_guard.describe_exception(exc))
            with contextlib.suppress(Exception):
                await sink.close(INTERNAL_ERROR, "internal error")
        finally:
            sink.finish()
            self._apply_now(session.link_lost())
            self.feed.forget(feed_socket)
            del self._sockets[sink]
            self._per_page[page.label] -= 1
            if not self._per_page[page.label]:
                del self._per_page[page.label]
        return ws

    def _budget(self, page: Page) -> PageBudget:
        """The allowance of one member page, shared by all its sockets; kept while the
        host runs, so reconnecting does not refill it."""
        budget = self._budgets.get(page.label)
        if budget is None:
            settings = self.settings
            budget = self._budgets[page.label] = PageBudget.fresh(
                settings.realtime, settings.updates, settings.chat, settings.control_per_s,
                settings.control_burst, time.monotonic(), settings.delivery)
        return budget

    def _drops_of(self, topic: str) -> DropCount:
        drops = self.channel_drops.get(topic)
        if drops is None:
            drops = self.channel_drops[topic] = DropCount()
        return drops

    def _connection_refusal(self, page: Page) -> tuple[str, str] | None:
        """Why a new socket of `page` is refused (a code and a text), if it is."""
        settings = self.settings
        if len(self._sockets) >= settings.max_connections:
            return "host-full", f"The host is full ({settings.max_connections} connections)."
        if self._per_page.get(page.label, 0) >= settings.max_connections_per_page:
            return "page-full", (f"Too many connections for this page "
                                 f"(limit {settings.max_connections_per_page}).")
        return None

    async def _read_loop(self, ws: web.WebSocketResponse, sink: Outbound, session: Session,
                         feed_socket: FeedSocket) -> None:
        """Feed the session what arrives and carry out what it says, until it closes."""
        broker, stats = self.broker, self.stats
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                effects = session.receive_item(msg.data, time.monotonic())
                first = effects[0] if effects else None
                if len(effects) == 1 and type(first) is Publish:  # the hot path
                    stats.realtime_items_in += 1
                    stats.realtime_bytes_in += len(msg.data)
                    broker.publish(first.topic, first.item)
                    continue
            elif msg.type is WSMsgType.TEXT:
                effects = session.receive_text(msg.data, time.monotonic())
            else:  # ERROR: a broken or oversize frame; aiohttp closes the socket
                return
            if not await self._carry_out(effects, sink, session, feed_socket):
                return

    async def _carry_out(self, effects: tuple[Effect, ...], sink: Outbound, session: Session,
                         feed_socket: FeedSocket) -> bool:
        """Carry out a session's effects in order; False once the connection is closed."""
        for effect in effects:
            if isinstance(effect, Send):
                await sink.send_text(effect.text)
            elif isinstance(effect, Pause):
                await asyncio.sleep(effect.seconds)
            elif isinstance(effect, Close):
                await sink.close(effect.code, effect.reason)
                return False
            elif isinstance(effect, Receipt):
                sink.report(effect.bytes, time.monotonic())
            elif isinstance(effect, Discard):
                sink.discard_items()
            elif isinstance(effect, StoreUpdate):
                try:
                    self.feed.store_update(feed_socket, effect.update)
                    self.stats.updates_appended += 1
                except StorageFailed as exc:
                    self.stats.sessions.refused[exc.code] += 1
                    await sink.send_text(wire.encode_error(exc.code, str(exc)))
            elif isinstance(effect, Replay):
                try:
                    await self.feed.listen(feed_socket, effect.listen, effect.after_serial)
                except StorageFailed as exc:
                    # The page would wait for its backlog forever: it is told why and
                    # disconnected, and reconnects to listen again.
                    self.stats.sessions.refused[exc.code] += 1
                    await sink.send_text(wire.encode_error(exc.code, str(exc)))
                    await sink.close(1011, "storage unavailable")
                    return False
            elif isinstance(effect, StoreMessage):
                refusal = None
                try:
                    self.feed.store_message(feed_socket, effect.message)
                    self.stats.chat_messages_stored += 1
                except StorageFailed as exc:
                    session.message_not_stored(effect.message)
                    self.stats.sessions.refused[exc.code] += 1
                    refusal = (exc.code, str(exc))
                await sink.send_text(wire.encode_reply(effect.request_id, refusal))
            elif isinstance(effect, Subscribe):
                # The page is told it joined once items from other processes reach it too.
                self._apply_now((effect,))
                await self.broker.ready(effect.topic)
            elif isinstance(effect, ListMessages):
                try:
                    messages, more = self.feed.chat_messages(feed_socket, effect.before)
                except StorageFailed as exc:
                    self.stats.sessions.refused[exc.code] += 1
                    await sink.send_text(wire.encode_reply(effect.request_id,
                                                           (exc.code, str(exc))))
                    continue
                await sink.send_text(wire.encode_chat_messages(effect.request_id, messages,
                                                               more))
            else:
                self._apply_now((effect,))
        return True

    def _apply_now(self, effects: tuple[Effect, ...]) -> None:
        """Carry out the effects that need no waiting: publishing and the broker's
        subscriptions (all that leaving a channel can bring)."""
        for effect in effects:
            if isinstance(effect, Publish):
                self.broker.publish(effect.topic, effect.item)
            # A (un)subscription is checked against the hub when it is carried out: effects
            # after an await may run late, after another connection joined or left.
            elif isinstance(effect, Subscribe):
                if self.hub.joined_count(effect.topic):
                    self.broker.subscribe(effect.topic, self._on_published)
            elif isinstance(effect, Unsubscribe):
                if not self.hub.joined_count(effect.topic):
                    self.broker.unsubscribe(effect.topic, self._on_published)
            else:
                raise TypeError(f"{type(effect).__name__} cannot be carried out here")

    def _on_published(self, topic: str, item: Published) -> None:
        """An item reached a channel this process has members in: the hub names the
        receivers (never the sender), and the frame is encoded once for all of them. A
        receiver found too slow here is cut off by its sink after this write, so the hub
        is not re-entered while it is being asked."""
        receivers = self.hub.receivers(topic, item)
        if not receivers and self.route is None:
            return
        parts = binary_frame_parts(item.payload)
        size = sum(map(len, parts))
        # Counted once per item for all its receivers (written or found too slow alike).
        count = len(receivers)
        self.stats.realtime_items_out += count
        self.stats.realtime_bytes_out += size * count
        if self.route is not None:
            self.route(topic, item, receivers, parts, size)
            return
        for conn in receivers:
            conn.sink.deliver(parts, size, item)

    def page_of_connection(self, conn_id: int) -> Page | None:
        """The member page an open connection of this process belongs to."""
        for held in self._sockets.values():
            if held.session.conn.id == conn_id:
                return held.page
        return None

    async def _allow_framing(self, request: web.Request, response: web.StreamResponse) -> None:
        """Let the origins of `frame_ancestors` frame the page's documents."""
        policy = response.headers.get("Content-Security-Policy")
        if policy is not None:
            extra = " ".join(self.settings.frame_ancestors)
            response.headers["Content-Security-Policy"] = policy.replace(
                "frame-ancestors 'self'", f"frame-ancestors 'self' {extra}", 1)

    def connection_stats(self) -> list[ConnectionStats]:
        """A snapshot of every open connection, with its drops and what is in flight."""
        stats = []
        for sink, held in self._sockets.items():
            window = sink.window
            stats.append(ConnectionStats(
                page=held.page.label, connection=held.session.conn.id,
                joined=held.session.conn.joined, dropped=replace(sink.items.counts),
                waiting_bytes=sink.items.waiting_bytes,
                in_flight_bytes=sink.in_flight_bytes if window.reporting else None,
                read_rate=window.rate))
        return stats

    async def disconnect(self, label: str, reason: str = "disconnected by the host") -> int:
        """Close every socket of one member's page (it may reconnect while its invite is
        valid); return how many were closed."""
        sinks = [sink for sink, socket in self._sockets.items() if socket.page.label == label]
        await self._close_all(sinks, WSCloseCode.SERVICE_RESTART, reason)
        return len(sinks)

    async def retire(self, labels: list[str], reason: str) -> int:
        """Pages and home pages that no longer exist (their member removed, their app copy
        removed, their links revoked): close every socket of theirs at once and forget
        their allowances; return how many sockets were closed. The registry has already
        forgotten them (or changed their tokens), so they cannot reconnect."""
        closed = await asyncio.gather(*(self.disconnect(label, reason) for label in labels))
        for label in labels:
            self._budgets.pop(label, None)
        return sum(closed)

    def connection_counts(self) -> tuple[int, int]:
        """WebSocket connections open now, and how many of them are joined to their
        realtime channel."""
        joined = sum(1 for socket in self._sockets.values() if socket.session.conn.joined)
        return len(self._sockets), joined

    async def _close_all(self, sinks: list[Outbound], code: int, reason: str) -> None:
        """Close connections all at once, each within the grace: a client that does not
        read must not hold up the rest."""
        grace = self.settings.close_grace_s

        async def close(sink: Outbound) -> None:
            try:
                await asyncio.wait_for(self._close_session(sink, code, reason), grace)
            except (TimeoutError, ConnectionError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(*(close(sink) for sink in sinks))

    async def _close_session(self, sink: Outbound, code: int, reason: str) -> None:
        """The host closes a connection: out of its channel at once, then the close frame."""
        socket = self._sockets.get(sink)
        effects = socket.session.close(code, reason) if socket is not None else ()
        self._apply_now(tuple(e for e in effects if not isinstance(e, Close)))
        await sink.close(code, reason)

    async def _close_sockets(self, app: web.Application) -> None:
        await self._close_all(list(self._sockets), WSCloseCode.GOING_AWAY,
                              "host shutting down")
        # A handler may be pausing a paced page; its socket is gone, so is its work.
        for held in list(self._sockets.values()):
            held.handler.cancel()


def presented_tokens(request: web.Request, max_cookies: int) -> list[str]:
    """The tokens a request shows: every value of the page's cookie (browsers), in the order
    sent, then `Authorization: Bearer` (programs). Values that no invite sets are passed
    over; of the cookie's values the first `max_cookies` are looked at.

    All are kept because the browser sends a cookie a sibling origin set for the whole
    domain beside the page's own, in either order, and aiohttp's `request.cookies` keeps only
    one value of a name: whichever it kept would decide. Only a value valid for the origin
    asked admits a request, so the others are simply not it."""
    tokens = [value for value in itertools.islice(_session_cookie_values(request), max_cookies)
              if _TOKEN_SHAPE.fullmatch(value)]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _TOKEN_SHAPE.fullmatch(value):
        tokens.append(value)
    return tokens


def _session_cookie_values(request: web.Request) -> Iterator[str]:
    """Each value of the page's cookie in the request's `Cookie` lines (a proxy may split
    them into several), in the order sent."""
    for header in request.headers.getall("Cookie", ()):
        for pair in header.split(";"):
            name, sep, value = pair.partition("=")
            if sep and name.strip() in _SESSION_COOKIES:
                yield value.strip()


def presents(request: web.Request, entrance: Entrance, max_cookies: int) -> bool:
    """Whether any token the request shows (`presented_tokens`) is that of `entrance`."""
    return any(entrance.token_matches(token)
               for token in presented_tokens(request, max_cookies))


def _ask_socket_buffers(transport: asyncio.Transport, receive: int, send: int) -> None:
    """Ask the kernel to hold at most about `receive` unread bytes from this socket and
    `send` unsent ones for it (hints: the kernel may round them, Linux doubles them, and a
    platform without the options keeps its own)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send)


_CONTINUE_PAGE = ('<!doctype html><html><head><meta charset="utf-8">'
                  '<meta http-equiv="refresh" content="0;url=/"><title>webxdc-rt</title>'
                  '</head><body><a href="/">Continue</a></body></html>')


def invite_response(request: web.Request, token: str, secure: bool) -> web.Response:
    """The answer to a valid invite link: the origin's host-only cookie, and on to `/`.
    Over https (`secure`) it is a `__Host-` cookie, which no other origin can set.

    A link followed from another site (a member's home page, a web mail) is answered with a
    page that moves on by itself rather than a redirect: a redirect would keep the
    navigation cross-site, and the browser would not send the SameSite=Strict cookie with
    it; the page's own navigation is same-site, so it does."""
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        response = web.Response(text=_CONTINUE_PAGE, content_type="text/html",
                                headers={"Cache-Control": "no-store"})
    else:
        response = web.Response(status=303, headers={"Location": "/"})
    response.set_cookie(SECURE_SESSION_COOKIE if secure else SESSION_COOKIE, token,
                        httponly=True, samesite="Strict", secure=secure, path="/")
    return response


def same_origin(request: web.Request) -> bool:
    """True when the request has no Origin (not a browser) or comes from its own origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # e.g. an unclosed IPv6 bracket: no origin of ours
        return False
    return netloc.lower() == request.host.lower()


def _opaque_app_file_request(request: web.Request) -> bool:
    """Whether a request without the invite cookie may still have an app file: a script,
    image, style, font or `fetch()` of a document with an opaque origin, such as a frame the
    page sandboxed (`<iframe sandbox="allow-scripts" src="frame.html">`).

    Such documents send no cookie and no Referer, so the host cannot tell the page's own
    sandboxed frames from those of another page (`fetch_metadata` has what Chromium sends).
    What it hands out is therefore only what every member of the chat received in the
    `.xdc` anyway, to whoever knows the page's unguessable address: the app's files, never
    documents (navigations still need the cookie, and `frame-ancestors` keeps other origins
    from framing them), never the bridge (`selfAddr`, `selfName`) and never the socket.
    Real origins, another member's page included, still need the cookie and get
    `Cross-Origin-Resource-Policy: same-origin`.
    """
    path = request.path
    return (request.method in ("GET", "HEAD") and path != "/webxdc.js"
            and not path.startswith(HOST_PREFIX + "/")
            and fetch_metadata.from_opaque_origin(request.headers))


def _app_document(request: web.Request, data: bytes, content_type: str,
                  status: int = 200) -> web.Response:
    """An app file as served to a page: an HTML document it renders gets the guard first and
    the report-only policy that lets the guard see what becomes a document."""
    headers = {"Cache-Control": "no-cache"}
    charset = None
    if content_type == "text/html" and fetch_metadata.renders_as_document(request.headers):
        guarded = html_guard.guard_html(data, _GUARD_ELEMENT)
        data, charset = guarded.body, guarded.charset
        headers["Content-Security-Policy-Report-Only"] = TRUSTED_TYPES_POLICY
    return web.Response(status=status, body=data, content_type=content_type, charset=charset,
                        headers=headers)


def _add_security_headers(response: web.StreamResponse) -> None:
    headers = response.headers
    policy = CONTENT_SECURITY_POLICY if response.content_type == "text/html" else SANDBOXED_POLICY
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")


async def _on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    _decorate(response)


def _decorate(response: web.StreamResponse) -> None:
    """The host's own headers, on every response (handlers may set their own first)."""
    _add_security_headers(response)
    response.headers["Server"] = SERVER_NAME


def _content_type(name: str) -> str:
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


def _refusal(status: int, message: str) -> web.Response:
    """A refusal for want of a page or an invite; the connection is closed after it, so an
    unauthenticated client holds no connection beyond its one request."""
    response = _text(status, message)
    response.force_close()
    return response


def hello_limits(limits: RealtimeLimits, delivery: DeliveryLimits) -> wire.HelloLimits:
    """What every connection's `hello` tells of the realtime limits, named on the wire."""
    return wire.HelloLimits(
        max_payload_bytes=limits.max_payload_bytes,
        send_items_per_s=limits.send_items_per_s, send_items_burst=limits.send_items_burst,
        send_bytes_per_s=limits.send_bytes_per_s, send_bytes_burst=limits.send_bytes_burst,
        receive_window_bytes=delivery.receive_window_bytes)
