"""Status updates and chat messages on a live host, the I/O half: stored first, then sent to
the sockets. What is valid and what a page may send is decided before, by the session and
the rules (`core.session`, `core.updates`, `core.messages`); storage itself is the store's
(`stores`).

Updates and chat messages are committed off the event loop, in groups (`stores.commits`): a
socket's updates wait for their commit in a window (`updates.max_in_flight_per_socket`; the
session says when the socket must wait for the oldest), a chat message's socket waits for
its commit, and the others go on. Once the commit is durable, the store tells the feed of
each update in serial order, and the feed sends it to the listeners then: so nothing is
sent that is not stored, and every listener sees one order, the serial order. A store with
more writes waiting than `store.max_waiting_writes` refuses at once (`storage-busy`).

Each socket may run one update listener at a time (the page's `setUpdateListener`). Starting
one streams the backlog after the requested serial in chunks, read off the event loop
(`StoreApi.read_updates`), then registers the listener for live updates, so that no update
is skipped or sent twice although the reads await:
- with a store that is not shared, a read shows exactly the updates up to the highest serial
  told to the listeners when it was asked for (`UpdateChunk.newest`), and an update is told
  to the listeners registered at the moment it becomes readable, in the same step. So once a
  read finds nothing new, the listener is registered with no await only if no update was
  told while that read ran (the store's highest serial is still `newest`); if one was, the
  backlog reads on. Updates become readable a group at a time, one group per commit (an
  fsync, milliseconds), and a read of the few rows told meanwhile takes far less, so this
  ends at the first or second empty read even under a flood of updates.
- with a shared store, the listener is registered after the first empty read as having
  what it was sent (`delivered`), and a read-back of its app copy starts at once: it reads
  whatever was committed since, and every listener is sent only the updates above what it
  has.
Every frame names its listener, so a page that replaces its listener can tell old frames
from new ones.

Memory stays bounded whoever asks: a backlog is loaded in chunks of at most
`backlog_chunk_bytes` and written with backpressure (the next update is written only once
the socket took the previous ones), at most `max_backlogs_per_page` backlogs of a page
stream at once, and the bytes replayed are paced by the page's budget.

With a store shared by several processes (`store.shared`), updates reach this process's
pages as read back from the store in serial order: after this process stores one, and when
the store announces one stored elsewhere (`appended`), the feed reads the rows above the
lowest serial its listeners of that app copy have and sends each listener those it lacks.
One read-back runs per app copy at a time, off the event loop; what is appended while it
reads only makes it read on, so a flood of updates costs a read per chunk, not one per
update. So a page receives every update once, in serial order, whichever process stored
it. What a page is told of the updates it sent (stored, or a failure) comes in the order it
sent them either way; but where a store that is not shared sends the listeners each update
as its commit ends, after the failures of the commits before it were told, a shared store's
updates are read back beside those answers: the two come each in its own order, not in
one order with each other. The store announces only the app copies this process has listeners of
(`StoreApi.watch`, taken before a listener's backlog is read, so that nothing committed
meanwhile is missed).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..core import wire
from ..core.budget import PageBudget
from ..core.errors import Refusal
from ..core.frames import encode_text_frame
from ..core.limits import ChatLimits, UpdateLimits
from ..core.messages import ChatMessageDraft
from ..core.updates import Update, delivered_json
from ..model.chats import Page
from ..stores.api import StoreApi, StoredUpdate, StoreError, StoreOverloaded, StoreUnavailable

__all__ = ["UpdateFeed", "FeedSocket", "StorageFailed", "StorageBusy", "UpdateRoute",
           "MessageWatcher", "storage_failed"]

log = logging.getLogger(__name__)

_EVERY_SERIAL = 2**63 - 1
"""Read back until a read finds nothing new."""


class StorageFailed(Refusal):
    """The store could not keep what a client sent; nothing of it was sent to anyone."""

    code = "storage-failed"


class StorageBusy(StorageFailed):
    """More writes wait for the store than it takes (`store.max_waiting_writes`): this one
    was refused at once, and nothing of it was sent to anyone."""

    code = "storage-busy"


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
    delivered: int = 0
    """The highest serial the listener was sent (or did not need), with a shared store."""
    watching: bool = False
    """Whether the socket holds a `watch` of its app copy's announcements on the store."""


