"""Status updates and chat messages on a live host: stored first, then sent to the sockets.

Each socket may run one update listener at a time (the page's `setUpdateListener`). Starting
one streams the backlog after the requested serial in chunks, then registers the listener
for live updates with no await between the last (empty) backlog query and the registration,
so no update is skipped or sent twice. Every frame names its listener, so a page that
replaces its listener can tell old frames from new ones.

Memory stays bounded whoever asks: a backlog is loaded in chunks of at most
`backlog_chunk_bytes` and written with backpressure (the next update is written only once
the socket took the previous ones), at most `max_backlogs_per_page` backlogs of a page
stream at once, and every rate (updates, listeners, backlog bytes, chat messages) and the
bytes of chat messages stored are counted per member page (`budget.PageBudget`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

from . import wire
from .budget import PageBudget
from .chats import Page
from .frames import encode_text_frame
from .store import Store
from .updates import UpdateError, UpdateLimits, delivered_json, validate_update

__all__ = ["ChatLimits", "UpdateFeed", "FeedSocket"]

log = logging.getLogger(__name__)

Refusal = tuple[str, str]
"""(code, message) of a request that was refused."""


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Limits on `sendToChat`, with defaults; rates and quotas are per member page."""

    max_text_chars: int = 100_000
    """Longest text of one message."""
    max_file_bytes: int = 256 * 1024
    """Largest file of one message, decoded."""
    max_listed: int = 50
    """Most messages returned to one chat-messages request."""
    max_listed_bytes: int = 1024 * 1024
    """Most bytes of text and files returned to one chat-messages request (at least one
    message); older messages are asked for with `before`."""
    messages_per_s: float = 1.0
    """Messages one page may post per second, sustained."""
    messages_burst: int = 20
    """Messages one page may post at once before the rate applies."""
    max_stored_bytes: int = 16 * 1024 * 1024
    """Bytes of text and files one page may have stored in its chat in all."""

    def __post_init__(self) -> None:
        for limit in fields(self):
            value = getattr(self, limit.name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{limit.name} must be a positive number, got {value}")


class FrameSink(Protocol):
    """The way out to one socket (see outbound.Outbound)."""

    def write(self, parts: tuple[bytes, ...], size: int) -> None:
        """Send a pre-encoded frame, bounded."""

    async def send_text(self, text: str) -> None:
        """Send a text frame after everything written before it."""


@dataclass(slots=True, eq=False)
class FeedSocket:
    """What the feed knows of one socket: its page, where to write, its page's budget."""

    page: Page
    sink: FrameSink
    budget: PageBudget
    listen: int = -1
    """The socket's current update listener (-1: none)."""


class UpdateFeed:
    """The host's status updates and chat messages."""

    def __init__(self, store: Store, limits: UpdateLimits, chat_limits: ChatLimits,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.limits = limits
        self.chat_limits = chat_limits
        self._clock = clock
        self._listeners: dict[str, set[FeedSocket]] = {}
        self._backlog_slots: dict[str, asyncio.Semaphore] = {}

    def new_socket(self, page: Page, sink: FrameSink, budget: PageBudget) -> FeedSocket:
        """Track a new socket of `page`, spending from `budget` (the page's); it listens
        to nothing yet."""
        return FeedSocket(page, sink, budget)

    def forget(self, sock: FeedSocket) -> None:
        """The socket ended: stop sending it updates."""
        listeners = self._listeners.get(sock.page.app.id)
        if listeners is not None:
            listeners.discard(sock)
            if not listeners:
                del self._listeners[sock.page.app.id]

    # -- updates -----------------------------------------------------------------------

    def send_update(self, sock: FeedSocket, raw_update: Any) -> Refusal | None:
        """Store an update from `sock`, then send it to every listener of the app copy,
        the sender's own included. Returns (code, message) if it was refused."""
        try:
            update = validate_update(raw_update, self.limits)
        except UpdateError as exc:
            return exc.code, str(exc)
        if not sock.budget.updates.try_take(1, self._clock()):
            return ("update-rate", f"updates sent faster than one per "
                    f"{self.limits.interval_ms} ms (after a burst of {self.limits.burst}): "
                    "this one was refused")
        app_id = sock.page.app.id
        try:
            serial = self.store.append_update(app_id, sock.page.member.id, update)
        except sqlite3.Error as exc:
            log.error("storing an update failed: %s", exc)
            return "storage-failed", "the host could not store this update; it was not sent"
        update_json = delivered_json(update, serial, serial)
        for listener in tuple(self._listeners.get(app_id, ())):
            frame = encode_text_frame(wire.encode_update(listener.listen, update_json))
            listener.sink.write((frame,), len(frame))
        return None

    async def listen(self, sock: FeedSocket, listen: int, after_serial: int) -> None:
        """(Re)start the socket's update listener: the backlog, then live updates. A page
        that starts listeners faster than its budget allows is made to wait (paced), so
        a page reloading in a loop costs the host a bounded rate of replays."""
        limits = self.limits
        wait = sock.budget.listens.charge(1, self._clock())
        if wait > 0:
            await asyncio.sleep(wait)
        self.forget(sock)
        sock.listen = listen
        # Kept per page for the host's lifetime, like the page's budget: a few hundred
        # bytes per page that was ever used.
        slots = self._backlog_slots.get(sock.page.label)
        if slots is None:
            slots = asyncio.Semaphore(limits.max_backlogs_per_page)
            self._backlog_slots[sock.page.label] = slots
        async with slots:
            await self._replay(sock, listen, after_serial)

    async def _replay(self, sock: FeedSocket, listen: int, after_serial: int) -> None:
        app_id = sock.page.app.id
        store, limits, budget = self.store, self.limits, sock.budget
        last = after_serial
        while True:
            count = store.backlog_chunk(app_id, last, limits.backlog_chunk_bytes)
            if not count:
                break
            backlog = store.updates_after(app_id, last, count)
            max_serial = store.max_serial(app_id)
            for stored in backlog:
                text = wire.encode_update(
                    listen, delivered_json(stored.update, stored.serial, max_serial))
                # Awaiting the write is the backpressure: a socket that does not read
                # holds up its own backlog, never the host's memory.
                await sock.sink.send_text(text)
                last = stored.serial
                wait = budget.backlog.charge(len(text), self._clock())
                if wait > 0:
                    await asyncio.sleep(wait)
            del backlog
        self._listeners.setdefault(app_id, set()).add(sock)
        await sock.sink.send_text(wire.encode_backlog_done(listen))

    # -- chat messages -----------------------------------------------------------------

    def send_to_chat(self, sock: FeedSocket, request: wire.SendToChat) -> Refusal | None:
        """Record a message the app posts to its chat; (code, message) if refused."""
        limits = self.chat_limits
        if request.text is None and request.file_name is None:
            return "bad-message", "sendToChat needs a file, a text, or both"
        if request.text is not None and len(request.text) > limits.max_text_chars:
            return "bad-message", f"text longer than {limits.max_text_chars} characters"
        data = None
        if request.file_base64 is not None:
            try:
                data = base64.b64decode(request.file_base64, validate=True)
            except (binascii.Error, ValueError):
                return "bad-message", "file data is not valid base64"
            if len(data) > limits.max_file_bytes:
                return ("message-too-large", f"file of {len(data)} bytes is over the limit "
                        f"of {limits.max_file_bytes} bytes")
        page, budget = sock.page, sock.budget
        size = len((request.text or "").encode()) + len(data or b"")
        try:
            if budget.chat_stored_bytes is None:
                budget.chat_stored_bytes = self.store.chat_bytes(page.app.id, page.member.name)
            if budget.chat_stored_bytes + size > limits.max_stored_bytes:
                return ("chat-quota", f"this page has stored {budget.chat_stored_bytes} bytes "
                        f"of chat messages; the limit is {limits.max_stored_bytes} bytes")
            if not budget.chat.try_take(1, self._clock()):
                return ("chat-rate", f"messages posted faster than {limits.messages_per_s:g} "
                        f"per second (after {limits.messages_burst} at once): this one was "
                        "refused")
            self.store.add_chat_message(page.app.chat_id, page.app.id, page.member.name,
                                        request.text, request.file_name, data)
        except sqlite3.Error as exc:
            log.error("storing a chat message failed: %s", exc)
            return "storage-failed", "the host could not record this message"
        budget.chat_stored_bytes += size
        return None

    def chat_messages(self, sock: FeedSocket,
                      before: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """The latest messages apps posted to the socket's chat (older than the message id
        `before`, if given), oldest first and bounded in count and bytes; and whether older
        ones remain."""
        limits = self.chat_limits
        messages, more = self.store.chat_messages(sock.page.app.chat_id, limits.max_listed,
                                                  before, limits.max_listed_bytes)
        return [{
            "id": message.id, "app_id": message.app_id, "member": message.member,
            "text": message.text, "file_name": message.file_name,
            "file_base64": (None if message.file_data is None
                            else base64.b64encode(message.file_data).decode()),
        } for message in messages], more
