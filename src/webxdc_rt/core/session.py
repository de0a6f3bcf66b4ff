"""One connection's protocol, with no I/O: what arrived goes in, effects come out.

A `Session` is one WebSocket of a member page (a browser tab or a Python peer), bound to the
page's realtime channel when it is opened. The I/O shell feeds it what arrives (a text
frame, a binary frame, the time) and what happens to the link (cut off as too slow, lost,
closed by the host), and carries out the effects it returns, in order: send a control
message, publish an item, start or stop listening to the channel, forget the items waiting
for it (after a leave), pause reading, store an update, wait for updates in flight, replay
updates, store or list chat messages, close. What came of an effect on the store goes back
in too (`update_stored`, `message_stored`, `messages_listed`, `storage_failed`), and the
session says what to answer: every rule of
the connection, and every text it is sent, is here or in the rule modules it calls
(`wire`, `realtime`, `updates`, `messages`, `budget`); the shell decides nothing.

Its lifecycle is one table, `TRANSITIONS` (in the manner of h11's `_state.py`): for each
state, the events it allows and the state each leads to. `REFUSED` lists the events that
are the client's mistake in a state (answered with an `error` frame, the state unchanged);
`IGNORED`, those that come too late to matter (the connection is going away). Anything else
is a bug in the host and raises `SessionStateError` naming the state and the event.

    open ──join──▶ joined ──leave──▶ open
    open, joined ──host closes (refusal cap, shutdown)──▶ leaving
    open, joined ──receiver too slow──▶ cut off
    every state but closed ──link lost──▶ closed

Status updates are committed in a window: a `StoreUpdate` does not stop the reading, and up
to `UpdateLimits.max_in_flight_per_socket` of a connection's updates wait for their commit
at once; the one that fills the window comes with `AwaitCommit`, and nothing more is read
until the oldest is committed. A listener started by the same connection waits for all of
them (`AwaitCommit(1)`), so its backlog holds every update the page sent before it. The
shell hands the updates to the store in the order they came (so one app copy's serials
follow the order each page sent them in) and tells the session what came of each, in that
order (`update_stored`, `storage_failed`), which frees its place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from . import realtime, wire
from .budget import PageBudget, TokenBucket
from .errors import Refusal, SessionStateError
from .fanout import Published
from .limits import ChatLimits, RealtimeLimits, UpdateLimits
from .messages import ChatMessageDraft, validate_message
from .realtime import AlreadyJoined, Connection, NotJoined, RealtimeHub
from .shares import SharedSendBudget, SharedTokenBucket
from .stats import SessionCounts
from .updates import Update, UpdateError, validate_update

__all__ = [
    "State", "Event", "TRANSITIONS", "REFUSED", "IGNORED", "SessionRules", "Session",
    "Send", "Publish", "Subscribe", "Unsubscribe", "Pause", "Hold", "HoldMessage",
    "StoreUpdate", "AwaitCommit", "Replay",
    "StoreMessage", "ListMessages", "Close", "Discard", "Receipt", "Effect", "StorageEffect",
    "POLICY_VIOLATION", "INTERNAL_ERROR",
]

POLICY_VIOLATION = 1008
"""WebSocket close code: the client broke the host's rules too often."""
INTERNAL_ERROR = 1011
"""WebSocket close code: the host failed (a bug), not the client."""


class State(enum.Enum):
    """Where a connection is in its life."""

    OPEN = "open"
    """Connected, not joined to the realtime channel."""
    JOINED = "joined"
    """Joined: it sends to and receives from the channel."""
    LEAVING = "leaving"
    """The host is closing it (too many refused requests, shutdown): nothing more is read."""
    CUT_OFF = "cut off"
    """Too slow a receiver: out of the channel, its close frame on the way."""
    CLOSED = "closed"
    """The link ended."""


class Event(enum.Enum):
    """What can happen to a connection."""

    JOIN = "join"
    LEAVE = "leave"
    ITEM = "item"
    """A realtime item (binary frame)."""
    CONTROL = "control"
    """Any other control message (updates, chat messages)."""
    CLOSE = "close"
    """The host closes the connection."""
    CUT_OFF = "cut off"
    """The connection does not take what it is sent fast enough."""
    LINK_LOST = "link lost"


