"""The Python peer: take part in a shared app as one of its members: its realtime channel,
its status updates, and what it posts to the chat.

    peer = await connect(url)            # an invite link printed by `webxdc-rt serve`
    ch = peer.join_realtime_channel()
    ch.set_listener(lambda data: print(data))
    await ch.joined()                    # optional: wait until the host applied the join
    ch.send(b"hello")
    ch.leave()
    await peer.close()

It follows the same rules as the browser bridge: `send` checks type and size at once
(TypeError, ValueError), never echoes, and a join made while another is active raises
RuntimeError. Sending does not block: items go through a bounded queue, written in order by
a background task; `await channel.drain()` waits until everything sent was written.

Realtime items are the one thing it drops, as the host does: an item that waited in the
queue longer than `max_item_wait_s` (the host or the link is slower than the app sends), or
that finds `max_pending_item_bytes` of items queued, is dropped with one warning per episode
rather than sent seconds late, since stale realtime data is worse than none; one that arrives
older than the host's `max_item_age_ms` since it was sent (`wire.items`) is dropped too. It
tells the host what it has read (`received` reports), so the host keeps what is in flight to
it small when it reads slowly. `peer.stats` counts both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .core import wire

__all__ = ["InviteRefused", "Peer", "PeerStats", "RealtimeChannel", "connect",
           "DEFAULT_MAX_PENDING_BYTES", "DEFAULT_MAX_PENDING_ITEM_BYTES", "DEFAULT_MAX_ITEM_WAIT_S"]

log = logging.getLogger(__name__)

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


@dataclass(slots=True)
class PeerStats:
    """What this peer sent, received and dropped on its realtime channel."""

    items_sent: int = 0
    """Items written to the host."""
    bytes_sent: int = 0
    items_received: int = 0
    """Items read from the host (whether a listener took them or not)."""
    bytes_received: int = 0
    items_dropped: int = 0
    """Items dropped before they were written: they waited too long, or too much was
    queued already."""
    bytes_dropped: int = 0
    items_expired: int = 0
    """Items read older than the host's age bound (by their stamps): not for the listener."""

Listener = Callable[[bytes], object]


class InviteRefused(PermissionError):
    """The host refused the invite link (wrong, revoked, or not a member)."""


