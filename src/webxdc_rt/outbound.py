"""The way out to one connection: frames for it are gathered during one turn of the event
loop and written with one `writelines` (one `writev` on uvloop) at the end of the turn,
bounded by the bytes it may have unsent.

Gathering matters under load: aiohttp hands over every message that one read brought in
without yielding, so a sender's burst of K items costs each receiver one system call
instead of K. At low rates each turn carries one item and nothing is delayed beyond the
turn. Control frames (`send_text`) flush what was gathered first, so the order on the wire
is the order of the calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import WSCloseCode, web

__all__ = ["Outbound", "WriteBatcher"]

# The event loop keeps only weak references to tasks: a close in progress is held here until
# it is done, so that it cannot be garbage-collected half-way once its Outbound is dropped.
_closing_tasks: set[asyncio.Task[None]] = set()


class WriteBatcher:
    """Flushes every `Outbound` that gathered frames, once per turn of the event loop."""

    __slots__ = ("_loop", "_dirty", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Outbound] = []
        self._scheduled = False

    def mark(self, outbound: Outbound) -> None:
        """`outbound` gathered its first frame of this turn."""
        self._dirty.append(outbound)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_all)

    def _flush_all(self) -> None:
        dirty, self._dirty = self._dirty, []
        self._scheduled = False
        for outbound in dirty:
            outbound.flush()


class Outbound:
    """Where deliveries to one connection go: gathered, then written, bounded.

    A receiver with more than `limit` bytes unsent is cut off: it leaves the channel at
    once (`on_cut`), is sent a close frame saying why, and is dropped if it has not gone
    within `close_grace_s`, so a stalled reader holds at most `limit` bytes for a while.
    """

    __slots__ = ("ws", "transport", "limit", "close_grace_s", "on_cut", "cut", "_batcher",
                 "_pending", "_pending_size")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, limit: int,
                 close_grace_s: float, batcher: WriteBatcher) -> None:
        self.ws = ws
        self.transport = transport
        self.limit = limit
        self.close_grace_s = close_grace_s
        self.on_cut: Callable[[], None] | None = None
        self.cut = False
        self._batcher = batcher
        self._pending: list[bytes] = []
        self._pending_size = 0

    def write(self, parts: tuple[bytes, ...], size: int) -> None:
        """Send one frame, given as buffers of `size` bytes in all, at the end of this turn;
        or cut the receiver off if that would leave more than `limit` bytes unsent."""
        if self.closing:
            return
        if self.transport.get_write_buffer_size() + self._pending_size + size > self.limit:
            self.cut_off()
            return
        if not self._pending:
            self._batcher.mark(self)
        self._pending.extend(parts)
        self._pending_size += size

    def flush(self) -> None:
        """Write what was gathered, now; nothing once a close frame may have gone out."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_size = 0
        # `ws.closed` turns true before aiohttp writes its close frame, whoever closes.
        if not self.closing:
            self.transport.writelines(pending)

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
        await self.ws.send_str(text)

    async def close(self, code: int, reason: str) -> None:
        """Close the connection after everything written before."""
        self.flush()
        await self.ws.close(code=code, message=reason.encode())

    def cut_off(self) -> None:
        """Disconnect a receiver that does not keep up, with a reason it can read."""
        self.cut = True
        self._pending = []
        self._pending_size = 0
        if self.on_cut is not None:
            self.on_cut()
        task = asyncio.create_task(self._close_slow())
        _closing_tasks.add(task)
        task.add_done_callback(_closing_tasks.discard)

    async def _close_slow(self) -> None:
        reason = f"too slow: over {self.limit} bytes waiting to be sent".encode()
        try:
            await asyncio.wait_for(
                self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason),
                self.close_grace_s)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self.transport.abort()