TRANSITIONS: dict[State, dict[Event, State]] = {
    State.OPEN: {
        Event.JOIN: State.JOINED, Event.CONTROL: State.OPEN, Event.CLOSE: State.LEAVING,
        Event.CUT_OFF: State.CUT_OFF, Event.LINK_LOST: State.CLOSED,
    },
    State.JOINED: {
        Event.LEAVE: State.OPEN, Event.ITEM: State.JOINED, Event.CONTROL: State.JOINED,
        Event.CLOSE: State.LEAVING, Event.CUT_OFF: State.CUT_OFF,
        Event.LINK_LOST: State.CLOSED,
    },
    State.LEAVING: {Event.LINK_LOST: State.CLOSED},
    State.CUT_OFF: {Event.LINK_LOST: State.CLOSED},
    State.CLOSED: {},
}
"""The lifecycle: for each state, the events that move it on and where to."""

REFUSED: dict[tuple[State, Event], type[Refusal]] = {
    (State.OPEN, Event.LEAVE): NotJoined,
    (State.OPEN, Event.ITEM): NotJoined,
    (State.JOINED, Event.JOIN): AlreadyJoined,
}
"""Events that are the client's mistake in a state: refused, the state unchanged (R3, R15)."""

IGNORED: frozenset[tuple[State, Event]] = frozenset(
    [(state, event) for state in (State.LEAVING, State.CUT_OFF) for event in Event
     if event is not Event.LINK_LOST]
    # The host may close or cut off a connection whose link was lost meanwhile (a shutdown
    # closes every socket it holds, while some of them are ending by themselves).
    + [(State.CLOSED, Event.CLOSE), (State.CLOSED, Event.CUT_OFF)])
"""Events that come after the connection was let go: dropped without an answer."""

_REFUSAL_TEXT = {  # what the hub says of the same mistakes
    (State.OPEN, Event.LEAVE): realtime.NOT_JOINED,
    (State.OPEN, Event.ITEM): realtime.NOT_JOINED_TO_SEND,
    (State.JOINED, Event.JOIN): realtime.ALREADY_JOINED,
}


_JOINED = State.JOINED  # a module global is found faster than an enum member
_new_tuple, _pack_stamp = tuple.__new__, wire.pack_stamp


# -- effects ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Send:
    """Write a control message (a text frame) to this connection."""

    text: str


class Publish(NamedTuple):
    """Publish a realtime item to the channel `topic` (through the broker). A named tuple,
    not a dataclass like the other effects: one is made per realtime item, and a tuple is
    the cheapest immutable record Python builds."""

    topic: str
    item: Published


@dataclass(frozen=True, slots=True)
class Subscribe:
    """This process now has a member in channel `topic`: listen to it on the broker."""

    topic: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """This process has no member left in channel `topic`: stop listening to it."""

    topic: str


@dataclass(frozen=True, slots=True)
class Pause:
    """Read nothing more from this connection for `seconds` (its page is over a budget)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Hold:
    """Read nothing more from this connection until the pool of its page's budget answered
    `share`'s request, for `seconds` at most (`shares.SharedSendBudget`)."""

    seconds: float
    share: SharedSendBudget


@dataclass(frozen=True, slots=True)
class HoldMessage:
    """As `Hold`, then `Session.retry(message)`: not refused while the pool is asked."""

    seconds: float
    share: SharedTokenBucket
    message: wire.UpdateSend | wire.SendToChat


@dataclass(frozen=True, slots=True)
class StoreUpdate:
    """Hand a valid status update to the store, after those before it, and read on: once
    committed it is sent to every listener of the app copy; one with an `id` its member
    stored already in the app copy is neither stored nor sent. What came of it goes back to
    the session (`update_stored` or `storage_failed`), in the order the updates came."""

    update: Update
    id: str | None = None


@dataclass(frozen=True, slots=True)
class AwaitCommit:
    """Read nothing more until fewer than `below` of the connection's updates are in flight
    (committed or failed): its window is full, or what comes next must see them stored."""

    below: int


