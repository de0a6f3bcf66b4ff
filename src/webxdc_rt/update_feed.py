"""Status updates and chat messages on a live host: stored first, then sent to the sockets.

Each socket may run one update listener at a time (the page's `setUpdateListener`). Starting
one streams the backlog after the requested serial in chunks, then registers the listener
for live updates with no await between the last (empty) backlog query and the registration,
so no update is skipped or sent twice. Every frame names its listener, so a page that
replaces its listener can tell old frames from new ones.
"""

from __future__ import annotations

import base64
import binascii
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import wire
from .chats import Page
from .frames import encode_text_frame
from .store import Store
from .updates import TokenBucket, UpdateError, UpdateLimits, delivered_json, validate_update

__all__ = ["ChatLimits", "UpdateFeed", "FeedSocket"]

log = logging.getLogger(__name__)

BACKLOG_CHUNK = 200  # updates per backlog query; the socket is drained between chunks


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Limits on `sendToChat`, with defaults."""

    max_text_chars: int = 100_000
    """Longest text of one message."""
    max_file_bytes: int = 256 * 1024
    """Largest file of one message, decoded."""
    max_listed: int = 50
    """Most recent messages returned to a chat-messages request."""


class FrameSink(Protocol):
    """The way out to one socket (see outbound.Outbound)."""

    def write(self, parts: tuple[bytes, ...], size: int) -> None:
        """Send a pre-encoded frame, bounded."""

    async def send_text(self, text: str) -> None:
        """Send a text frame after everything written before it."""


@dataclass(slots=True, eq=False)
class FeedSocket:
    """What the feed knows of one socket: its page, where to write, its update budget."""

    page: Page
    sink: FrameSink
    budget: TokenBucket
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

    def new_socket(self, page: Page, sink: FrameSink) -> FeedSocket:
        """Track a new socket of `page`; it listens to nothing yet."""
        limits = self.limits
        budget = TokenBucket(1000.0 / limits.interval_ms, limits.burst, self._clock())
        return FeedSocket(page, sink, budget)

    def forget(self, sock: FeedSocket) -> None:
        """The socket ended: stop sending it updates."""
        listeners = self._listeners.get(sock.page.app.id)
        if listeners is not None:
            listeners.discard(sock)
            if not listeners:
                del self._listeners[sock.page.app.id]

    # -- updates -----------------------------------------------------------------------

    def send_update(self, sock: FeedSocket, raw_update: Any) -> tuple[str, str] | None:
        """Store an update from `sock`, then send it to every listener of the app copy,
        the sender's own included. Returns (code, message) if it was refused."""
        try:
            update = validate_update(raw_update, self.limits)
        except UpdateError as exc:
            return exc.code, str(exc)
        if not sock.budget.try_take(1, self._clock()):
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
        """(Re)start the socket's update listener: the backlog, then live updates."""
        self.forget(sock)
        sock.listen = listen
        app_id = sock.page.app.id
        last = after_serial
        while True:
            backlog = self.store.updates_after(app_id, last, BACKLOG_CHUNK)
            if not backlog:
                break
            max_serial = self.store.max_serial(app_id)
            for stored in backlog:
                await sock.sink.send_text(wire.encode_update(
                    listen, delivered_json(stored.update, stored.serial, max_serial)))
                last = stored.serial
        self._listeners.setdefault(app_id, set()).add(sock)
        await sock.sink.send_text(wire.encode_backlog_done(listen))

    # -- chat messages -----------------------------------------------------------------

    def send_to_chat(self, sock: FeedSocket, request: wire.SendToChat) -> tuple[str, str] | None:
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
        page = sock.page
        try:
            self.store.add_chat_message(page.app.chat_id, page.app.id, page.member.name,
                                        request.text, request.file_name, data)
        except sqlite3.Error as exc:
            log.error("storing a chat message failed: %s", exc)
            return "storage-failed", "the host could not record this message"
        return None

    def chat_messages(self, sock: FeedSocket) -> list[dict[str, Any]]:
        """The latest messages apps posted to the socket's chat."""
        chat_id = sock.page.app.chat_id
        return [{
            "id": message.id, "app_id": message.app_id, "member": message.member,
            "text": message.text, "file_name": message.file_name,
            "file_base64": (None if message.file_data is None
                            else base64.b64encode(message.file_data).decode()),
        } for message in self.store.chat_messages(chat_id, self.chat_limits.max_listed)]
