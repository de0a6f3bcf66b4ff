"""One WebSocket link to the host: dialling it with an invite link, and the link itself,
which writes what its queue holds, reads what the host sends, and tells the host what it
has read."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ..core import wire
from .errors import InviteRefused
from .sendqueue import PeerStats, SendQueue

__all__ = ["INVITE_MARKER", "SOCKET_PATH", "Link", "LinkOptions", "Opened", "open_socket",
           "wait_until_ended"]

log = logging.getLogger(__name__.rpartition(".")[0])

INVITE_MARKER = "/.webxdc-rt/invite/"
SOCKET_PATH = "/.webxdc-rt/socket"
DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024
"""Bytes a peer queues for writing before sending a control message raises BufferError."""
DEFAULT_MAX_PENDING_ITEM_BYTES = 16 * 1024 * 1024
"""Bytes of realtime items a peer queues for writing; an item beyond it is dropped."""
DEFAULT_MAX_ITEM_WAIT_S = 0.5
"""Seconds a realtime item may wait in the peer's queue; one that waited longer is dropped
instead of written."""
REPORT_DELAY_S = 0.02
"""How long after reading an item the peer tells the host, at the latest."""
MIN_REPORT_BYTES = 64 * 1024
"""Bytes read that make the peer tell the host at once (or a sixteenth of the window, if
more): often enough that the host never waits on it, seldom enough to cost nothing."""
REFUSING_STATUSES = (401, 403, 404)
"""WebSocket upgrade answers that mean the invite itself is refused, not the host busy."""


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """How a peer dials and queues, the same for each of its links (see `connect`)."""

    timeout: float = 10.0
    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES
    max_pending_item_bytes: int = DEFAULT_MAX_PENDING_ITEM_BYTES
    max_item_wait_s: float = DEFAULT_MAX_ITEM_WAIT_S


@dataclass(slots=True)
class Opened:
    """A socket the host accepted, with its hello."""

    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    hello: wire.Hello
    dialled_ms: float
    """When the client began to open the socket, by `time.monotonic()`, in milliseconds."""
    heard_ms: float
    """When it had read the hello, likewise (the hello's time was read in between)."""


async def open_socket(url: str, timeout: float) -> Opened:
    """Dial the host of invite link `url` and read its hello. Raises InviteRefused when the
    host does not accept the link, ValueError when `url` is not an invite link, and
    ConnectionError / TimeoutError when the host is unreachable."""
    ws_url, host_header, token = socket_target(url)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=timeout))
    try:
        # The hello's time is read between these two moments (`wire.ItemClock`).
        dialled_ms = time.monotonic() * 1000
        ws = await session.ws_connect(
            ws_url, headers={"Host": host_header, "Authorization": f"Bearer {token}"},
            max_msg_size=0, autoping=True, heartbeat=30.0, compress=0)
        hello = await _receive_hello(ws, timeout)
        heard_ms = time.monotonic() * 1000
    except aiohttp.WSServerHandshakeError as exc:
        await session.close()
        if exc.status in REFUSING_STATUSES:
            raise InviteRefused(f"the host refused this invite link ({exc.status})") from None
        raise ConnectionError(f"WebSocket handshake failed: {exc.status} {exc.message}") from None
    except aiohttp.ClientConnectionError as exc:
        await session.close()
        raise ConnectionError(f"cannot reach the host at {url}: {exc}") from None
    except BaseException:
        await session.close()
        raise
    return Opened(session, ws, hello, dialled_ms, heard_ms)


async def wait_until_ended(*tasks: asyncio.Task[Any]) -> None:
    """Wait until every one of `tasks` ended (cancelled ones included), then raise the error
    one of them failed with, as awaiting it would. Waited for, not awaited: awaiting a
    cancelled task raises a CancelledError that cannot be told from a cancellation of the
    waiting task itself arriving meanwhile, and ignoring it would ignore that too (a
    supervisor cancelled while closing a link would dial again, a close() cancelled would
    return as if it was not)."""
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.result()