class RealtimeChannel:
    """This peer's membership in its app's realtime channel, from join until `leave`."""

    def __init__(self, peer: Peer, epoch: int) -> None:
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
        counted in `peer.stats`) if the queue to the host holds too many items already.

        Raises TypeError for anything but bytes-like data, ValueError above the host's
        `limits.max_payload_bytes` (128000 by default), RuntimeError after `leave`, and
        ConnectionError once the link is closed.
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
        Joining does not need it; tests and bots that must not miss an item do.

        Raises RuntimeError if the channel was left first, ConnectionError if the link to
        the host closes first.
        """
        if not self._settled.is_set():
            settled = asyncio.ensure_future(self._settled.wait())
            try:
                await asyncio.wait({settled, self._peer._reader},
                                   return_when=asyncio.FIRST_COMPLETED)
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

    def _deliver(self, data: bytes) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(data)
        except Exception:
            log.exception("realtime listener raised; the item is dropped")


class _SendQueue:
    """What a peer has yet to hand to its connection, bounded: control frames (text) and
    realtime items (bytes), in the order sent, except read reports, which go first. An item
    that would take the items queued over their bound, or that waited longer than its age
    bound, is dropped and counted, with one warning per episode of drops."""

    def __init__(self, stats: PeerStats, max_bytes: int, max_item_bytes: int,
                 max_item_wait_s: float) -> None:
        self._stats = stats
        self._max_bytes = max_bytes
        self._max_item_bytes = max_item_bytes
        self._max_item_wait_s = max_item_wait_s
        self._frames: deque[str | bytes] = deque()
        self._bytes = 0
        self._item_bytes = 0
        self._item_times: deque[float] = deque()  # when each queued item was sent
        self._dropping = False  # an episode of dropped items is going on
        self._wakeup = asyncio.Event()
        self.drained = asyncio.Event()
        """Set while nothing the app sent waits to be handed to the connection."""
        self.drained.set()

    def put(self, frame: str | bytes) -> None:
        """Queue a frame; BufferError when the queue is full."""
        size = len(frame)
        if self._bytes + size > self._max_bytes:
            raise BufferError(f"send queue full ({self._bytes} bytes waiting, limit "
                              f"{self._max_bytes}); await drain() before sending more")
        self._frames.append(frame)
        self._bytes += size
        self.drained.clear()
        self._wakeup.set()

    def put_item(self, payload: bytes) -> None:
        """Queue a realtime item, or drop it when the items queued are at their bound."""
        size = len(payload)
        if self._item_bytes + size > self._max_item_bytes:
            self._drop_item(size)
            return
        self._item_bytes += size
        self._item_times.append(time.monotonic())
        self.put(payload)

    def put_first(self, frame: str) -> None:
        """Queue a control frame ahead of everything else; not part of what `drained` waits
        for (a read report: the host must not wait on this peer's own items for it)."""
        self._frames.appendleft(frame)
        self._bytes += len(frame)
        self._wakeup.set()

    async def write_to(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Wait for frames, then write all that are queued."""
        await self._wakeup.wait()
        self._wakeup.clear()
        stats = self._stats
        while self._frames:
            frame = self._frames.popleft()
            self._bytes -= len(frame)
            if isinstance(frame, bytes):
                self._item_bytes -= len(frame)
                if time.monotonic() - self._item_times.popleft() > self._max_item_wait_s:
                    self._drop_item(len(frame))
                    continue
                await ws.send_bytes(frame)
                stats.items_sent += 1
                stats.bytes_sent += len(frame)
            else:
                await ws.send_str(frame)
        self._dropping = False  # the queue emptied: the episode is over
        self.drained.set()

    def wake(self) -> None:
        """Let `write_to` return even with nothing queued (the link is closing)."""
        self._wakeup.set()

    def clear(self) -> None:
        """Forget everything queued (the link is gone)."""
        self._frames.clear()
        self._bytes = self._item_bytes = 0
        self._item_times.clear()

    def _drop_item(self, size: int) -> None:
        self._stats.items_dropped += 1
        self._stats.bytes_dropped += size
        if not self._dropping:
            self._dropping = True
            log.warning("realtime items dropped: the host, or the link to it, takes them "
                        "slower than they are sent (more than %.1f s or %d bytes queued)",
                        self._max_item_wait_s, self._max_item_bytes)


class Peer:
    """A member's connection to one shared app on a webxdc-rt host."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 hello: wire.Hello, max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
                 max_pending_item_bytes: int = DEFAULT_MAX_PENDING_ITEM_BYTES,
                 max_item_wait_s: float = DEFAULT_MAX_ITEM_WAIT_S,
                 opened_ms: float | None = None) -> None:
        self._session = session
        self._ws = ws
        self.self_addr: str = hello.self_addr
        """This member's address in the app (`webxdc.selfAddr`)."""
        self.self_name: str = hello.self_name
        """This member's name (`webxdc.selfName`)."""
        self.limits: wire.HelloLimits = hello.limits
        """The realtime limits the host enforces on this peer, as its hello told them."""
        self.errors: deque[wire.ErrorMessage] = deque(maxlen=100)
        """The host's most recent error messages to this peer (`code` and `message`)."""
        self.stats = PeerStats()
        """What it sent, received and dropped."""
        self._queue = _SendQueue(self.stats, max_pending_bytes, max_pending_item_bytes,
                                 max_item_wait_s)
        window = hello.limits.receive_window_bytes
        self._report_every = max(MIN_REPORT_BYTES, window // 16) if window else 0
        self._read_bytes = 0
        self._reported_bytes = 0
        self._report_timer: asyncio.TimerHandle | None = None
        self._channel: RealtimeChannel | None = None
        age = hello.limits.max_item_age_ms
        self._clock = (None if hello.time_ms is None or opened_ms is None or not age
                       else wire.ItemClock(hello.time_ms, opened_ms, age))
        self._epoch = 0
        self._closed = False
        self._listen_counter = 0
        self._update_listener: tuple[int, Callable[[dict[str, Any]], object], int] | None = None
        self._backlog_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._request_counter = 0
        self._answers: dict[int, asyncio.Future[wire.ChatMessages]] = {}
        self._reader = asyncio.create_task(self._read_loop())
        self._writer = asyncio.create_task(self._write_loop())
        if self._report_every:  # from the first item on, the host may bound what it sends
            self._enqueue(wire.encode_received(0))

    @property
    def closed(self) -> bool:
        """Whether the link to the host is gone (closed by either side)."""
        return self._closed or self._ws.closed

    def join_realtime_channel(self) -> RealtimeChannel:
        """Join this app's realtime channel; RuntimeError if a channel is already joined."""
        if self._channel is not None:
            raise RuntimeError("already joined a realtime channel: leave() it first")
        if self.closed:
            raise RuntimeError("the peer is closed")
        self._epoch += 1
        self._channel = RealtimeChannel(self, self._epoch)
        self._enqueue(wire.encode_join(self._epoch, self._clock is not None))
        return self._channel

    # -- status updates and chat messages ----------------------------------------------

    def send_update(self, update: dict[str, Any], descr: str = "") -> None:
        """`webxdc.sendUpdate`: share app state with every member (this peer included).

        `update` needs a JSON-serialisable `payload`; `info`, `href`, `document`, `summary`
        and `notify` are optional. `descr` is deprecated by the spec and ignored. Raises
        ValueError for what is not strict JSON text (NaN, infinities, lone surrogates).
        """
        if not isinstance(update, dict) or "payload" not in update:
            raise TypeError("send_update expects a dict with a 'payload'")
        self._enqueue(wire.encode_update_send(update))

    async def set_update_listener(self, callback: Callable[[dict[str, Any]], object],
                                  serial: int = 0) -> None:
        """`webxdc.setUpdateListener`: call `callback(update)` for every update after
        `serial`, the stored ones first, then live ones. Returns once the stored ones were
        passed to `callback`. Replaces any earlier listener."""
        if not callable(callback):
            raise TypeError("set_update_listener expects a callable")
        self._listen_counter += 1
        listen = self._listen_counter
        self._update_listener = (listen, callback, serial)
        done = asyncio.get_running_loop().create_future()
        self._backlog_waiters.append((listen, done))
        self._enqueue(wire.encode_update_listen(listen, serial))
        await self._until(done)

    async def chat_messages(self, before: int | None = None) -> list[dict[str, Any]]:
        """The latest messages the chat's apps posted with `sendToChat` (oldest first):
        dicts with `id`, `member`, `text`, `file_name` and `file_base64`. The host answers
        a bounded page (by count and bytes); for older ones pass `before=` the first
        message's `id`; an empty list means there are none."""
        self._request_counter += 1
        request_id = self._request_counter
        answer: asyncio.Future[wire.ChatMessages] = asyncio.get_running_loop().create_future()
        self._answers[request_id] = answer
        self._enqueue(wire.encode_chat_messages_request(request_id, before))
        reply: wire.ChatMessages = await self._until(answer)
        return list(reply.messages)

    async def _until(self, future: asyncio.Future[Any]) -> Any:
        """Wait for an answer from the host, failing if the link ends first."""
        await asyncio.wait({future, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        if not future.done():
            raise ConnectionError("the link to the host closed before it answered")
        return future.result()

    async def drain(self) -> None:
        """Wait until every queued frame was handed to the connection; ConnectionError if
        the link ends first."""
        if self._queue.drained.is_set():
            return
        drained = asyncio.ensure_future(self._queue.drained.wait())
        try:
            done, _ = await asyncio.wait({drained, self._writer},
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
        if drained not in done:
            raise ConnectionError("the link to the host closed before everything was sent")

    async def close(self) -> None:
        """Leave, close the link and release its resources."""
        if self._channel is not None:
            self._channel._left = True
            self._channel._settled.set()
            self._channel = None
        self._closed = True
        if self._report_timer is not None:
            self._report_timer.cancel()
        self._writer.cancel()
        await self._ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        await self._session.close()

    async def __aenter__(self) -> Peer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- internals ---------------------------------------------------------------------

    def _channel_left(self, channel: RealtimeChannel) -> None:
        if self._channel is channel:
            self._channel = None
        if not self.closed:
            self._enqueue(wire.encode_leave())

    def _enqueue(self, frame: str | bytes) -> None:
        if self.closed:
            raise ConnectionError("the link to the host is closed")
        self._queue.put(frame)

    def _enqueue_item(self, payload: bytes) -> None:
        if self.closed:
            raise ConnectionError("the link to the host is closed")
        if self._clock is not None:
            payload = self._clock.stamp(payload, time.monotonic() * 1000)
        self._queue.put_item(payload)

    def _on_item(self, data: bytes) -> None:
        """One realtime item from the host: to the listener of the current join, if any,
        then counted as read for the host."""
        channel = self._channel
        # Items on their way before the current join took effect belong to nobody.
        clock = self._clock
        if clock is not None and not clock.fresh(data, time.monotonic() * 1000):
            self.stats.items_expired += 1  # older than the bound: dropped
        elif channel is not None and channel._acknowledged:
            channel._deliver(data if clock is None else data[wire.ITEM_HEADER_BYTES:])
        stats = self.stats
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
        self._queue.put_first(wire.encode_received(self._read_bytes))

    async def _write_loop(self) -> None:
        try:
            while not self.closed:
                await self._queue.write_to(self._ws)
        except ConnectionError as exc:
            log.info("link to the host lost while writing: %s", exc)
        finally:
            self._closed = True
            self._queue.clear()

    def _on_update(self, message: wire.Update) -> None:
        listener = self._update_listener
        if listener is None or message.listen != listener[0]:
            return  # meant for a listener that was replaced
        listen, callback, last_serial = listener
        if message.serial <= last_serial:
            return
        self._update_listener = (listen, callback, message.serial)
        try:
            callback(message.update)
        except Exception:
            log.exception("update listener raised; the update is skipped")

    def _on_backlog_done(self, listen: int) -> None:
        # A replaced listener's backlog may never finish: its waiter is done with the newer.
        for waiting_listen, done in self._backlog_waiters:
            if waiting_listen <= listen and not done.done():
                done.set_result(None)
        self._backlog_waiters = [w for w in self._backlog_waiters if w[0] > listen]

    def _on_joined(self, epoch: int) -> None:
        channel = self._channel
        if channel is not None and channel.epoch == epoch:
            channel._acknowledge()

    async def _read_loop(self) -> None:
        async for msg in self._ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                self._on_item(msg.data)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                self._on_text(msg.data)
        self._closed = True
        self._queue.wake()

    def _on_text(self, text: str) -> None:
        """One control frame from the host. A bad one is logged and dropped; the link and
        everything else carry on."""
        try:
            message = wire.decode_host_message(text)
        except wire.WireError as exc:
            log.warning("ignoring a malformed frame from the host (%s): %s", exc.code, exc)
            return
        try:
            self._on_control(message)
        except Exception:
            log.exception("ignoring a %s frame from the host that could not be handled",
                          type(message).__name__)

    def _on_control(self, message: wire.HostMessage) -> None:
        match message:
            case wire.Joined(epoch=epoch):
                self._on_joined(epoch)
            case wire.Update():
                self._on_update(message)
            case wire.UpdateBacklogDone(listen=listen):
                self._on_backlog_done(listen)
            case wire.ChatMessages(id=request_id):
                answer = self._answers.pop(request_id, None)
                if answer is not None and not answer.done():
                    answer.set_result(message)
            case wire.ErrorMessage(code=code, message=text):
                self.errors.append(message)
                log.warning("error from the host: %s (%s)", text, code)
            case wire.UnknownHostMessage(type=kind):
                log.debug("ignoring a host message of a type this version does not know: %r",
                          kind)
            case _:
                pass  # a second hello, or a reply to a request this peer does not make


async def connect(url: str, *, timeout: float = 10.0,
                  max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
                  max_pending_item_bytes: int = DEFAULT_MAX_PENDING_ITEM_BYTES,
                  max_item_wait_s: float = DEFAULT_MAX_ITEM_WAIT_S) -> Peer:
    """Connect to a webxdc-rt host with an invite link and return the member's peer.
    `max_pending_bytes` bounds what it queues for the host in all (BufferError beyond),
    `max_pending_item_bytes` the realtime items in it, and `max_item_wait_s` how long one
    may wait there (dropped beyond either).

    Raises InviteRefused when the host does not accept the link, ValueError when `url` is
    not an invite link, and ConnectionError / TimeoutError when the host is unreachable.
    """
    ws_url, host_header, token = _socket_target(url)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=timeout))
    try:
        ws = await session.ws_connect(
            ws_url, headers={"Host": host_header, "Authorization": f"Bearer {token}"},
            max_msg_size=0, autoping=True, heartbeat=30.0, compress=0)
        # The hello follows the upgrade's answer: the host's clock then is ours now.
        opened_ms = time.monotonic() * 1000
        hello = await _receive_hello(ws, timeout)
    except aiohttp.WSServerHandshakeError as exc:
        await session.close()
        if exc.status in (401, 403, 404):
            raise InviteRefused(f"the host refused this invite link ({exc.status})") from None
        raise ConnectionError(f"WebSocket handshake failed: {exc.status} {exc.message}") from None
    except aiohttp.ClientConnectionError as exc:
        await session.close()
        raise ConnectionError(f"cannot reach the host at {url}: {exc}") from None
    except BaseException:
        await session.close()
        raise
    return Peer(session, ws, hello, max_pending_bytes, max_pending_item_bytes,
                max_item_wait_s, opened_ms)


def _socket_target(url: str) -> tuple[str, str, str]:
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
