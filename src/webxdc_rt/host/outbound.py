"""The way out to one connection: frames for it are gathered during one turn of the event
loop and written with one `writelines` (one `writev` on uvloop) at the end of the turn, or
as soon as the sender's read has been handed over (`WriteBatcher.hold`).

Two classes of frames take two ways. Control frames, status updates and chat messages are
never dropped: they are written at once, and a connection with more than `limit` bytes of
them unsent is cut off. Realtime items are written while the socket has room
(`DeliveryLimits.socket_buffer_bytes`); beyond that they wait in the connection's
`delivery.ItemQueue`, which drops the stale and the crowded-out (fairly, by sender), and a
pump moves them to the socket as it drains. A receiver that reports what it has read also
waits while its `delivery.ReceiveWindow` is full, and the pump drops what would reach it
stale. So a slow receiver loses realtime items, counted and logged once per episode, and
keeps its link. A receiver that takes no byte at all for `DeliveryLimits.stall_timeout_s`
while bytes wait for it is dropped (it holds its page's backlog slots and its buffers, and
would not take a close frame either).

Gathering matters under load: aiohttp hands over every message that one read brought in
without yielding, so a sender's burst of K items costs each receiver one system call
instead of K. At low rates each turn carries one item and nothing is delayed beyond the
turn. Control frames (`send_text`) flush what was gathered first, so the order on the wire
is the order of the calls. So does a realtime item that would not fit the socket's room
beside what was gathered: the kernel takes at once what it can of that, and the item waits
only if there is still no room (a burst of large items otherwise waits, and is moved a turn
later by the pump, though the kernel had room for it all along).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import WSCloseCode, web
from aiohttp.abc import AbstractStreamWriter

from ..core.delivery import DropCount, ItemQueue, ReceiveWindow
from ..core.fanout import Published
from ..core.frames import Frame, text_frame_size
from ..core.limits import DeliveryLimits

__all__ = ["Outbound", "WriteBatcher"]

log = logging.getLogger(__name__)

# The event loop keeps only weak references to tasks: a close in progress is held here until
# it is done, so that it cannot be garbage-collected half-way once its Outbound is dropped.
_closing_tasks: set[asyncio.Task[None]] = set()


class WriteBatcher:
    """Flushes every `Outbound` that gathered frames, once per turn of the event loop, or
    sooner: when the reader of a socket `hold`s it while it hands over what one read
    brought in, and `release`s it once nothing more is buffered, which writes then. A
    steady sender's items thus go out in the turn that read them, with no callback for
    the next turn (and no second `epoll_wait` for each item)."""

    __slots__ = ("_loop", "dirty", "_scheduled", "held", "direct")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.dirty: list[Outbound] = []
        """The outbounds that gathered frames since the last flush."""
        self._scheduled = False
        self.held = False
        """Whether a reader is handing over what one read brought in (`hold`)."""
        self.direct = False
        """Whether what is handed over now is the last of its read (set with `held`): a
        connection with nothing gathered is written to at once, as the `release` that
        follows would, without gathering it first."""

    def mark(self, outbound: Outbound) -> None:
        """`outbound` gathered its first frame of this turn (while held, `Outbound.deliver`
        appends to `dirty` itself: it runs once per delivery)."""
        self.dirty.append(outbound)
        if not self._scheduled and not self.held:
            self._scheduled = True
            self._loop.call_soon(self._flush_all)

    def hold(self) -> None:
        """Gather without scheduling a flush, until `release` (called before the holder
        yields to the event loop: nothing else runs in between)."""
        self.held = True

    def release(self) -> None:
        """Write what was gathered while held, now."""
        self.held = False
        if self.dirty:
            self._flush_all()

    def _flush_all(self) -> None:
        dirty, self.dirty = self.dirty, []
        self._scheduled = False
        for outbound in dirty:
            outbound.flush()


class Outbound:
    """Where deliveries to one connection go: gathered, then written; realtime items held
    and dropped when the socket is full (see the module docstring).

    A receiver with more than `limit` bytes of frames that are never dropped unsent is cut
    off: it leaves the channel at once (`on_cut`), is sent a close frame saying why, and is
    dropped if it has not gone within `close_grace_s`, so a stalled reader holds at most
    `limit` bytes for a while.
    """

    __slots__ = ("ws", "transport", "limit", "close_grace_s", "on_cut", "cut", "name",
                 "items", "window", "_batcher", "_writer", "_room", "_pending",
                 "_pending_size", "_written", "_reported", "_pump", "_episode_counts",
                 "_stall_s", "_handed", "_taken_seen", "_progress_at", "_watch")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, limit: int,
                 close_grace_s: float, batcher: WriteBatcher, writer: AbstractStreamWriter,
                 delivery: DeliveryLimits, name: str = "a connection",
                 shared_drops: tuple[DropCount, ...] = ()) -> None:
        self.ws = ws
        self.transport = transport
        self.limit = limit
        self.close_grace_s = close_grace_s
        self.on_cut: Callable[[], None] | None = None
        self.cut = False
        self.name = name
        """Who this is, for the log."""
        self.items = ItemQueue(delivery, shared_drops)
        """Realtime items waiting for room in the socket; `items.counts` are the drops."""
        self.window = ReceiveWindow(delivery)
        """What is in flight to the receiver, once it reports what it read."""
        self._batcher = batcher
        self._writer = writer
        self._room = delivery.socket_buffer_bytes
        self._pending: list[bytes | memoryview] = []
        self._pending_size = 0
        self._written = 0  # realtime bytes sent so far, as the receiver counts them
        self._reported = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._episode_counts = DropCount()
        # The transport pauses its writer above `socket_buffer_bytes`, so that draining
        # the writer is the signal that realtime items fit again.
        transport.set_write_buffer_limits(high=self._room)
        # What the socket took is what was handed to the transport less what it still
        # holds; what it held before (the handshake's answer) counts as handed.
        self._stall_s = delivery.stall_timeout_s
        self._handed = transport.get_write_buffer_size()
        self._taken_seen = 0
        loop = asyncio.get_running_loop()
        self._progress_at = loop.time()
        self._watch = loop.call_later(self._stall_s / 4, self._check_stall)

    def deliver(self, parts: Frame, size: int, item: Published) -> None:
        """Send one realtime item, as buffers of `size` bytes in all, at the end of this
        turn (or of the read it came in: at once if it is the last, `WriteBatcher.direct`)
        if the socket has room and nothing waits; else it waits (and may be dropped).
        Of the ways a connection can be closing only `cut` is looked at here: the frame of
        one that is closing otherwise is gathered and then dropped by `flush` (this runs
        once per delivery, `closing` once per write)."""
        if self.cut:
            return
        window, transport = self.window, self.transport
        # Frames are never empty, so waiting bytes are 0 exactly when nothing waits. The
        # window test is `window.full(self._written)` inlined: this runs once per delivery.
        if (self.items.waiting_bytes
                or (window.reporting and self._written - window.read >= window.limit)
                or (transport.get_write_buffer_size() + self._pending_size + size > self._room
                    and not self._fits_once_written(size))):
            self._wait(parts, size, item)
            return
        self._written += size
        if not self._pending:
            batcher = self._batcher
            if batcher.direct:  # what `flush` would write at the `release` right after
                if not (self.ws.closed or transport.is_closing()):
                    transport.writelines(parts)
                    self._handed += size
                return
            if batcher.held:  # `batcher.mark`'s case of a held batcher, inlined
                batcher.dirty.append(self)
            else:
                batcher.mark(self)
        self._pending.extend(parts)
        self._pending_size += size

    def _fits_once_written(self, size: int) -> bool:
        """Whether `size` more bytes fit the socket's room once what is gathered is written
        now: the kernel takes what it can of it at once, and what it takes no longer counts
        against the room. (A burst of large items would otherwise wait behind what one read
        gathered, and be moved by the pump a turn later, when the kernel has taken it.)"""
        if not self._pending:
            return False
        self.flush()
        return self.transport.get_write_buffer_size() + size <= self._room

    def write(self, parts: tuple[bytes, ...], size: int) -> None:
        """Send one frame that must not be dropped, as buffers of `size` bytes in all, at
        the end of this turn; or cut the receiver off if that would leave more than `limit`
        bytes unsent."""
        if self.closing:
            return
        if self.transport.get_write_buffer_size() + self._pending_size + size > self.limit:
            self.cut_off()
            return
        if not self._pending:
            self._batcher.mark(self)
        self._pending.extend(parts)
        self._pending_size += size

    @property
    def in_flight_bytes(self) -> int:
        """Realtime bytes sent that the receiver has not reported read (all of them if it
        does not report)."""
        return self._written - self.window.read

    def report(self, total: int, now: float) -> None:
        """The receiver says it has read `total` realtime bytes (`wire.Received`)."""
        if self.window.report(total, self._written, now, self.items.waiting_bytes > 0):
            self._reported.set()

    def finish(self) -> None:
        """The connection is over: forget what waits, and end the pump and the watch."""
        self.items.clear()
        self._reported.set()
        self._watch.cancel()

    def discard_items(self) -> None:
        """Forget the realtime items waiting: the connection left its channel (R15), and
        if it joins again they must not reach its new join (R12)."""
        self.items.clear()

    def flush(self) -> None:
        """Write what was gathered, now; nothing once a close frame may have gone out."""
        pending, size = self._pending, self._pending_size
        if not pending:
            return
        self._pending = []
        self._pending_size = 0
        # `ws.closed` turns true before aiohttp writes its close frame, whoever closes.
        # (`closing`, inlined: this runs once per write.)
        if not (self.cut or self.ws.closed or self.transport.is_closing()):
            self.transport.writelines(pending)
            self._handed += size

    @property
    def closing(self) -> bool:
        """Whether nothing more can be written: cut off, closed, or closing."""
        return self.cut or self.ws.closed or self.transport.is_closing()

    async def send_text(self, text: str) -> None:
        """Send a control frame after everything written before it; ConnectionResetError
        once the connection is closing, so that no work is done for a link that is gone."""
        if self.closing:
            raise ConnectionResetError("the connection is closing")
        self.flush()
        self._handed += text_frame_size(text)
        await self.ws.send_str(text)

    async def close(self, code: int, reason: str) -> None:
        """Close the connection after everything written before."""
        self.flush()
        await self.ws.close(code=code, message=reason.encode())

    def cut_off(self) -> None:
        """Disconnect a receiver that does not keep up, with a reason it can read."""
        self._cut()
        task = asyncio.create_task(self._close_slow())
        _closing_tasks.add(task)
        task.add_done_callback(_closing_tasks.discard)

    def _cut(self) -> None:
        self.cut = True
        self._pending = []
        self._pending_size = 0
        self.finish()
        if self.on_cut is not None:
            self.on_cut()

    def _check_stall(self) -> None:
        """Drop the connection if its socket has taken no byte for `stall_timeout_s` while
        bytes wait for it; else look again in a quarter of that."""
        if self.closing:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting = self.transport.get_write_buffer_size()
        taken = self._handed - waiting
        if not waiting or taken > self._taken_seen:
            self._taken_seen = taken
            self._progress_at = now
        elif now - self._progress_at >= self._stall_s:
            log.info("%s took no byte in %.1f s with %d bytes waiting for it: dropped",
                     self.name, now - self._progress_at, waiting)
            self._cut()
            self.transport.abort()
            return
        self._watch = loop.call_later(self._stall_s / 4, self._check_stall)

    # -- realtime items that wait ------------------------------------------------------

    def _wait(self, parts: Frame, size: int, item: Published) -> None:
        items = self.items
        if items.episode_started is None:
            self._episode_counts = items.counts.copy()
        items.offer((item.origin, item.sender), parts, size, time.monotonic())
        if self._pump is None:
            self._pump = asyncio.create_task(self._move_waiting())

    async def _move_waiting(self) -> None:
        """Move waiting items to the socket whenever it drains and the receiver's window
        has room, until none waits."""
        items, transport, window = self.items, self.transport, self.window
        try:
            while items.waiting_bytes and not self.closing:
                if window.full(self._written):
                    self._reported.clear()
                    await self._reported.wait()
                    continue
                await self._writer.drain()
                if self.closing:
                    break
                now = time.monotonic()
                # Nothing below writes, waits or closes until `flush`: what is looked at
                # once here holds for the whole loop, which runs once per item moved.
                pending, size, written = self._pending, self._pending_size, self._written
                room = self._room - transport.get_write_buffer_size()
                # `<=`: while the writer is not paused (not over the room) at least one
                # item moves, so this loop never spins without waiting. `window.full` and
                # `window.delay` inlined.
                while size <= room and not (window.reporting
                                            and written - window.read >= window.limit):
                    # Dropped unless it can reach the receiver in time, by its rate.
                    taken = items.take(now + window.delay(written) if window.reporting
                                       else now)
                    if taken is None:
                        break
                    pending.extend(taken[0])
                    size += taken[1]
                    written += taken[1]
                self._pending_size, self._written = size, written
                self.flush()
        except ConnectionError:
            pass
        finally:
            self._pump = None
            if self.closing:
                items.clear()
            self._end_episode()

    def _end_episode(self) -> None:
        started = self.items.end_episode()
        if started is None:
            return
        before, now = self._episode_counts, self.items.counts
        if now.items == before.items:
            return
        log.warning("%s did not keep up: %d realtime items (%d bytes) dropped for it over "
                    "%.1f s (%d stale, %d crowded out)", self.name, now.items - before.items,
                    now.bytes - before.bytes, time.monotonic() - started,
                    now.stale - before.stale, now.crowded - before.crowded)

    async def _close_slow(self) -> None:
        reason = f"too slow: over {self.limit} bytes waiting to be sent".encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.close_grace_s
        try:
            await asyncio.wait_for(
                self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason),
                self.close_grace_s)
        except (TimeoutError, ConnectionError):
            self.transport.abort()
            return
        # The close frame may still wait behind what the socket holds: the link has what is
        # left of the grace to take it, then it is dropped (a no-op once it is closed).
        loop.call_at(deadline, self.transport.abort)
