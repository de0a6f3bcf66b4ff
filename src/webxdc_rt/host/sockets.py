"""The WebSocket shell: each page's socket runs a `core.session.Session`, and a `SocketShell`
moves bytes for it. The shell feeds the session every frame with the time and carries out
the effects it returns, in order, in one place (`SocketShell.carry_out`); what came of an
effect on the store goes back to the session, which says what to answer. The shell decides
nothing and encodes nothing.

Realtime items are fanned out by writing one pre-encoded WebSocket frame to each receiver's
`Outbound`. A receiver that does not keep up loses realtime items (stale or crowded out,
counted per connection, channel and host) and keeps its link; it is cut off only when more
than `max_outbound_bytes` of what is never dropped (status updates, chat messages, control
frames) waits for it. So one stalled reader never holds memory or delays anyone else.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from typing import Any, cast

from aiohttp import WSMsgType, web

from ..core.budget import PageBudget
from ..core.delivery import DropCount
from ..core.fanout import Broker, Published
from ..core.frames import Frame, binary_frame, encode_text_frame
from ..core.realtime import RealtimeHub
from ..core.session import (
    INTERNAL_ERROR,
    AwaitCommit,
    Close,
    Discard,
    Effect,
    Hold,
    HoldMessage,
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
from ..core.shares import ShareSource, shared_page_budget, shares_of
from ..core.stats import HostStats
from ..model.chats import Page
from ..stores.api import AlreadyStored, StoreError
from . import http_guard
from .feed import FeedSocket, StorageFailed, UpdateFeed, storage_failed
from .hooks import ItemRoute
from .http_guard import GuardedRequestHandler
from .liveness import PING_FRAME, Heartbeat
from .outbound import Outbound, WriteBatcher
from .routing import PAGE_KEY, same_origin, text_response
from .settings import HostSettings, hello_limits

__all__ = ["Sockets", "SocketShell"]

log = logging.getLogger(__name__)

_STORAGE = (Replay, StoreMessage, ListMessages)  # awaited; updates are handed over


class Sockets:
    """The host's WebSocket endpoint: admits a page's sockets within the limits, runs a
    `SocketShell` for each, and hands the realtime items of this process's channels to
    their receivers."""

    def __init__(self, settings: HostSettings, hub: RealtimeHub, broker: Broker,
                 feed: UpdateFeed, stats: HostStats, route_item: ItemRoute | None = None,
                 shares: ShareSource | None = None) -> None:
        self.settings = settings
        self.hub = hub
        self.broker = broker
        self.feed = feed
        self.stats = stats
        self.route_item = route_item
        """Where realtime items go instead of straight to their receivers (`HostHooks`)."""
        self.shares = shares
        """Where pages' budgets are pooled with other processes (None: this process's own)."""
        self.shells: dict[Outbound, SocketShell] = {}
        """Every open socket, by its way out."""
        self.budgets: dict[str, PageBudget] = {}
        """The allowance of each page that had a socket, by label."""
        self.channel_drops: dict[str, DropCount] = {}
        """Realtime items dropped per channel (app copy topic) that had connections."""
        self.session_rules = SessionRules(settings.updates, settings.chat,
                                          settings.max_protocol_errors, stats.sessions)
        self.hello_limits = hello_limits(settings.realtime, settings.delivery)
        self._per_page: dict[str, int] = {}
        self._batcher: WriteBatcher | None = None

    @property
    def batcher(self) -> WriteBatcher:
        """The one `WriteBatcher` of this process's sockets (made with the first socket)."""
        assert self._batcher is not None
        return self._batcher

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """`/.webxdc-rt/socket`: a page's socket, open until either side closes it."""
        page = request[PAGE_KEY]
        if not same_origin(request):
            # Another page (another app copy, on a sibling origin of the same site) must not
            # ride on this page's cookie into its channel; browsers always send Origin.
            return text_response(403, "WebSocket from another origin refused.")
        refusal = self._refusal(page)
        if refusal:
            self.stats.connections_refused[refusal[0]] += 1
            return text_response(503, refusal[1])
        budget = self.budget(page)
        if budget.chat_stored_bytes is None:  # counted once per page, kept up by sessions
            try:
                stored = await self.feed.chat_stored_bytes(page)
            except StorageFailed as exc:
                return text_response(503, f"{exc} Try again later.")
            # Another socket of the page may have counted them while this read ran, and
            # its session counts on from there: a second count would forget what it added.
            if budget.chat_stored_bytes is None:
                budget.chat_stored_bytes = stored
        settings = self.settings
        # No aiohttp heartbeat: it reschedules a timer on every read (see `liveness`).
        ws = web.WebSocketResponse(compress=False, max_msg_size=settings.max_frame_bytes)
        protocol = request.protocol
        if isinstance(protocol, GuardedRequestHandler):
            protocol.frames_of = ws  # large items are read with one copy
        try:
            await ws.prepare(request)
        finally:
            if isinstance(protocol, GuardedRequestHandler):
                protocol.frames_of = None  # not left for a later request if this failed
        http_guard.upgraded(request)
        shell = self._open(request, ws, page, budget)
        self._per_page[page.label] = self._per_page.get(page.label, 0) + 1
        try:
            # Cancelling this handler cancels the reading task it awaits.
            await shell.start()
        finally:
            del self.shells[shell.sink]
            self._per_page[page.label] -= 1
            if not self._per_page[page.label]:
                del self._per_page[page.label]
                self._give_back(budget)
        return ws

    def budget(self, page: Page) -> PageBudget:
        """The allowance of one member page, shared by all its sockets; kept while the
        host runs, so reconnecting does not refill it."""
        budget = self.budgets.get(page.label)
        if budget is None:
            settings, now = self.settings, time.monotonic()
            budget = PageBudget.fresh(
                settings.realtime, settings.updates, settings.chat, settings.control_per_s,
                settings.control_burst, now, settings.delivery)
            if self.shares is not None:
                budget = shared_page_budget(page.label, self.shares,
                                            settings.broker.budget_share,
                                            settings.broker.budget_hold_s, budget, now)
            self.budgets[page.label] = budget
        elif page.label not in self._per_page:
            for share in shares_of(budget):  # gave its share back when its sockets left
                share.wake()
        return budget

    def _give_back(self, budget: PageBudget) -> None:
        """The page's last socket here closed: what it holds of its pool goes back."""
        if self.shares is not None:
            for share in shares_of(budget):
                self.shares.give_back(share)

    def on_published(self, topic: str, item: Published) -> None:
        """An item reached a channel this process has members in: the hub names the
        receivers (never the sender). Each of the item's two frames (with its stamp, for
        stamped receivers; without, for the others) is encoded once for all the receivers
        that take it, and only if one does. A receiver found too slow here is cut off by
        its sink after this write, so the hub is not re-entered while it is being asked."""
        receivers = self.hub.receivers(topic, item)
        stats = self.stats
        if self.route_item is not None:
            parts, size = binary_frame(item.payload, item.stamp)
            stats.realtime_items_out += len(receivers)
            stats.realtime_bytes_out += size * len(receivers)
            self.route_item(topic, item, receivers, parts, size)
            return
        stamped: Frame | None = None
        bare: Frame | None = None
        stamped_size = bare_size = written = 0
        # Counted for all its receivers (written or found too slow alike).
        for conn in receivers:
            if conn.stamped:
                if stamped is None:
                    stamped, stamped_size = binary_frame(item.payload, item.stamp)
                written += stamped_size
                conn.sink.deliver(stamped, stamped_size, item)
            else:
                if bare is None:
                    bare, bare_size = binary_frame(item.payload)
                written += bare_size
                conn.sink.deliver(bare, bare_size, item)
        stats.realtime_items_out += len(receivers)
        stats.realtime_bytes_out += written

    async def close(self, shells: list[SocketShell], code: int, reason: str) -> None:
        """Close sockets all at once, each within the grace: a client that does not read
        must not hold up the rest."""
        grace = self.settings.close_grace_s

        async def close(shell: SocketShell) -> None:
            try:
                await asyncio.wait_for(shell.close(code, reason), grace)
            except (TimeoutError, ConnectionError):
                pass
            finally:
                shell.sink.transport.abort()

        await asyncio.gather(*(close(shell) for shell in shells))

    def _open(self, request: web.Request, ws: web.WebSocketResponse, page: Page,
              budget: PageBudget) -> SocketShell:
        """The shell of a socket just accepted, its connection open in the hub."""
        settings = self.settings
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
        session = Session(self.hub, conn, budget, self.session_rules)
        protocol = request.protocol
        reads = (lambda: protocol.reads) if isinstance(protocol, GuardedRequestHandler) \
            else (lambda: 0)
        heartbeat = Heartbeat(asyncio.get_running_loop(), settings.heartbeat_s, reads,
                              lambda: sink.write((PING_FRAME,), len(PING_FRAME)),
                              transport.abort)
        shell = SocketShell(self, ws, page, session, sink,
                            self.feed.new_socket(page, sink, budget), heartbeat)
        sink.on_cut = shell.cut_off
        self.shells[sink] = shell
        return shell

    def _drops_of(self, topic: str) -> DropCount:
        drops = self.channel_drops.get(topic)
        if drops is None:
            drops = self.channel_drops[topic] = DropCount()
        return drops

    def _refusal(self, page: Page) -> tuple[str, str] | None:
        """Why a new socket of `page` is refused (a code and a text), if it is."""
        settings = self.settings
        if len(self.shells) >= settings.max_connections:
            return "host-full", f"The host is full ({settings.max_connections} connections)."
        if self._per_page.get(page.label, 0) >= settings.max_connections_per_page:
            return "page-full", (f"Too many connections for this page "
                                 f"(limit {settings.max_connections_per_page}).")
        return None


