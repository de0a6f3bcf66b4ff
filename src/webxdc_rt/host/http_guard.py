"""Connection-level protection of the HTTP server: what happens to a TCP connection before
(and around) the requests the application sees.

- Every connection counts toward one cap, kept below the open-file limit with a reserve of
  descriptors. At the cap, the oldest connection that has not shown a valid invite makes room
  for the newcomer, so a flood of silent connections cannot shut members out. When every
  connection has shown one, the member page holding the most connections makes room (its
  connection idle the longest), provided it holds more than its share of the cap: so one
  member cannot hold the cap and starve the others, and a newcomer nobody knows yet cannot
  take the connections of pages within their share. Only then is the newcomer closed.
- Connections that showed a valid invite are counted per member page (all its tabs and
  devices together): a page holds at most `max_http_connections_per_page` plain HTTP
  connections; beyond, its own connection idle the longest is closed, or, when none is idle,
  the request is refused (503). WebSockets are counted by the host (`max_connections_per_page`).
- A connection has `header_timeout_s` to show a valid invite (link, cookie or bearer token);
  one that has not by then is closed, and so is one whose request head is longer than
  `max_preauth_bytes` before it has (with a 431 page): a flood of unauthenticated connections
  holds little memory. A body is not counted: aiohttp reads it only as its handler asks,
  and the handler refuses a request without an invite. Kept-alive connections are closed
  after `idle_timeout_s` without a complete request (aiohttp's own `keepalive_timeout`).
- Requests that aiohttp answers itself (a malformed request line, a bad method, oversize
  headers) and any exception that escapes a handler get a short fixed page, the host's
  headers (see `decorate`) and one log line, never the request echoed or a traceback.

Why a `RequestHandler` subclass: aiohttp answers protocol-level errors in
`RequestHandler.handle_error`, before any application, middleware or `on_response_prepare`
signal is involved (those requests have no route), so overriding that documented hook is the
only place their headers and bodies can be set. The same class sees `connection_made` and
`connection_lost`, which is all the connection cap needs. aiohttp creates one handler per
connection by calling its `web.Server`, and `AppRunner` builds that server; `GuardedAppRunner`
lets `AppRunner` set the application up as usual and then serves it with a `GuardedServer`
made from the public `request_handler` and `request_factory` of the server aiohttp built.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ..core.describe import describe_exception
from .large_frames import LargeFrames, large_frames_for

try:
    import resource
except ImportError:  # not on Windows: there the cap is `max_tcp_connections` alone
    resource = None  # type: ignore[assignment]

__all__ = ["ConnectionGuard", "GuardedRequestHandler", "GuardedServer", "GuardedAppRunner",
           "PageFull", "admit", "upgraded", "connection_cap", "describe_failure",
           "describe_exception"]

log = logging.getLogger(__name__)

Decorate = Callable[[web.StreamResponse], None]
"""Adds the host's own headers to a response (security headers, `Server`)."""

_FULL_REPORT_INTERVAL_S = 60.0
"""Least time between two log lines saying that the connection cap was reached."""
_HEAD_END = b"\r\n\r\n"
_LOGGED_PATH_CHARS = 100
_LOGGED_MESSAGE_CHARS = 200

_UNREADABLE_REQUEST = RawRequestMessage(
    "GET", "/", HttpVersion11, CIMultiDictProxy(CIMultiDict()), (), True, None, False, False,
    URL("/"))
"""Stands in for a request aiohttp parsed but could not turn into a request object."""


def connection_cap(max_tcp_connections: int, fd_reserve: int) -> int:
    """The most TCP connections the host may hold: `max_tcp_connections`, lowered so that
    `fd_reserve` file descriptors stay free below the soft open-file limit (at least 1)."""
    cap = max_tcp_connections
    if resource is not None:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            cap = min(cap, soft - fd_reserve)
    return max(cap, 1)