@dataclass(slots=True, eq=False)
class _ReadBack:
    """The read-back running for one app copy, with a shared store."""

    wanted: int
    """The serial it reads on to at least."""
    asked: int = 1
    """How often it was asked to read on: a read that found nothing ends it only if it was
    not asked again while the read ran."""
    task: asyncio.Task[None] | None = None
    """The task reading (held here, since the event loop keeps only a weak reference)."""


UpdateRoute = Callable[[Page, Update, list[tuple[FeedSocket, bytes]]], None]
"""Takes a stored update (its sender's page, the update, and each listener with the frame
for it) and writes the frames to the listeners' sinks itself, now or later: how the simulator
holds updates for a peer that is offline."""

MessageWatcher = Callable[[Page, ChatMessageDraft], None]
"""Told of every chat message stored (the simulator's log)."""


class UpdateFeed:
    """The host's status updates and chat messages."""

    def __init__(self, store: StoreApi, limits: UpdateLimits, chat_limits: ChatLimits,
                 clock: Callable[[], float], route: UpdateRoute | None = None,
                 watch_messages: MessageWatcher | None = None) -> None:
        self.store = store
        self.limits = limits
        self.chat_limits = chat_limits
        self._clock = clock
        self._listeners: dict[str, set[FeedSocket]] = {}
        self._backlog_slots: dict[str, asyncio.Semaphore] = {}
        self.route = route
        """Where stored updates go instead of straight to the listeners; None: straight."""
        self.watch_messages = watch_messages
        """Told of every chat message stored; None: nobody."""
        self.announcements = 0
        """Announcements of updates stored by any process that the store handed on
        (`announced`), with a shared store."""
        self.read_back = 0
        """Updates read back from a shared store to send them to live listeners."""
        self._read_backs: dict[str, _ReadBack] = {}
        """The read-back running for each app copy, with a shared store."""

    def new_socket(self, page: Page, sink: FrameSink, budget: PageBudget) -> FeedSocket:
        """Track a new socket of `page`, spending from `budget` (the page's); it listens
        to nothing yet."""
        return FeedSocket(page, sink, budget)

    def forget(self, sock: FeedSocket) -> None:
        """The socket ended: stop sending it updates."""
        self._unlisten(sock)
        if sock.watching:
            sock.watching = False
            self.store.unwatch(sock.page.app.id)

    def _unlisten(self, sock: FeedSocket) -> None:
        """Send the socket no more live updates (its watch, if any, stays)."""
        listeners = self._listeners.get(sock.page.app.id)
        if listeners is not None:
            listeners.discard(sock)
            if not listeners:
                del self._listeners[sock.page.app.id]

    # -- updates -----------------------------------------------------------------------

    def hand_over_update(self, sock: FeedSocket, update: Update,
                         update_id: str | None = None) -> asyncio.Future[int]:
        """Store a valid update from `sock`, then send it to every listener of the app
        copy, the sender's own included: the future of its serial, done once it is stored
        and sent. One whose `update_id` the page's member stored already in this app copy
        is neither stored nor sent again: the serial it has is given, as
        `stores.api.AlreadyStored`. The future fails with `StorageBusy` if too many writes
        wait for the store, with `StoreError` if it could not be kept (then nobody was sent
        it; `storage_failed` says what to tell the page)."""
        page = sock.page
        try:
            return self.store.hand_over_update(
                page.app.id, page.member.id, update,
                lambda serial: self._committed(page, update, serial), update_id)
        except StoreError as exc:  # refused at once: the same future, failed now
            refused: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            refused.set_exception(StorageBusy(f"{exc}; the update was not sent")
                                  if isinstance(exc, StoreOverloaded) else exc)
            return refused

    def _committed(self, page: Page, update: Update, serial: int) -> None:
        """The update `serial` from `page` is durable: send it to the listeners (called in
        serial order)."""
        app_id = page.app.id
        if self.store.shared:
            self.appended(app_id, serial)
            return
        update_json = delivered_json(update, serial, serial)
        frames = [(listener, encode_text_frame(wire.encode_update(listener.listen, update_json)))
                  for listener in tuple(self._listeners.get(app_id, ()))]
        if self.route is not None:
            self.route(page, update, frames)
            return
        for listener, frame in frames:
            listener.sink.write((frame,), len(frame))

    async def listen(self, sock: FeedSocket, listen: int, after_serial: int) -> None:
        """(Re)start the socket's update listener: the backlog, then live updates.
        Raises `StorageFailed` if the store could not be read (then the socket listens to
        nothing)."""
        limits = self.limits
        self._unlisten(sock)
        sock.listen = listen
        await self._watch(sock)
        # Kept per page for the host's lifetime, like the page's budget: a few hundred
        # bytes per page that was ever used.
        slots = self._backlog_slots.get(sock.page.label)
        if slots is None:
            slots = asyncio.Semaphore(limits.max_backlogs_per_page)
            self._backlog_slots[sock.page.label] = slots
        async with slots:
            try:
                await self._replay(sock, listen, after_serial)
            except StoreError as exc:
                _log_failure("reading stored updates failed: %s", exc)
                raise StorageFailed("the host could not read the stored updates") from None

    async def _watch(self, sock: FeedSocket) -> None:
        """Have the store announce the socket's app copy from now on, before its backlog
        is read: an update committed after that read is then announced, so none falls
        between the backlog and the live updates. A socket holds one watch whatever its
        listeners (the new one is taken before the old one is given back, so the app copy
        stays listened to in between)."""
        app_id, held = sock.page.app.id, sock.watching
        sock.watching = True
        try:
            await self.store.watch(app_id)
        finally:
            if held:
                self.store.unwatch(app_id)

    async def _replay(self, sock: FeedSocket, listen: int, after_serial: int) -> None:
        app_id = sock.page.app.id
        store, limits, budget = self.store, self.limits, sock.budget
        last = after_serial
        while True:
            chunk = await store.read_updates(app_id, last, limits.backlog_chunk_bytes)
            for stored in chunk.updates:
                text = wire.encode_update(
                    listen, delivered_json(stored.update, stored.serial, chunk.newest))
                # Awaiting the write is the backpressure: a socket that does not read
                # holds up its own backlog, never the host's memory.
                await sock.sink.send_text(text)
                last = stored.serial
                wait = budget.backlog.charge(len(text), self._clock())
                if wait > 0:
                    await asyncio.sleep(wait)
            found, newest = bool(chunk.updates), chunk.newest
            del chunk  # one chunk in memory at a time, not two while the next is read
            if found:
                continue
            if store.shared:
                # Nothing is lost between this read and the registration: the read-back
                # started below reads whatever was committed meanwhile (a serial the page
                # named beyond the last one stored skips nothing).
                sock.delivered = min(last, newest)
                break
            # The read showed every update told before it was asked for (`newest`), and
            # the updates told while it ran went to the listeners of then: if none was
            # (the highest serial is still `newest`), registering now, with no await, makes
            # every later update reach this listener once; else read on.
            if store.max_serial(app_id) <= newest:
                break
        self._listeners.setdefault(app_id, set()).add(sock)
        if store.shared:
            self._read_back(app_id, _EVERY_SERIAL)
        await sock.sink.send_text(wire.encode_backlog_done(listen))

    def announced(self, app_id: str, serial: int) -> None:
        """The store announced an update of `app_id` with `serial`, stored by any process
        (`StoreApi.follow`): counted, then as `appended`."""
        self.announcements += 1
        self.appended(app_id, serial)

    def appended(self, app_id: str, serial: int) -> None:
        """An update of `app_id` with `serial` was stored (by this process or another):
        send this process's listeners of that app copy what they lack, in serial order,
        as read back off the event loop (one read-back at a time per app copy, which reads
        on until every listener has `serial`). A failure to read is logged; what was
        missed is sent with the next update or `resync`."""
        listeners = self._listeners.get(app_id)
        if listeners and min(listener.delivered for listener in listeners) < serial:
            self._read_back(app_id, serial)

    def _read_back(self, app_id: str, serial: int) -> None:
        """Have the app copy's read-back read on to `serial` at least (started if none
        runs)."""
        running = self._read_backs.get(app_id)
        if running is not None:
            running.wanted = max(running.wanted, serial)
            running.asked += 1
            return
        running = self._read_backs[app_id] = _ReadBack(serial)
        running.task = asyncio.get_running_loop().create_task(
            self._reading_back(app_id, running), name=f"webxdc-rt read-back {app_id}")

    async def _reading_back(self, app_id: str, running: _ReadBack) -> None:
        """Read the app copy's updates above the lowest serial its listeners have and send
        each listener those it lacks, chunk after chunk, until every listener has the
        serial asked for, or a read finds nothing new and nothing was asked meanwhile."""
        max_bytes = self.limits.backlog_chunk_bytes
        try:
            while True:
                listeners = self._listeners.get(app_id)
                if not listeners:
                    return
                start = min(listener.delivered for listener in listeners)
                if start >= running.wanted:
                    return
                asked = running.asked
                chunk = await self.store.read_updates(app_id, start, max_bytes)
                found = bool(chunk.updates)
                if found:
                    self._send_read_back(app_id, start, chunk.updates)
                del chunk  # one chunk in memory at a time, not two while the next is read
                if not found and running.asked == asked:
                    return
        except StoreError as exc:
            _log_failure(f"reading new updates of app copy {app_id} failed: %s", exc)
        finally:
            # No await since the last check: an update appended after it starts anew.
            del self._read_backs[app_id]

    def _send_read_back(self, app_id: str, start: int, batch: list[StoredUpdate]) -> None:
        """Send each listener of the app copy the updates of `batch` (every one stored
        after `start`, in order) that it lacks. A listener registered while the batch was
        read, with less than `start`, is sent none: it would lack those in between; the
        next read starts from what it has."""
        listeners = [listener for listener in self._listeners.get(app_id, ())
                     if listener.delivered >= start]
        self.read_back += len(batch)
        newest = batch[-1].serial
        for stored in batch:
            update_json = delivered_json(stored.update, stored.serial, newest)
            for listener in listeners:
                if listener.delivered < stored.serial:
                    frame = encode_text_frame(wire.encode_update(listener.listen, update_json))
                    listener.sink.write((frame,), len(frame))
                    listener.delivered = stored.serial

    def resync(self) -> None:
        """Announcements of stored updates may have been missed (the store's announcement
        channel was reconnected): send every listener what it lacks."""
        for app_id in tuple(self._listeners):
            self._read_back(app_id, _EVERY_SERIAL)

    # -- chat messages -----------------------------------------------------------------

    async def chat_stored_bytes(self, page: Page) -> int:
        """Bytes of chat messages `page` has stored so far (for its quota), read off the
        event loop; `StorageFailed` if the store could not be read."""
        try:
            return await self.store.read_chat_bytes(page.app.id, page.member.name)
        except StoreError as exc:
            _log_failure("reading a page's chat messages failed: %s", exc)
            raise StorageFailed("the host could not read its store") from None

    async def store_message(self, sock: FeedSocket, message: ChatMessageDraft) -> None:
        """Record a valid message the app posts to its chat (committed as updates are);
        `StorageFailed` if the store could not keep it, `StorageBusy` if too many writes
        wait for the store."""
        page = sock.page
        try:
            await self.store.commit_chat_message(page.app.chat_id, page.app.id,
                                                 page.member.name, message.text,
                                                 message.file_name, message.file_data)
        except StoreOverloaded as exc:
            raise StorageBusy(f"{exc}; the message was not recorded") from None
        except StoreError as exc:
            _log_failure("storing a chat message failed: %s", exc)
            raise StorageFailed("the host could not record this message") from None
        if self.watch_messages is not None:
            self.watch_messages(page, message)

    async def chat_messages(self, sock: FeedSocket,
                            before: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """The latest messages apps posted to the socket's chat (older than the message id
        `before`, if given), oldest first and bounded in count and bytes, read off the
        event loop; and whether older ones remain. `StorageFailed` if the store could not
        be read."""
        limits = self.chat_limits
        try:
            messages, more = await self.store.read_chat_messages(
                sock.page.app.chat_id, limits.max_listed, before, limits.max_listed_bytes)
        except StoreError as exc:
            _log_failure("reading chat messages failed: %s", exc)
            raise StorageFailed("the host could not read the chat messages") from None
        return [{
            "id": message.id, "app_id": message.app_id, "member": message.member,
            "text": message.text, "file_name": message.file_name,
            "file_base64": (None if message.file_data is None
                            else base64.b64encode(message.file_data).decode()),
        } for message in messages], more


def storage_failed(exc: StoreError) -> StorageFailed:
    """What a page is told of its update that the store could not keep (`exc`, logged)."""
    _log_failure("storing an update failed: %s", exc)
    return StorageFailed("the host could not store this update; it was not sent")


def _log_failure(message: str, exc: Exception) -> None:
    """Log a failure of the store, unless it is an outage the store already reported (one
    line per outage, not one per refused request)."""
    log.log(logging.DEBUG if isinstance(exc, StoreUnavailable) else logging.ERROR, message, exc)