class SocketShell:
    """One open socket of a page: reads its frames into its session and carries out the
    effects the session returns. `carry_out` is where effects are carried out; the read
    loop inlines its case of a frame that is one realtime item and nothing else."""

    __slots__ = ("sockets", "ws", "page", "session", "sink", "feed_socket", "handler",
                 "heartbeat", "commits", "window")

    def __init__(self, sockets: Sockets, ws: web.WebSocketResponse, page: Page,
                 session: Session, sink: Outbound, feed_socket: FeedSocket,
                 heartbeat: Heartbeat) -> None:
        self.sockets = sockets
        self.ws = ws
        self.page = page
        self.session = session
        self.sink = sink
        self.feed_socket = feed_socket
        self.handler: asyncio.Task[None] | None = None
        """The task reading it (`start`), cancelled at shutdown if it is pausing a paced
        page."""
        self.heartbeat = heartbeat
        self.commits: collections.deque[tuple[StoreUpdate, asyncio.Future[int]]] = \
            collections.deque()
        """The updates handed to the store whose outcome the session was not told yet, in
        the order they came."""
        self.window: asyncio.Future[None] | None = None
        """Resolved when an update in flight ended, while the reading waits (`AwaitCommit`)."""

    def start(self) -> asyncio.Task[None]:
        """`run` the socket in a task of its own. Every turn of the loop that reads an item
        resumes the reading task's chain of coroutines, and suspends it again: started
        from the request's handler it would be under aiohttp's handler and the host's
        middlewares, each resumed and suspended for every item."""
        self.handler = asyncio.get_running_loop().create_task(self.run())
        return self.handler

    async def run(self) -> None:
        """Greet the page, then read until either side closes; contain a bug in the host
        to this socket. Whatever ends it counts as the page having left (R17)."""
        page, sink = self.page, self.sink
        try:
            greeting = self.session.greet(page.self_addr, page.member.name,
                                          self.sockets.hello_limits, time.time() * 1000.0,
                                          time.monotonic())
            if await self.carry_out(greeting):
                await self._read()
        except ConnectionError:
            pass  # the link broke while we wrote to it: same as a close
        except Exception as exc:  # a bug, not the client's fault: contain it to this socket
            log.error("internal error on a socket of page %s: %s", page.label,
                      http_guard.describe_exception(exc))
            with contextlib.suppress(Exception):
                await sink.close(INTERNAL_ERROR, "internal error")
        finally:
            self.heartbeat.stop()
            sink.finish()
            self.carry_out_now(self.session.link_lost())
            self.sockets.feed.forget(self.feed_socket)

    async def _read(self) -> None:
        """Feed the session what arrives and carry out what it says, until it closes.

        The items one read brought in are handed over without yielding to the event loop
        (aiohttp parses them all at once): their frames are gathered and written once the
        read's messages are used up (`WriteBatcher.hold`), so a burst costs each receiver
        one write and a lone item is written in the turn that read it."""
        session, ws, topic = self.session, self.ws, self.session.conn.topic
        broker, stats = self.sockets.broker, self.sockets.stats
        batcher, binary, monotonic = self.sockets.batcher, WSMsgType.BINARY, time.monotonic
        buffered = _message_buffer(ws)
        receive = ws.receive  # not `async for`: its `__anext__` is one more coroutine an item
        try:
            while True:
                msg = await receive()
                if msg.type is binary:
                    taken = session.item_or_effects(msg.data, monotonic())
                    if type(taken) is Published:
                        # `_now`'s case of a lone Publish, inlined: this runs once per item.
                        stats.realtime_items_in += 1
                        stats.realtime_bytes_in += len(taken.payload)
                        if buffered:  # more of this read follows: gathered
                            batcher.held = True  # `batcher.hold()`, inlined
                            broker.publish(topic, taken)
                        elif buffered is not None:  # the last of the read
                            batcher.held = batcher.direct = True
                            try:
                                broker.publish(topic, taken)
                            finally:
                                batcher.direct = False
                            batcher.release()
                        else:
                            broker.publish(topic, taken)
                        continue
                    effects = cast(tuple[Effect, ...], taken)
                elif msg.type is WSMsgType.TEXT:
                    now = time.monotonic()
                    effects = session.receive_text(msg.data, now)
                    first = effects[0] if effects else None
                    if len(effects) == 1 and type(first) is Receipt:
                        # `_now`'s case of a Receipt, inlined: receivers report often. It
                        # writes nothing, but may be the last of a read held for items.
                        self.sink.report(first.bytes, now)
                        if not buffered:
                            batcher.release()
                        continue
                else:  # closed, closing, or an error (a broken or oversize frame: aiohttp
                    return  # closes the socket)
                batcher.release()  # what was gathered goes before what this may write
                if not await self.carry_out(effects):
                    return
        finally:
            batcher.release()

    async def carry_out(self, effects: tuple[Effect, ...]) -> bool:
        """Carry out a session's effects in order; False once the connection is closed."""
        sink = self.sink
        for effect in effects:
            if isinstance(effect, Send):
                await sink.send_text(effect.text)
            elif isinstance(effect, Pause):
                await asyncio.sleep(effect.seconds)
            elif isinstance(effect, Hold):
                await _answer_of(effect)
                if not await self.carry_out(self.session.held(effect.share, time.monotonic())):
                    return False
            elif isinstance(effect, HoldMessage):
                await _answer_of(effect)
                if not await self.carry_out(self.session.retry(effect.message,
                                                               time.monotonic())):
                    return False
            elif isinstance(effect, Close):
                await sink.close(effect.code, effect.reason)
                return False
            elif isinstance(effect, StoreUpdate):
                self._hand_over(effect)
                # One update of a page per turn of the loop: a burst read at once is taken
                # in among what else waits (realtime items), not all in one turn.
                await asyncio.sleep(0)
            elif isinstance(effect, AwaitCommit):
                await self._fewer_in_flight(effect.below)
            elif isinstance(effect, _STORAGE):
                if not await self.carry_out(await self._store(effect)):
                    return False
            else:
                self._now(effect)
                if isinstance(effect, Subscribe):
                    # The page is told it joined once items from other processes reach it.
                    await self.sockets.broker.ready(effect.topic)
        return True

    def carry_out_now(self, effects: tuple[Effect, ...]) -> None:
        """Carry out effects that need no waiting (all that leaving a channel brings), from
        where nothing can wait."""
        for effect in effects:
            self._now(effect)

    def cut_off(self) -> None:
        """The sink found the page too slow, after the write that did: out of its channel
        and off the update feed; the sink sends the close frame."""
        self.sockets.stats.slow_receivers_cut_off += 1
        self.carry_out_now(self.session.cut_off())
        self.sockets.feed.forget(self.feed_socket)

    async def close(self, code: int, reason: str) -> None:
        """The host closes this socket: out of its channel at once, then the close frame
        (sent even when the session was going away already)."""
        if await self.carry_out(self.session.close(code, reason)):
            await self.sink.close(code, reason)

    def _now(self, effect: Effect) -> None:
        sockets, sink = self.sockets, self.sink
        if isinstance(effect, Publish):
            sockets.stats.realtime_items_in += 1
            # The payload, as the limits count it: not its stamp.
            sockets.stats.realtime_bytes_in += len(effect.item.payload)
            sockets.broker.publish(effect.topic, effect.item)
        # A (un)subscription is checked against the hub when it is carried out: effects
        # after an await may run late, after another connection joined or left.
        elif isinstance(effect, Subscribe):
            if sockets.hub.joined_count(effect.topic):
                sockets.broker.subscribe(effect.topic, sockets.on_published)
        elif isinstance(effect, Unsubscribe):
            if not sockets.hub.joined_count(effect.topic):
                sockets.broker.unsubscribe(effect.topic, sockets.on_published)
        elif isinstance(effect, Receipt):
            sink.report(effect.bytes, time.monotonic())
        elif isinstance(effect, Discard):
            sink.discard_items()
        else:
            raise TypeError(f"{type(effect).__name__} cannot be carried out without waiting")

    def _hand_over(self, effect: StoreUpdate) -> None:
        """Hand an update to the store and read on: it joins the store's queue now, after
        the updates handed over before it."""
        stored = self.sockets.feed.hand_over_update(self.feed_socket, effect.update,
                                                    effect.id)
        self.commits.append((effect, stored))
        stored.add_done_callback(self._commit_ended)

    def _commit_ended(self, _stored: asyncio.Future[int]) -> None:
        """Tell the session what came of the updates whose commit ended, oldest first (a
        later one never goes before an earlier one still in flight), and write its answers
        after what was written before; then wake the reading if it waits for room."""
        commits, session = self.commits, self.session
        while commits and commits[0][1].done():
            effect, stored = commits.popleft()
            error = _commit_error(stored)
            if error is None:
                serial = stored.result()
                before = isinstance(serial, AlreadyStored)
                if not before:
                    self.sockets.stats.updates_appended += 1
                answer = session.update_stored(effect, int(serial), before)
            else:
                answer = session.storage_failed(effect, error)
            for sent in answer:
                if isinstance(sent, Send):
                    frame = encode_text_frame(sent.text)
                    self.sink.write((frame,), len(frame))
                else:
                    self._now(sent)
        window = self.window
        if window is not None and not window.done():
            window.set_result(None)  # the reading checks whether it may go on

    async def _fewer_in_flight(self, below: int) -> None:
        """Wait until fewer than `below` of this socket's updates are in flight."""
        while self.session.updates_in_flight >= below:
            self.window = asyncio.get_running_loop().create_future()
            await self.window

    async def _store(self, effect: Replay | StoreMessage | ListMessages
                     ) -> tuple[Effect, ...]:
        """Carry out an effect on the store; the session's answer to what came of it."""
        feed, sock, stats, session = (self.sockets.feed, self.feed_socket, self.sockets.stats,
                                      self.session)
        try:
            if isinstance(effect, Replay):
                await feed.listen(sock, effect.listen, effect.after_serial)
                return ()
            if isinstance(effect, StoreMessage):
                await feed.store_message(sock, effect.message)
                stats.chat_messages_stored += 1
                return session.message_stored(effect)
            messages, more = await feed.chat_messages(sock, effect.before)
            return session.messages_listed(effect, messages, more)
        except StorageFailed as exc:
            return session.storage_failed(effect, exc)


