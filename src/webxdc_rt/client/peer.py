"""The peer itself: one member's connection to one shared app, across the links it opens."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..core import wire
from ..core.errors import Refusal
from .answers import PendingAnswers
from .channel import RealtimeChannel
from .errors import InviteRefused, LinkLost
from .link import (
    DEFAULT_MAX_ITEM_WAIT_S,
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_ITEM_BYTES,
    Link,
    LinkOptions,
    Opened,
    open_socket,
    wait_until_ended,
)
from .listening import UpdateListener, UpdateListening
from .outbox import UnstoredUpdates
from .reconnect import Backoff, LinkEvent, LinkEvents, LinkState, Reconnect, redial
from .sendqueue import PeerStats

__all__ = ["Peer", "connect"]

log = logging.getLogger(__name__.rpartition(".")[0])


class Peer:
    """A member's connection to one shared app on a webxdc-rt host. Made by `connect`;
    with `reconnect=`, it outlives lost links (see `Reconnect` and `LinkEvent`)."""

    def __init__(self, opened: Opened, url: str, options: LinkOptions | None = None,
                 reconnect: Reconnect | None = None,
                 on_link: Callable[[LinkEvent], object] | None = None) -> None:
        hello = opened.hello
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
        self.error: Refusal | None = None
        """Why a reconnecting peer gave up (`InviteRefused`, `LinkLost`), once it did."""
        self._url = url
        self._options = options or LinkOptions()
        self._reconnect = reconnect
        self._events = LinkEvents(on_link)
        self._unstored = (None if reconnect is None
                          else UnstoredUpdates(reconnect.max_unstored_update_bytes))
        self._channel: RealtimeChannel | None = None
        self._epoch = 0
        self._closing = False
        self._gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listening = UpdateListening()
        self._answers = PendingAnswers()
        self._link: Link | None = self._open_link(opened)
        self._supervisor = asyncio.create_task(self._supervise())

    @property
    def closed(self) -> bool:
        """Whether the peer is done: closed, its link lost (without `reconnect`), or it gave
        up reconnecting."""
        lost = self._reconnect is None and (self._link is None or self._link.closed)
        return lost or self._gone.done()

    @property
    def connected(self) -> bool:
        """Whether a link to the host is open now."""
        return self._link is not None and not self._link.closed

    @property
    def unstored_updates(self) -> int:
        """Status updates sent and not confirmed stored yet (kept with `reconnect` only)."""
        return 0 if self._unstored is None else len(self._unstored)

    def join_realtime_channel(self) -> RealtimeChannel:
        """Join this app's realtime channel; RuntimeError if a channel is already joined."""
        if self._channel is not None:
            raise RuntimeError("already joined a realtime channel: leave() it first")
        if self.closed:
            raise RuntimeError("the peer is closed")
        self._epoch += 1
        self._channel = RealtimeChannel(self, self._epoch)
        self._send_control(self._join_frame())
        return self._channel

    # -- status updates and chat messages ----------------------------------------------

    def send_update(self, update: dict[str, Any], descr: str = "") -> None:
        """`webxdc.sendUpdate`: share app state with every member (this peer included).

        `update` needs a JSON-serialisable `payload`; `info`, `href`, `document`, `summary`
        and `notify` are optional. `descr` is deprecated by the spec and ignored. Raises
        ValueError for what is not strict JSON text (NaN, infinities, lone surrogates).

        A reconnecting peer sends each update under an id of its own and keeps it until the
        host confirms it stored, sending it again (same id, in order) on the next link if
        the link is lost first, so that it is stored once. Raises UnstoredUpdatesFull when
        `Reconnect.max_unstored_update_bytes` are kept already.
        """
        if not isinstance(update, dict) or "payload" not in update:
            raise TypeError("send_update expects a dict with a 'payload'")
        if self._unstored is None:
            self._send_control(wire.encode_update_send(update))
            return
        if self.closed:
            raise ConnectionError("the peer is closed")
        update_id, frame = self._unstored.keep(update)
        try:
            self._send_control(frame)
        except BufferError:
            self._unstored.drop(update_id)
            raise
        if self.connected:
            self._unstored.written(update_id)

    async def set_update_listener(self, callback: UpdateListener, serial: int = 0) -> None:
        """`webxdc.setUpdateListener`: call `callback(update)` for every update after
        `serial`, the stored ones first, then live ones. Returns once the stored ones were
        passed to `callback`. Replaces any earlier listener. A reconnecting peer restarts it
        on each new link after the last serial it passed on: none is missed or repeated."""
        if not callable(callback):
            raise TypeError("set_update_listener expects a callable")
        done = asyncio.get_running_loop().create_future()
        self._send_control(self._listening.start(callback, serial, done))
        await self._until(done)

    async def chat_messages(self, before: int | None = None) -> list[dict[str, Any]]:
        """The latest messages the chat's apps posted with `sendToChat` (oldest first):
        dicts with `id`, `member`, `text`, `file_name` and `file_base64`. The host answers
        a bounded page (by count and bytes); for older ones pass `before=` the first
        message's `id`; an empty list means there are none. A reconnecting peer asks again
        on the next link if the link is lost before the answer."""
        request_id, frame, answer = self._answers.ask(before)
        self._send_control(frame)
        try:
            reply: wire.ChatMessages = await self._until(answer)
        finally:
            self._answers.forget(request_id)
        return list(reply.messages)

    async def drain(self) -> None:
        """Wait until every queued frame was handed to the connection; ConnectionError if
        the link ends first."""
        link = self._link
        if link is None:
            raise ConnectionError("no link to the host at the moment")
        if link.queue.drained.is_set():
            return
        drained = asyncio.ensure_future(link.queue.drained.wait())
        try:
            await asyncio.wait({drained, link.writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
        if not link.queue.drained.is_set():
            raise ConnectionError("the link to the host closed before everything was sent")

    # -- the link's life ---------------------------------------------------------------

    def link_events(self) -> AsyncIterator[LinkEvent]:
        """The link's events from now on, in order, until CLOSED (the last one):
        `async for event in peer.link_events(): ...`. Up to `LINK_EVENTS_KEPT` wait for a
        reader that is behind; older ones are dropped."""
        return self._events.iterate()

    async def wait_closed(self) -> None:
        """Wait until the peer ends: return if it was closed, raise its `error` if it gave
        up (`InviteRefused`, `LinkLost`), ConnectionError if a link without `reconnect` was
        lost."""
        await asyncio.shield(self._gone)
        if self.error is not None:
            raise self.error
        if not self._closing:
            raise ConnectionError("the link to the host was lost")

    async def close(self) -> None:
        """Leave, close the link and release its resources."""
        if self._channel is not None:
            self._channel._end()
            self._channel = None
        self._closing = True
        self._supervisor.cancel()  # it may be dialling again, or closing a lost link
        if self._link is not None:
            await self._link.close()
        await wait_until_ended(self._supervisor)
        self._finish("closed by the program")

    async def __aenter__(self) -> Peer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def until_closed(self, future: asyncio.Future[Any]) -> bool:
        """Wait for `future`, or for the peer to end; whether `future` finished."""
        await asyncio.wait({future, self._gone}, return_when=asyncio.FIRST_COMPLETED)
        return future.done()

    # -- internals ---------------------------------------------------------------------

    async def _until(self, future: asyncio.Future[Any]) -> Any:
        """Wait for an answer from the host, failing if the peer ends first."""
        if not await self.until_closed(future):
            if self.error is not None:
                raise self.error
            raise ConnectionError("the link to the host closed before it answered")
        return future.result()

    def _open_link(self, opened: Opened) -> Link:
        return Link(opened, self._options, self.stats, self._on_item, self._on_control)

    def _join_frame(self) -> str:
        link = self._link  # None: a reconnecting peer without one sends nothing
        return link.join_frame(self._epoch) if link is not None else wire.encode_join(self._epoch)

    def _channel_left(self, channel: RealtimeChannel) -> None:
        if self._channel is channel:
            self._channel = None
        if not self.closed:
            self._send_control(wire.encode_leave())

    def _send_control(self, frame: str) -> None:
        """Queue a control frame on the link; while a reconnecting peer has none, nothing:
        what it says is state the next link is told (`_restore`)."""
        if self.closed:
            raise ConnectionError("the link to the host is closed")
        if self._link is not None and not self._link.closed:
            self._link.put(frame)

    def _enqueue_item(self, payload: bytes) -> None:
        link = self._link
        if link is not None and not link.closed:  # first: this runs for every item
            link.put_item(payload)
        elif self.closed:
            raise ConnectionError("the link to the host is closed")
        else:
            self.stats.items_dropped_offline += 1  # realtime is ephemeral: never sent late

    def _on_item(self, payload: bytes) -> None:
        channel = self._channel
        # Items on their way before the current join took effect belong to nobody.
        if channel is not None and channel._acknowledged:
            channel._deliver(payload)

    def _on_control(self, message: wire.HostMessage) -> None:
        match message:
            case wire.Joined(epoch=epoch):
                if self._channel is not None and self._channel.epoch == epoch:
                    self._channel._acknowledge()
            case wire.Update():
                self._listening.on_update(message)
            case wire.UpdateBacklogDone(listen=listen):
                self._listening.on_backlog_done(listen)
            case wire.UpdateStored(id=update_id):
                if self._unstored is not None:
                    self._unstored.stored(update_id)
            case wire.ChatMessages():
                self._answers.answer(message)
            case wire.ErrorMessage(code=code, message=text, id=update_id):
                self.errors.append(message)
                log.warning("error from the host: %s (%s)", text, code)
                if update_id is not None and self._unstored is not None:
                    self._unstored.refused(update_id)
            case wire.UnknownHostMessage(type=kind):
                log.debug("ignoring a host message of a type this version does not know: %r",
                          kind)
            case _:
                pass  # a second hello, or a reply to a request this peer does not make

    async def _supervise(self) -> None:
        """Watch the link; once lost, redial and tell the new link what the peer is."""
        backoff = Backoff()  # the waits grow on across links lost soon after they opened
        while (link := self._link) is not None:
            await link.ended()
            if self._closing:
                return
            await link.close()
            self._link = None
            if self._reconnect is None:
                self._finish("the link to the host was lost")
                return
            self._link_lost(link.close_code)
            try:
                opened, attempt = await redial(self._url, self._reconnect,
                                               self._options.timeout, backoff)
            except (InviteRefused, LinkLost) as exc:
                self.error = exc
                self._finish(str(exc))
                return
            self._link = self._open_link(opened)
            self._restore()
            self._events.emit(LinkEvent(LinkState.UP, "a new link is open", attempt))

    def _link_lost(self, close_code: int | None) -> None:
        if self._unstored is not None:
            self._unstored.link_lost()
        if self._channel is not None:
            self._channel._rejoin(self._epoch)
        reason = f"the link to the host was lost (close code {close_code})"
        self._events.emit(LinkEvent(LinkState.DOWN, reason))

    def _restore(self) -> None:
        """Tell a new link everything a lost one knew, in the order the host needs it."""
        if self._channel is not None:
            self._epoch += 1
            self._channel._rejoin(self._epoch)
            self._send_control(self._join_frame())
        listen = self._listening.restart()
        if listen is not None:
            self._send_control(listen)
        for frame in self._answers.frames():
            self._send_control(frame)
        if self._unstored is not None:
            for update_id, frame in self._unstored.to_resend():
                self._send_control(frame)
                self._unstored.written(update_id)

    def _finish(self, reason: str) -> None:
        """The peer is done: every waiter is told, and CLOSED is the last event."""
        if self._gone.done():
            return
        self._gone.set_result(None)
        self._events.emit(LinkEvent(LinkState.CLOSED, reason, error=self.error))


async def connect(url: str, *, timeout: float = 10.0,
                  max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
                  max_pending_item_bytes: int = DEFAULT_MAX_PENDING_ITEM_BYTES,
                  max_item_wait_s: float = DEFAULT_MAX_ITEM_WAIT_S,
                  reconnect: Reconnect | bool | None = None,
                  on_link: Callable[[LinkEvent], object] | None = None) -> Peer:
    """Connect to a webxdc-rt host with an invite link and return the member's peer.
    `max_pending_bytes` bounds what it queues for the host in all (BufferError beyond),
    `max_pending_item_bytes` the realtime items in it, and `max_item_wait_s` how long one
    may wait there (dropped beyond either).

    `reconnect` (a `Reconnect`, or True for its defaults) makes the peer outlive a lost
    link: it dials the same invite link again with backoff, joins its channel again,
    restarts its update listener after the last update it passed on, and sends again the
    updates the host has not confirmed stored; `on_link(event)` and `peer.link_events()`
    report each `LinkEvent`. Without it, the peer ends with its link.

    Raises InviteRefused when the host does not accept the link, ValueError when `url` is
    not an invite link, and ConnectionError / TimeoutError when the host is unreachable
    (the first link is not retried: a wrong address should fail at once).
    """
    policy = Reconnect() if reconnect is True else (reconnect or None)
    options = LinkOptions(timeout, max_pending_bytes, max_pending_item_bytes,
                          max_item_wait_s)
    return Peer(await open_socket(url, timeout), url, options, policy, on_link)
