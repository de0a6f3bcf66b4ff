"""How a peer reconnects after a lost link, and the link events it reports."""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from ..core.errors import Refusal
from .errors import InviteRefused, LinkLost
from .link import Opened, open_socket

__all__ = ["DEFAULT_MAX_UNSTORED_UPDATE_BYTES", "Backoff", "LinkEvent", "LinkState",
           "LinkEvents", "Reconnect", "redial"]

log = logging.getLogger(__name__.rpartition(".")[0])

DEFAULT_MAX_UNSTORED_UPDATE_BYTES = 4 * 1024 * 1024
"""Bytes of status updates a reconnecting peer keeps until the host confirms them stored."""


@dataclass(frozen=True, slots=True)
class Reconnect:
    """When a reconnecting peer dials its invite link again after the link was lost (not
    after the host refused the invite: that ends the peer with `InviteRefused`).

    The first attempt waits `first_delay_s`; each further one waits twice as long as the
    one before, up to `max_delay_s`; each wait is shortened by a random fraction of up to
    `jitter` of it, so that many peers cut off together do not all come back in the same
    instant. A link lost less than `max_delay_s` after it opened (a host that closes every
    link at once) does not start the waits again: they go on from where the last lost link
    left them, so such a host is not dialled ten times a second, and sent every update
    not confirmed stored each time, for ever. It tries for ever unless `max_attempts`
    (attempts per lost link) or `give_up_after_s` (seconds since the link was lost) says
    otherwise; then the peer ends with `LinkLost`."""

    first_delay_s: float = 0.1
    """Wait before the first attempt after a link was lost."""
    max_delay_s: float = 10.0
    """Longest wait between two attempts."""
    jitter: float = 0.5
    """Largest fraction of a wait taken off it at random (0: none, 1: up to all of it)."""
    max_attempts: int | None = None
    """Attempts per lost link before giving up; None: never give up on this count."""
    give_up_after_s: float | None = None
    """Seconds since the link was lost after which no further attempt is made; None:
    never give up on time."""
    max_unstored_update_bytes: int = DEFAULT_MAX_UNSTORED_UPDATE_BYTES
    """Bytes of status updates (as sent) kept until the host confirms them stored; past it
    `send_update` raises `UnstoredUpdatesFull` rather than keep more."""

    def __post_init__(self) -> None:
        if not 0 < self.first_delay_s <= self.max_delay_s:
            raise ValueError("Reconnect needs 0 < first_delay_s <= max_delay_s")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Reconnect.jitter is a fraction from 0 to 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("Reconnect.max_attempts must be at least 1 (or None)")
        if self.max_unstored_update_bytes < 1:
            raise ValueError("Reconnect.max_unstored_update_bytes must be positive")

    def delays(self, rng: random.Random | None = None, grown: int = 0) -> Iterator[float]:
        """The waits before each attempt, jittered: as many as `max_attempts` allows; the
        first doubled `grown` times (up to `max_delay_s`)."""
        draw = (rng or random).random
        delay = min(self.first_delay_s * 2.0 ** min(grown, 64), self.max_delay_s)
        attempt = 0
        while self.max_attempts is None or attempt < self.max_attempts:
            attempt += 1
            yield delay * (1 - self.jitter * draw())
            delay = min(delay * 2, self.max_delay_s)


class LinkState(enum.Enum):
    """Where a peer's link stands."""

    UP = "up"
    """A new link is open; the channel's join, the update listener and the updates not yet
    confirmed stored were sent on it (await `channel.joined()` for the join to apply)."""
    DOWN = "down"
    """The link was lost; the peer is dialling again."""
    CLOSED = "closed"
    """The peer ended: closed by the program, or it gave up (`error` says why)."""


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """One change of a peer's link, in the order they happened."""

    state: LinkState
    reason: str
    """What happened, for people."""
    attempt: int = 0
    """For UP after a lost link: which attempt succeeded (1: the first)."""
    error: Refusal | None = None
    """For CLOSED when the peer gave up: `InviteRefused` or `LinkLost`."""


LINK_EVENTS_KEPT = 64
"""Link events `Peer.link_events()` holds for a program that has not read them; older
ones are dropped."""


class LinkEvents:
    """A peer's link events: to its callback as they happen, and kept (bounded) for
    `iterate`."""

    def __init__(self, callback: Callable[[LinkEvent], object] | None) -> None:
        self._callback = callback
        self._kept: deque[LinkEvent] = deque(maxlen=LINK_EVENTS_KEPT)
        self._emitted = 0
        self._added = asyncio.Event()

    def emit(self, event: LinkEvent) -> None:
        """Report one event."""
        log.info("link %s: %s", event.state.value, event.reason)
        self._kept.append(event)
        self._emitted += 1
        self._added.set()
        if self._callback is not None:
            try:
                self._callback(event)
            except Exception:
                log.exception("link event callback raised")

    async def iterate(self) -> AsyncIterator[LinkEvent]:
        """The events from now on, until CLOSED (the last one)."""
        seen = self._emitted
        while True:
            while seen >= self._emitted:
                self._added.clear()
                await self._added.wait()
            first_kept = self._emitted - len(self._kept)  # older ones were dropped
            fresh = list(self._kept)[max(seen - first_kept, 0):]
            seen = self._emitted
            for event in fresh:
                yield event
                if event.state is LinkState.CLOSED:
                    return


class Backoff:
    """How far a peer's waits have grown across its lost links: a link lost less than
    `Reconnect.max_delay_s` after it opened goes on from the waits that opened it."""

    __slots__ = ("quick", "opened_at")

    def __init__(self) -> None:
        self.quick = 0
        """Links in a row lost soon after they opened."""
        self.opened_at = time.monotonic()

    def lost(self, policy: Reconnect) -> int:
        """A link was lost now: how many times the first wait is doubled."""
        soon = time.monotonic() - self.opened_at < policy.max_delay_s
        self.quick = self.quick + 1 if soon else 0
        return self.quick


async def redial(url: str, policy: Reconnect, timeout: float,
                 backoff: Backoff | None = None) -> tuple[Opened, int]:
    """Dial invite link `url` again, waiting `policy.delays()` (grown on by `backoff`)
    before each attempt; the socket opened and which attempt it was. Raises
    InviteRefused as soon as the host refuses the invite, LinkLost when the policy gives
    up."""
    lost_at = time.monotonic()
    attempt = 0
    grown = 0 if backoff is None else backoff.lost(policy)
    for delay in policy.delays(grown=grown):
        attempt += 1
        if (policy.give_up_after_s is not None
                and time.monotonic() + delay - lost_at > policy.give_up_after_s):
            break
        await asyncio.sleep(delay)
        try:
            opened = await open_socket(url, timeout)
        except InviteRefused:
            raise
        except (ConnectionError, TimeoutError, OSError) as exc:
            log.info("reconnecting: attempt %d failed: %s", attempt, exc)
            continue
        if backoff is not None:
            backoff.opened_at = time.monotonic()
        return opened, attempt
    raise LinkLost(f"gave up reconnecting after {attempt} attempts in "
                   f"{time.monotonic() - lost_at:.1f} s (Reconnect.max_attempts "
                   f"{policy.max_attempts}, give_up_after_s {policy.give_up_after_s})")