def _commit_error(stored: asyncio.Future[int]) -> StorageFailed | None:
    """Why the commit of an update (`stored`, its future) did not keep it; None if it
    did."""
    if stored.cancelled():  # the host stopped before the store committed it
        return StorageFailed("the host stopped before this update was stored; it was not "
                             "sent")
    error = stored.exception()
    if error is None or isinstance(error, StorageFailed):
        return error
    if isinstance(error, StoreError):
        return storage_failed(error)
    log.error("storing an update failed: %s", http_guard.describe_exception(error))
    return StorageFailed("the host could not store this update; it was not sent")


def _message_buffer(ws: web.WebSocketResponse) -> Any:
    """The messages aiohttp has parsed from this socket and not handed over yet (empty
    exactly when the next `receive` would wait for a read), or None where aiohttp keeps
    them elsewhere: then frames are written at the end of the loop turn instead."""
    buffer = getattr(getattr(ws, "_reader", None), "_buffer", None)
    return buffer if isinstance(buffer, collections.deque) else None


def _ask_socket_buffers(transport: asyncio.Transport, receive: int, send: int) -> None:
    """Ask the kernel to hold at most about `receive` unread bytes from this socket and
    `send` unsent ones for it (hints: the kernel may round them, Linux doubles them, and a
    platform without the options keeps its own)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send)


async def _answer_of(hold: Hold | HoldMessage) -> None:
    """Wait until the pool answered the request of `hold`'s share, or for its seconds."""
    answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done() -> None:
        if not answered.done():
            answered.set_result(None)

    hold.share.when_answered(done)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(answered, hold.seconds)