@dataclass(frozen=True, slots=True)
class Replay:
    """(Re)start update listener `listen`: the stored updates after `after_serial`, then
    live ones."""

    listen: int
    after_serial: int


@dataclass(frozen=True, slots=True)
class StoreMessage:
    """Store a valid chat message, then answer request `request_id` (ok, or why not)."""

    request_id: int
    message: ChatMessageDraft


@dataclass(frozen=True, slots=True)
class ListMessages:
    """Answer request `request_id` with the chat's messages (older than `before`)."""

    request_id: int
    before: int | None


@dataclass(frozen=True, slots=True)
class Discard:
    """Forget the realtime items still waiting to be written to this connection: it left
    its channel, so they are no longer its own (R15), nor of its next join (R12)."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with a WebSocket close code and a reason."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """The receiver has read `bytes` of realtime items so far (`wire.Received`): more may
    go to it."""

    bytes: int


_DISCARD = Discard()
_AWAIT_ALL_COMMITS = AwaitCommit(1)

Effect = (Send | Publish | Subscribe | Unsubscribe | Pause | Hold | HoldMessage | StoreUpdate
          | AwaitCommit | Replay | StoreMessage | ListMessages | Discard | Receipt | Close)

StorageEffect = StoreUpdate | Replay | StoreMessage | ListMessages
"""The effects on the store: what came of each goes back to the session."""


@dataclass(frozen=True, slots=True)
class SessionRules:
    """The limits a session applies besides its page's budget."""

    updates: UpdateLimits
    chat: ChatLimits
    max_protocol_errors: int
    """Refused requests before the connection is closed (1008)."""
    counts: SessionCounts = field(default_factory=SessionCounts)
    """Where the sessions count their refusals and rate limiting (for metrics)."""