def socket_target(url: str) -> tuple[str, str, str]:
    """Split an invite link into the socket URL to dial, the Host header, and the token."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or INVITE_MARKER not in parts.path:
        raise ValueError(f"not a webxdc-rt invite link: {url!r}")
    token = parts.path.split(INVITE_MARKER, 1)[1].strip("/")
    hostname = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # `*.localhost` always means this machine (RFC 6761), whatever the resolver says.
    is_loopback_name = hostname == "localhost" or hostname.endswith(".localhost")
    dial_host = "127.0.0.1" if is_loopback_name else hostname
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{ws_scheme}://{dial_host}:{port}{SOCKET_PATH}", parts.netloc, token


async def _receive_hello(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> wire.Hello:
    msg = await ws.receive(timeout=timeout)
    if msg.type is not aiohttp.WSMsgType.TEXT:
        raise ConnectionError(f"expected the host's hello, got {msg.type.name}")
    try:
        return wire.decode_hello(msg.data)
    except wire.WireError as exc:
        raise ConnectionError(f"the host's hello is malformed: {exc}") from None


class Link:
    """One open socket to the host: a task writes what `queue` holds, another reads, hands
    each fresh item's payload to `on_item` and each control message to `on_control`, and tells
    the host what it has read. `ended` finishes when either stops (the link is lost)."""

    def __init__(self, opened: Opened, options: LinkOptions, stats: PeerStats,
                 on_item: Callable[[bytes], None],
                 on_control: Callable[[wire.HostMessage], None]) -> None:
        self._session = opened.session
        self._ws = opened.ws
        self._stats = stats
        self._on_item = on_item
        self._on_control = on_control
        limits = opened.hello.limits
        self.queue = SendQueue(stats, options.max_pending_bytes,
                               options.max_pending_item_bytes, options.max_item_wait_s)
        window = limits.receive_window_bytes
        self._report_every = max(MIN_REPORT_BYTES, window // 16) if window else 0
        self._read_bytes = 0
        self._reported_bytes = 0
        self._report_timer: asyncio.TimerHandle | None = None
        age = limits.max_item_age_ms
        time_ms = opened.hello.time_ms
        self.clock = (None if time_ms is None or not age
                      else wire.ItemClock(time_ms, opened.dialled_ms, opened.heard_ms, age))
        """Stamps this link's items and checks theirs, if the host stamps items."""
        self._join = (-1, 0.0)
        """The epoch of the latest join made here and when it was asked for (ms)."""
        self._closing = False
        self.reader = asyncio.create_task(self._read_loop())
        self.writer = asyncio.create_task(self._write_loop())
        if self._report_every:  # from the first item on, the host may bound what it sends
            self.queue.put(wire.encode_received(0))

    @property
    def closed(self) -> bool:
        """Whether this socket is gone (closed by either side)."""
        return self._closing or self._ws.closed

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code, once closed by the host."""
        return self._ws.close_code

    def join_frame(self, epoch: int) -> str:
        """A join with `epoch`, asking for stamps if the host stamps items; the host's
        clock in its `joined` narrows `clock` (asked for now)."""
        self._join = (epoch, time.monotonic() * 1000)
        return wire.encode_join(epoch, self.clock is not None)

    def put(self, frame: str) -> None:
        """Queue a control frame; BufferError when the queue is full."""
        self.queue.put(frame)

    def put_item(self, payload: bytes) -> None:
        """Queue a realtime item, stamped if the host stamps items."""
        if self.clock is not None:
            payload = self.clock.stamp(payload, time.monotonic() * 1000)
        self.queue.put_item(payload)

    async def ended(self) -> None:
        """Wait until the link is lost, or closed."""
        await asyncio.wait({self.reader, self.writer}, return_when=asyncio.FIRST_COMPLETED)

    async def close(self) -> None:
        """Close the socket and release its resources."""
        self._closing = True
        if self._report_timer is not None:
            self._report_timer.cancel()
        self.writer.cancel()
        await self._ws.close()
        try:
            await wait_until_ended(self.reader, self.writer)
        finally:
            await self._session.close()

    def _on_binary(self, data: bytes) -> None:
        """One realtime item: its payload to `on_item` unless it is stale, then counted as
        read for the host."""
        clock = self.clock
        if clock is not None and not clock.fresh(data, time.monotonic() * 1000):
            self._stats.items_expired += 1  # older than the bound: dropped
        else:
            self._on_item(data if clock is None else data[wire.ITEM_HEADER_BYTES:])
        stats = self._stats
        stats.items_received += 1
        stats.bytes_received += len(data)
        if not self._report_every:
            return
        self._read_bytes += wire.frame_bytes(len(data))
        if self._read_bytes - self._reported_bytes >= self._report_every:
            self._report()
        elif self._report_timer is None:
            self._report_timer = asyncio.get_running_loop().call_later(
                REPORT_DELAY_S, self._report)

    def _report(self) -> None:
        if self._report_timer is not None:
            self._report_timer.cancel()
            self._report_timer = None
        if self.closed or self._read_bytes == self._reported_bytes:
            return
        self._reported_bytes = self._read_bytes
        # Ahead of what this peer sends itself: the host must not wait on its own items.
        # Not part of what `drain` waits for: that is what the app sent.
        self.queue.put_first(wire.encode_received(self._read_bytes))

    async def _write_loop(self) -> None:
        try:
            while not self.closed:
                await self.queue.write_to(self._ws)
        except ConnectionError as exc:
            log.info("link to the host lost while writing: %s", exc)
        finally:
            self._closing = True
            self.queue.clear()

    async def _read_loop(self) -> None:
        async for msg in self._ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                self._on_binary(msg.data)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                self._on_text(msg.data)
        self._closing = True
        self.queue.wake()

    def _on_text(self, text: str) -> None:
        """One control frame from the host. A bad one is logged and dropped; the link and
        everything else carry on."""
        try:
            message = wire.decode_host_message(text)
        except wire.WireError as exc:
            log.warning("ignoring a malformed frame from the host (%s): %s", exc.code, exc)
            return
        if type(message) is wire.Joined:
            self._read_clock(message)
        try:
            self._on_control(message)
        except Exception:
            log.exception("ignoring a %s frame from the host that could not be handled",
                          type(message).__name__)

    def _read_clock(self, joined: wire.Joined) -> None:
        """A `joined` that answers the latest join narrows the clock by the host's time in
        it (`wire.ItemClock.narrow`)."""
        epoch, asked_ms = self._join
        if joined.time_ms is not None and self.clock is not None and joined.epoch == epoch:
            self.clock.narrow(joined.time_ms, asked_ms, time.monotonic() * 1000)