class ConnectionGuard:
    """Counts the host's TCP connections, closes those that show no valid invite in time,
    bounds the plain HTTP connections of each member page, and makes room for newcomers at
    the cap (see the module docstring)."""

    def __init__(self, cap: int, header_timeout_s: float, max_preauth_bytes: int,
                 max_http_per_page: int) -> None:
        self.cap = cap
        self.header_timeout_s = header_timeout_s
        self.max_preauth_bytes = max_preauth_bytes
        self.max_http_per_page = max_http_per_page
        # Insertion order is connection order: the first entry is the oldest.
        self._unadmitted: OrderedDict[GuardedRequestHandler, asyncio.TimerHandle] = (
            OrderedDict())
        # Per page, its connections by when they were last active, the longest idle first.
        self._pages: dict[str, OrderedDict[GuardedRequestHandler, None]] = {}
        self._http_counts: dict[str, int] = {}
        self._admitted_count = 0
        self.evicted = 0
        """Connections without an invite closed to make room for a newer one."""
        self.evicted_from_pages = 0
        """Connections with an invite closed at the cap to make room, from the page holding
        the most."""
        self.refused = 0
        """Connections closed at once because no connection could make room."""
        self.page_evicted = 0
        """Idle connections of a page closed to make room for a newer one of the same page
        (`max_http_per_page`)."""
        self.page_refused = 0
        """Requests refused because their page held its limit of busy connections."""
        self.timed_out = 0
        """Connections closed because they showed no valid invite within the header timeout."""
        self.too_large = 0
        """Connections closed because they sent too much before showing a valid invite."""
        self._last_full_report: float | None = None

    @property
    def open_count(self) -> int:
        """Connections held now."""
        return len(self._unadmitted) + self._admitted_count

    def page_count(self, label: str) -> int:
        """Connections held now by the member page `label` (HTTP and WebSockets)."""
        return len(self._pages.get(label, ()))


    def opened(self, conn: GuardedRequestHandler, loop: asyncio.AbstractEventLoop) -> None:
        """Count a new connection, making room for it when the cap is reached (or closing
        it when nobody can make room)."""
        if self.open_count >= self.cap:
            if not self._make_room():
                self.refused += 1
                self._report_full(loop.time())
                conn.force_close()
                return
            self._report_full(loop.time())
        self._unadmitted[conn] = loop.call_later(self.header_timeout_s, self._expire, conn)

    def _make_room(self) -> bool:
        """Close one connection for a newcomer: the oldest without an invite, else the
        longest idle of the page holding the most, if it holds more than its share."""
        if self._unadmitted:
            oldest, deadline = self._unadmitted.popitem(last=False)
            deadline.cancel()
            self.evicted += 1
            oldest.force_close()
            return True
        victim = self._fair_victim()
        if victim is None:
            return False
        self._forget_admitted(victim)
        self.evicted_from_pages += 1
        victim.force_close()
        return True

    def _largest_page(self) -> tuple[str, int] | None:
        if not self._pages:
            return None
        label = max(self._pages, key=lambda name: len(self._pages[name]))
        return label, len(self._pages[label])

    def _fair_victim(self) -> GuardedRequestHandler | None:
        largest = self._largest_page()
        if largest is None:
            return None
        label, count = largest
        # The newcomer may be of a page not holding any yet: the share counts it too. A
        # page within its share keeps its connections whoever knocks.
        share = max(1, self.cap // (len(self._pages) + 1))
        if count <= share:
            return None
        conns = self._pages[label]
        idle = next((conn for conn in conns if conn.idle), None)
        return idle if idle is not None else next(iter(conns))

    def _report_full(self, now: float) -> None:
        # One line a minute at most: a flood must not flood the log. The counts include
        # what was just done for the newcomer.
        if (self._last_full_report is not None
                and now - self._last_full_report < _FULL_REPORT_INTERVAL_S):
            return
        self._last_full_report = now
        largest = self._largest_page() or ("none", 0)
        log.warning("the host holds its cap of %d TCP connections: so far %d without an "
                    "invite evicted, %d evicted from the page holding the most (%s, %d "
                    "connections), %d newcomers refused", self.cap, self.evicted,
                    self.evicted_from_pages, largest[0], largest[1], self.refused)

    def admit(self, conn: GuardedRequestHandler, label: str) -> bool:
        """A request of `conn` showed a valid invite of the member page `label`: no more
        header timeout or byte limit, and counted for that page. False if the page holds
        its limit of connections and none of them is idle (the request is to be refused)."""
        if conn.page == label:
            self._pages[label].move_to_end(conn)
            return True
        if conn.page is None and conn not in self._unadmitted:
            return True  # closed to make room, or refused at the cap: not counted
        if not conn.websocket and self._http_counts.get(label, 0) >= self.max_http_per_page:
            conns = self._pages[label]
            idle = next((other for other in conns if other.idle and not other.websocket),
                        None)
            if idle is None:
                self.page_refused += 1
                return False
            self._forget_admitted(idle)
            self.page_evicted += 1
            idle.force_close()
        deadline = self._unadmitted.pop(conn, None)
        if deadline is not None:
            deadline.cancel()
        else:  # a request for another page on a connection counted for one
            self._forget_admitted(conn)
        conn.page = label
        self._pages.setdefault(label, OrderedDict())[conn] = None
        self._admitted_count += 1
        if not conn.websocket:
            self._count_http(label, 1)
        return True

    def touch(self, conn: GuardedRequestHandler) -> None:
        """`conn` finished a request: it is now the one of its page idle the shortest."""
        if conn.page is not None:
            self._pages[conn.page].move_to_end(conn)

    def upgraded(self, conn: GuardedRequestHandler) -> None:
        """`conn` became a WebSocket: no longer one of its page's HTTP connections."""
        if conn.websocket:
            return
        if conn.page is not None:
            self._count_http(conn.page, -1)
        conn.websocket = True

    def sent_too_much(self, conn: GuardedRequestHandler) -> None:
        """Forget an unadmitted connection that exceeded `max_preauth_bytes` (being closed)."""
        if self._unadmitted.pop(conn, None) is not None:
            self.too_large += 1

    def closed(self, conn: GuardedRequestHandler) -> None:
        """Forget a connection that ended (any number of times)."""
        deadline = self._unadmitted.pop(conn, None)
        if deadline is not None:
            deadline.cancel()
        self._forget_admitted(conn)

    def _forget_admitted(self, conn: GuardedRequestHandler) -> None:
        label = conn.page
        if label is None:
            return
        conn.page = None
        conns = self._pages[label]
        del conns[conn]
        if not conns:
            del self._pages[label]
        self._admitted_count -= 1
        if not conn.websocket:
            self._count_http(label, -1)

    def _count_http(self, label: str, change: int) -> None:
        count = self._http_counts.get(label, 0) + change
        if count:
            self._http_counts[label] = count
        else:
            del self._http_counts[label]

    def _expire(self, conn: GuardedRequestHandler) -> None:
        if self._unadmitted.pop(conn, None) is not None:
            self.timed_out += 1
            conn.force_close()


def describe_failure(request: web.BaseRequest, exc: BaseException | None) -> str:
    """One log line about an exception that escaped a handler: the request's method and path
    (shortened, escaped) and the exception's type, message and innermost frame, without
    the traceback that would let any client flood the log."""
    path = request.path
    if len(path) > _LOGGED_PATH_CHARS:
        path = path[:_LOGGED_PATH_CHARS] + "..."
    line = f"{request.method[:16]!r} {path!r}"
    if exc is None:
        return line
    return f"{line}: {describe_exception(exc)}"


_base_data_received = web.RequestHandler.data_received


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's per-connection HTTP handler, counted by a `ConnectionGuard` and answering
    errors with fixed pages that carry the host's headers."""

    __slots__ = ("_guard", "_decorate", "_too_large_reply", "_preauth_bytes", "_in_head",
                 "_head_tail", "page", "websocket", "busy", "reads", "frames_of",
                 "_frames")

    def __init__(self, manager: web.Server, guard: ConnectionGuard, decorate: Decorate,
                 too_large_reply: bytes, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._decorate = decorate
        self._too_large_reply = too_large_reply
        self._preauth_bytes: int | None = 0
        """Bytes of the request head received before a valid invite; None once one was
        shown."""
        self._in_head = True
        """Whether what arrives is (still) a request head, not the body after one."""
        self._head_tail = b""
        """The last bytes of the head so far: its end may come split over two reads."""
        self.page: str | None = None
        """The member page whose valid invite the connection showed (None: none yet)."""
        self.websocket = False
        """Whether the connection became a WebSocket."""
        self.busy = 0
        """Requests of this connection being handled now."""
        self.reads = 0
        """Reads that brought bytes from the peer: a link that answers moves it (a
        WebSocket's heartbeat watches it instead of resetting a timer on every read)."""
        self._frames: LargeFrames | None = None
        self.frames_of: web.WebSocketResponse | None = None
        """The WebSocket being prepared on this connection whose large frames are read by
        `large_frames.LargeFrames` rather than aiohttp's reader alone (see `set_parser`)."""

    @property
    def idle(self) -> bool:
        """Whether no request of this connection is being handled (nor a WebSocket)."""
        return not self.busy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start serving the connection, then count it (which may close it at once)."""
        super().connection_made(transport)
        self._guard.opened(self, asyncio.get_running_loop())

    def connection_lost(self, exc: BaseException | None) -> None:
        """Forget the connection, then let aiohttp clean up."""
        self._guard.closed(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Count the request head an unadmitted connection sends; past the limit, answer 431
        and close instead of letting aiohttp buffer an ever larger head."""
        self.reads += 1
        frames = self._frames
        if frames is not None:
            if frames.walking:  # aiohttp's `data_received` for a WebSocket, inlined
                if data and not (self._force_close or self._close) \
                        and frames.feed_data(data)[0]:
                    self.close()
                return
            self._frames = None  # aiohttp's reader alone from now on
            self._payload_parser = frames.inner
        if self._preauth_bytes is not None and self._in_head:
            self._preauth_bytes += self._head_bytes(data)
            if self._preauth_bytes > self._guard.max_preauth_bytes:
                self._preauth_bytes = None
                self._guard.sent_too_much(self)
                if self.transport is not None:
                    self.transport.write(self._too_large_reply)
                self.force_close()
                return
        _base_data_received(self, data)  # super()'s, looked up once: this runs per read

    def set_parser(self, parser: Any, data_received_cb: Callable[[], None] | None = None,
                   ) -> None:
        """Feed the upgraded connection to `parser` (aiohttp's WebSocket reader), with
        `LargeFrames` in front of it for the WebSocket in `frames_of`: set here, before
        aiohttp hands the parser any bytes, so that both start at a frame boundary."""
        ws, self.frames_of = self.frames_of, None
        if ws is not None:
            parser = large_frames_for(ws, parser)
        if data_received_cb is None:  # aiohttp before 3.14 takes the parser alone
            super().set_parser(parser)
        else:
            super().set_parser(parser, data_received_cb)
        if isinstance(parser, LargeFrames) and data_received_cb is None:
            self._frames = parser  # each read goes straight to it (`data_received`)

    def _head_bytes(self, data: bytes) -> int:
        """How much of `data` belongs to the request head; notes where the head ends (a
        body, such as an upload, may come in the same read)."""
        seen = self._head_tail + data
        end = seen.find(_HEAD_END)
        if end < 0:
            self._head_tail = seen[-(len(_HEAD_END) - 1):]
            return len(data)
        self._in_head = False
        self._head_tail = b""
        return end + len(_HEAD_END) - (len(seen) - len(data))

    def request_done(self) -> None:
        """A request was handled; a connection without an invite may send its next head."""
        if self._preauth_bytes is not None:
            self._preauth_bytes = 0
            self._in_head = True
        self._guard.touch(self)

    def admit(self, label: str) -> bool:
        """This connection showed a valid invite of the page `label`; False if the page
        holds its limit of connections, none idle (see `ConnectionGuard.admit`)."""
        if not self._guard.admit(self, label):
            return False
        self._preauth_bytes = None
        return True

    @property
    def page_limit(self) -> int:
        """The HTTP connections one member page may hold (`max_http_per_page`)."""
        return self._guard.max_http_per_page

    def upgraded(self) -> None:
        """This connection became a WebSocket."""
        self._guard.upgraded(self)

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """Answer a request aiohttp could not read, or whose handler raised: a short page
        that names only the status (aiohttp's would echo the request), the host's headers,
        one log line, and the connection closed after it."""
        if status >= 500:
            log.error("%d for %s", status, describe_failure(request, exc))
        else:
            # A client that does not speak HTTP is no news for the operator.
            log.debug("%d for an unreadable request: %s", status,
                      type(exc).__name__ if exc is not None else "")
        if request.writer.output_size > 0:
            # A response already began (e.g. a WebSocket): no second one can follow. aiohttp
            # treats this as a lost connection and closes it.
            raise ConnectionError("an error after the response began; closing the connection")
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        response = web.Response(status=status, text=f"{status} {phrase}\n")
        self._decorate(response)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp's other error reports, as one line each (no traceback)."""
        exc = kwargs.get("exc_info")
        text = args[0] % args[1:] if len(args) > 1 else (args[0] if args else "")
        if isinstance(exc, BaseException):
            text = f"{text}: {type(exc).__name__}: {str(exc)[:_LOGGED_MESSAGE_CHARS]!r}"
        log.error("%s", text)


class GuardedServer(web.Server):
    """aiohttp's low-level server, creating a `GuardedRequestHandler` per connection."""

    def __init__(self, handler: Any, *, request_factory: Callable[..., web.BaseRequest],
                 guard: ConnectionGuard, decorate: Decorate,
                 handler_cancellation: bool = False, **handler_args: Any) -> None:
        self._app_handler = handler
        super().__init__(self._handle_counted, request_factory=self._make_request_safely,
                         handler_cancellation=handler_cancellation, **handler_args)
        self._app_request_factory = request_factory
        self._bad_request_reply = _raw_reply(400, "Bad Request", decorate)
        self.guard = guard
        self._guard_decorate = decorate
        self._guard_loop = asyncio.get_running_loop()
        self._handler_args = handler_args
        self._too_large_reply = _raw_reply(
            431, "The request is too large for a connection without an invite.", decorate)

    async def _handle_counted(self, request: web.BaseRequest) -> web.StreamResponse:
        # While a handler runs, its connection is busy: not the idle one to close for
        # another (a WebSocket's handler runs as long as the socket).
        conn = request.protocol
        if not isinstance(conn, GuardedRequestHandler):
            return cast(web.StreamResponse, await self._app_handler(request))
        conn.busy += 1
        try:
            return cast(web.StreamResponse, await self._app_handler(request))
        finally:
            conn.busy -= 1
            conn.request_done()

    def _make_request_safely(self, message: RawRequestMessage, payload: Any,
                             protocol: web.RequestHandler, writer: Any,
                             task: asyncio.Task[None]) -> web.BaseRequest:
        # aiohttp makes the request object outside its error handling: a request target it
        # parsed but cannot represent (a CONNECT or absolute-form target whose host is not
        # valid IDNA) raises here, which would leave the connection hanging and log a
        # traceback. Such a request gets a plain 400 and its connection is closed; the
        # stand-in request only lets aiohttp finish its loop (its answer goes nowhere).
        try:
            return self._app_request_factory(message, payload, protocol, writer, task)
        except Exception as exc:
            log.debug("400 for a request target that cannot be read: %s", type(exc).__name__)
            if protocol.transport is not None:
                protocol.transport.write(self._bad_request_reply)
            protocol.force_close()
            return self._app_request_factory(_UNREADABLE_REQUEST, payload, protocol, writer,
                                             task)

    def __call__(self) -> web.RequestHandler:
        """A handler for one new connection (aiohttp's protocol factory)."""
        return GuardedRequestHandler(self, self.guard, self._guard_decorate,
                                     self._too_large_reply, loop=self._guard_loop,
                                     **self._handler_args)


def _raw_reply(status: int, text: str, decorate: Decorate) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, for the moments when no
    request object exists to answer through aiohttp."""
    body = (text + "\n").encode()
    response = web.Response(status=status)
    decorate(response)
    headers = {**response.headers, "Content-Type": "text/plain; charset=utf-8",
               "Content-Length": str(len(body)), "Connection": "close"}
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


class GuardedAppRunner(web.AppRunner):
    """An `AppRunner` whose connections are capped and timed out by a `ConnectionGuard`.

    `handler_args` go to aiohttp's `RequestHandler` (e.g. `keepalive_timeout`,
    `max_line_size`, `max_field_size`, `max_headers`); no access log is written (it would let
    any client fill the disk).
    """

    def __init__(self, app: web.Application, *, max_tcp_connections: int, fd_reserve: int,
                 header_timeout_s: float, max_preauth_bytes: int,
                 max_http_connections_per_page: int, decorate: Decorate,
                 **handler_args: Any) -> None:
        super().__init__(app, handle_signals=False, access_log=None)
        self._max_tcp_connections = max_tcp_connections
        self._max_http_per_page = max_http_connections_per_page
        self._fd_reserve = fd_reserve
        self._header_timeout_s = header_timeout_s
        self._max_preauth_bytes = max_preauth_bytes
        self._decorate = decorate
        self._handler_args = handler_args
        self.guard: ConnectionGuard | None = None
        """The guard of the running server (None before `setup`)."""

    async def _make_server(self) -> web.Server:
        # AppRunner runs the application's startup and freezes it; its server is then
        # replaced by one that creates guarded handlers for the same application.
        plain = await super()._make_server()
        # Measured now, after the command line raised the open-file limit.
        cap = connection_cap(self._max_tcp_connections, self._fd_reserve)
        self.guard = ConnectionGuard(cap, self._header_timeout_s, self._max_preauth_bytes,
                                     self._max_http_per_page)
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             guard=self.guard, decorate=self._decorate,
                             handler_cancellation=plain.handler_cancellation,
                             access_log=None, **self._handler_args)


class PageFull(web.HTTPServiceUnavailable):
    """The answer to a request whose member page holds its limit of connections, all busy;
    its connection is closed after it."""

    def __init__(self, limit: int) -> None:
        super().__init__(text=f"Too many connections for this page (limit {limit}); "
                              "try again when one of them is done.\n")
        self.force_close()


def admit(request: web.BaseRequest, label: str) -> None:
    """Record that `request` showed a valid invite of the member page (or home page)
    `label`, so its connection is no longer timed out or evicted as unauthenticated, and is
    counted for that page. Raises `PageFull` (a 503 answer) if the page holds its limit of
    connections and none of them is idle. Nothing happens outside a `GuardedAppRunner`."""
    protocol = request.protocol
    if isinstance(protocol, GuardedRequestHandler) and not protocol.admit(label):
        raise PageFull(protocol.page_limit)


def upgraded(request: web.BaseRequest) -> None:
    """Record that `request`'s connection became a WebSocket (counted by the host's own
    limit, not as one of its page's HTTP connections)."""
    protocol = request.protocol
    if isinstance(protocol, GuardedRequestHandler):
        protocol.upgraded()