class Session:
    """One connection's protocol state and rules (see the module docstring)."""

    __slots__ = ("hub", "conn", "budget", "rules", "state", "updates_in_flight", "_errors",
                 "_paced", "_host_ms_offset")

    def __init__(self, hub: RealtimeHub, conn: Connection, budget: PageBudget,
                 rules: SessionRules) -> None:
        self.hub = hub
        self.conn = conn
        self.budget = budget
        """The page's allowance, shared with its other connections."""
        self.rules = rules
        self.state = State.OPEN
        self.updates_in_flight = 0
        """Updates handed to the store whose outcome was not told back yet."""
        self._errors = 0
        self._paced: set[str] = set()  # budgets pacing this connection now
        self._host_ms_offset = 0.0  # the host's clock in ms, less `now` in ms

    # -- what arrives --------------------------------------------------------------------

    def greet(self, self_addr: str, self_name: str, limits: wire.HelloLimits,
              host_ms: float = 0.0, now: float = 0.0) -> tuple[Effect, ...]:
        """The connection opened: its first frame says who the page is, the limits, and
        the host's clock `host_ms` (ms since the Unix epoch) at `now` (the clock the other
        events are given), by which the items of a connection that does not stamp them
        are stamped."""
        self._host_ms_offset = host_ms - now * 1000.0
        return (Send(wire.encode_hello(self_addr, self_name, limits, host_ms)),)

    def receive_item(self, payload: bytes, now: float) -> tuple[Effect, ...]:
        """A binary frame: one realtime item for the channel, its stamp first if the
        connection's join said so; stamped here (the stamp beside it) if not."""
        taken = self.item_or_effects(payload, now)
        return ((Publish(self.conn.topic, taken),) if type(taken) is Published
                else cast(tuple[Effect, ...], taken))

    def item_or_effects(self, payload: bytes, now: float) -> Published | tuple[Effect, ...]:
        """`receive_item` for the host's read path (once per item): the item alone when
        publishing it is all there is to do, else the effects `receive_item` returns;
        `receive_item` is this, with the item as `(Publish(conn.topic, item),)`."""
        if self.state is _JOINED:  # the hot path, as TRANSITIONS allows it
            # The host's stamp goes beside the payload: the payload is never copied.
            offset = self._host_ms_offset
            stamp = None if self.conn.stamped else _pack_stamp(now * 1000.0 + offset)
            try:
                item, wait = self.hub.send(self.conn, payload, now, stamp)
            except Refusal as exc:
                return self._refused(exc)
            if wait <= 0 and not self._paced:
                return item
            publish = _new_tuple(Publish, (self.conn.topic, item))
            budget = self.conn.budget
            if wait > 0 and isinstance(budget, SharedSendBudget) and budget.holding:
                return (publish, Hold(wait, budget))  # not over: not told it is slowed
            return (publish, *self._pace("items", wait, _items_text(self.hub.limits)))
        try:
            self._event(Event.ITEM)  # refused while open; ignored while going away
        except Refusal as exc:
            return self._refused(exc)
        return ()

    def retry(self, message: wire.UpdateSend | wire.SendToChat,
              now: float) -> tuple[Effect, ...]:
        """The message of a `HoldMessage` once the pool answered: refused this time if
        the share is still spent (its control budget was charged when it arrived)."""
        if self._event(Event.CONTROL, check_only=True) is not None:
            return ()  # the connection is going away
        try:
            return self._on_message(message, now, may_hold=False)
        except Refusal as exc:
            return self._refused(exc, wire.update_id_of(message))

    def held(self, share: SharedSendBudget, now: float) -> tuple[Effect, ...]:
        """A `Hold` is over (the pool answered, or it ran out): the page is paced, and told
        so, if the answer showed it over its allowance, before another item is read."""
        return self._pace("items", share.over(now), _items_text(self.hub.limits))

    def receive_text(self, text: str, now: float) -> tuple[Effect, ...]:
        """A text frame: one control message."""
        if self._event(Event.CONTROL, check_only=True) is not None:
            return ()  # ignored: the connection is going away
        message: wire.ClientMessage | None = None
        try:
            message = wire.decode_client_message(text)
            effects = self._on_message(message, now)
        except Refusal as exc:
            effects = self._refused(exc, wire.update_id_of(message))
        # Charged whichever of the page's connections sent it, after it was carried out
        # (so that `joined` is written before anything else is), then paced. Reports of
        # what was read have their own budget: a fast reader sends many.
        if type(message) is wire.Received:
            budget, what, bucket = "receipts", "'received' reports", self.budget.receipts
        else:
            budget, what, bucket = "control", "control messages", self.budget.control
        wait = bucket.charge(1, now)
        if wait > 0 or budget in self._paced:
            effects = (*effects, *self._pace(budget, wait, _slowed_text(what, bucket)))
        return effects

    # -- what happens to the link ------------------------------------------------------

    def close(self, code: int, reason: str) -> tuple[Effect, ...]:
        """The host closes the connection (shutdown, the member disconnected)."""
        ignored = self._event(Event.CLOSE)
        if ignored is not None:
            return ()
        return (*self._leave_channel(), Close(code, reason))

    def cut_off(self) -> tuple[Effect, ...]:
        """The connection did not take what it was sent in time: out of the channel now;
        its close frame is the shell's to send."""
        if self._event(Event.CUT_OFF) is not None:
            return ()
        return self._leave_channel()

    def link_lost(self) -> tuple[Effect, ...]:
        """The link ended (closed by either side, or broken): counts as leaving (R17)."""
        if self.state is State.CLOSED:
            return ()
        self._event(Event.LINK_LOST)
        return self._leave_channel()

    # -- what came of the effects on the store ---------------------------------------------

    def update_stored(self, effect: StoreUpdate, serial: int,
                      before: bool = False) -> tuple[Effect, ...]:
        """The update of `effect` is stored under `serial` (now, or `before` under its id;
        its listeners, the sender's own included, were sent it then): its place in the
        window is free, and a sender that named it is told so. A resend found stored before
        stored nothing and sent nothing, so it gives back what it took of the page's update
        allowance: a page resending what a lost link left unanswered keeps its allowance
        for new updates."""
        self.updates_in_flight -= 1
        if before:
            self.budget.updates.refund(1)
        if effect.id is None:
            return ()
        return (Send(wire.encode_update_stored(effect.id, serial)),)

    def message_stored(self, effect: StoreMessage) -> tuple[Effect, ...]:
        """The store kept the chat message of `effect`: its request is answered ok."""
        return (Send(wire.encode_reply(effect.request_id)),)

    def messages_listed(self, effect: ListMessages, messages: list[dict[str, Any]],
                        more: bool) -> tuple[Effect, ...]:
        """The store read the chat messages `effect` asked for (`more`: older ones remain):
        the answer to its request."""
        return (Send(wire.encode_chat_messages(effect.request_id, messages, more)),)

    def storage_failed(self, effect: StorageEffect, error: Refusal) -> tuple[Effect, ...]:
        """The store failed to carry out `effect`, for the reason `error` gives: what to
        answer, and whether to close. A chat message's quota is given back. Not counted
        toward the refused-request cap: the client did nothing wrong."""
        self.rules.counts.refused[error.code] += 1
        refusal = (error.code, str(error))
        if isinstance(effect, StoreMessage):
            if self.budget.chat_stored_bytes is not None:
                self.budget.chat_stored_bytes -= effect.message.size
            return (Send(wire.encode_reply(effect.request_id, refusal)),)
        if isinstance(effect, ListMessages):
            return (Send(wire.encode_reply(effect.request_id, refusal)),)
        if isinstance(effect, StoreUpdate):
            self.updates_in_flight -= 1
            return (Send(wire.encode_error(*refusal, effect.id)),)
        notice = Send(wire.encode_error(*refusal))
        # A replay that failed: the page would wait for its backlog forever. It is told why
        # and disconnected (out of its channel first), and reconnects to listen again.
        closing = self.close(INTERNAL_ERROR, "storage unavailable")
        if not closing:
            return ()  # the connection is going away already
        *leave, close = closing
        return (*leave, notice, close)

    # -- rules -----------------------------------------------------------------------------

    def _on_message(self, message: wire.ClientMessage, now: float,
                    may_hold: bool = True) -> tuple[Effect, ...]:
        if isinstance(message, wire.Join):
            self._event(Event.JOIN)
            first = self.hub.join(self.conn)
            self.conn.stamped = message.stamped
            joined = Send(wire.encode_joined(message.epoch, now * 1000.0 + self._host_ms_offset))
            return (Subscribe(self.conn.topic), joined) if first else (joined,)
        if isinstance(message, wire.Received):
            return (Receipt(message.bytes),)
        if isinstance(message, wire.Leave):
            self._event(Event.LEAVE)
            if self.hub.leave(self.conn):
                return (_DISCARD, Unsubscribe(self.conn.topic))
            return (_DISCARD,)
        if isinstance(message, wire.UpdateSend):
            store = self._update(message, now, may_hold)
            if isinstance(store, HoldMessage):
                return (store,)
            self.updates_in_flight += 1
            window = self.rules.updates.max_in_flight_per_socket
            if self.updates_in_flight >= window:
                return (store, AwaitCommit(window))
            return (store,)
        if isinstance(message, wire.UpdateListen):
            wait = self.budget.listens.charge(1, now)  # paced: a reload loop waits its turn
            replay: tuple[Effect, ...] = (Replay(message.listen, message.serial),)
            if self.updates_in_flight:
                replay = (_AWAIT_ALL_COMMITS, *replay)
            return (Pause(wait), *replay) if wait > 0 else replay
        if isinstance(message, wire.SendToChat):
            return (self._chat_message(message, now, may_hold),)
        return (ListMessages(message.id, message.before),)

    def _update(self, message: wire.UpdateSend, now: float,
                may_hold: bool) -> StoreUpdate | HoldMessage:
        update = validate_update(message.update, self.rules.updates)
        if not self.budget.updates.try_take(1, now):
            held = _held(self.budget.updates, message, may_hold)
            if held is not None:
                return held
            limits = self.rules.updates
            raise UpdateError(f"updates sent faster than one per {limits.interval_ms} ms "
                              f"(after a burst of {limits.burst}): this one was refused",
                              "update-rate")
        return StoreUpdate(update, message.id)

    def _chat_message(self, request: wire.SendToChat, now: float,
                      may_hold: bool = True) -> Effect:
        """A sendToChat is answered by its own reply, ok or not, and never counts toward
        the refused-request cap: an app that hits its quota is told so, once."""
        limits, budget = self.rules.chat, self.budget
        try:
            message = validate_message(request.text, request.file_name, request.file_base64,
                                       limits)
        except Refusal as exc:
            return self._refused_message(request.id, exc.code, str(exc))
        stored = budget.chat_stored_bytes or 0
        if stored + message.size > limits.max_stored_bytes:
            return self._refused_message(
                request.id, "chat-quota", f"this page has stored {stored} bytes of chat "
                f"messages; the limit is {limits.max_stored_bytes} bytes")
        if not budget.chat.try_take(1, now):
            held = _held(budget.chat, request, may_hold)
            if held is not None:
                return held
            return self._refused_message(
                request.id, "chat-rate", f"messages posted faster than "
                f"{limits.messages_per_s:g} per second (after {limits.messages_burst} at "
                "once): this one was refused")
        budget.chat_stored_bytes = stored + message.size
        return StoreMessage(request.id, message)

    def _refused_message(self, request_id: int, code: str, text: str) -> Send:
        self.rules.counts.refused[code] += 1
        return Send(wire.encode_reply(request_id, (code, text)))

    def _refused(self, exc: Refusal, update_id: str | None = None) -> tuple[Effect, ...]:
        self.rules.counts.refused[exc.code] += 1
        self._errors += 1
        error = Send(wire.encode_error(exc.code, str(exc), update_id))
        if self._errors < self.rules.max_protocol_errors:
            return (error,)
        # Out of the channel first, before anything that may wait: then the error, then
        # the close frame.
        *leave, close = self.close(POLICY_VIOLATION, "too many refused requests")
        return (*leave, error, close)

    def _pace(self, budget: str, wait: float, text: str) -> tuple[Effect, ...]:
        """Pause reading while the page is over `budget`; the first pause of an episode is
        told to the client with a `rate-limited` error (not a refusal: nothing is lost)."""
        if wait <= 0:
            self._paced.discard(budget)
            return ()
        if budget in self._paced:
            return (Pause(wait),)
        self._paced.add(budget)
        self.rules.counts.rate_limited[budget] += 1
        return (Send(wire.encode_error("rate-limited", text)), Pause(wait))

    # -- the table -------------------------------------------------------------------------

    def _event(self, event: Event, check_only: bool = False) -> Event | None:
        """Apply `event` to the state by the table. Returns the event when it is to be
        ignored, None when it took effect; raises the refusal the table names, or
        `SessionStateError` for an event the state does not allow."""
        state = self.state
        if (state, event) in IGNORED:
            return event
        refusal = REFUSED.get((state, event))
        if refusal is not None:
            raise refusal(_REFUSAL_TEXT[(state, event)])
        target = TRANSITIONS[state].get(event)
        if target is None:
            raise SessionStateError(state.value, event.value)
        if not check_only:
            self.state = target
        return None

    def _leave_channel(self) -> tuple[Effect, ...]:
        return (Unsubscribe(self.conn.topic),) if self.hub.close(self.conn) else ()


def _held(bucket: TokenBucket, message: wire.UpdateSend | wire.SendToChat,
          may_hold: bool) -> HoldMessage | None:
    """`message` held for its page's pool, if `bucket` is a share asking for more."""
    if may_hold and isinstance(bucket, SharedTokenBucket) and bucket.asking:
        return HoldMessage(bucket.hold_s, bucket, message)
    return None


def _items_text(limits: RealtimeLimits) -> str:
    return (f"sending faster than {limits.send_items_per_s:g} items/s or "
            f"{limits.send_bytes_per_s:g} bytes/s: reading from this page is slowed")


def _slowed_text(what: str, bucket: TokenBucket) -> str:
    return (f"sending {what} faster than {bucket.rate:g}/s (after {bucket.burst:g} at "
            "once): reading from this page is slowed")
