"""What a Redis broker tells the log, each thing once: that Redis is unreachable (and when
both connections are back, how many items could not cross meanwhile), that it refused a
command, that a message on a channel was not an item. A flood of the same trouble costs one
line, never one per item."""

from __future__ import annotations

import logging
import time

import hiredis

from .address import RedisAddress
from .counts import BrokerCounts

__all__ = ["Reports", "Side", "is_redirect"]

log = logging.getLogger(__name__)

Side = str
"""Which of the broker's connections: "publisher" or "subscriber", on a cluster followed
by the node's address."""
_SIDES = frozenset({"publisher", "subscriber"})


def is_redirect(reply: hiredis.ReplyError) -> bool:
    """A cluster node's answer that another node serves the channel (`MOVED`, `ASK`)."""
    return str(reply).startswith(("MOVED ", "ASK "))


class Reports:
    """The state of both connections to Redis, and the warnings about them."""

    def __init__(self, address: RedisAddress, counts: BrokerCounts) -> None:
        self._address = address
        self._counts = counts
        self._up: set[Side] = set()
        self._expected: frozenset[Side] = _SIDES
        self._outage_since: float | None = None
        self._dropped_before_outage = 0
        self._malformed_reported = False
        self._refusal_reported = False

    @property
    def connected(self) -> bool:
        """Every connection to Redis is up: items cross, and arrive."""
        return bool(self._expected) and self._expected <= self._up

    def expect(self, sides: frozenset[Side]) -> None:
        """The connections there are now (the nodes of a cluster change)."""
        self._expected = sides
        self._up &= sides

    def link_up(self, side: Side) -> None:
        """One connection is up; once both are after an outage, say so."""
        self._up.add(side)
        if self.connected and self._outage_since is not None:
            dropped = self._counts.dropped - self._dropped_before_outage
            log.warning("broker: %s reachable again after %.1f s; %d realtime "
                        "items could not cross between processes meanwhile", self._address,
                        time.monotonic() - self._outage_since, dropped)
            self._outage_since = None

    def link_down(self, side: Side) -> None:
        """One connection is down (lost, or closed for good)."""
        self._up.discard(side)

    def unreachable(self, reason: str) -> None:
        """A connection was lost or could not be made: the first time in an outage, say
        so."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._dropped_before_outage = self._counts.dropped
            log.warning("broker: %s unreachable (%s); realtime items reach this "
                        "process's pages only until it is back (retrying)", self._address,
                        reason)

    def refused(self, reply: hiredis.ReplyError) -> None:
        """Redis refused a command."""
        if not self._refusal_reported:
            self._refusal_reported = True
            text = str(reply).lower()
            hint = (" (sharded pub/sub needs Redis 7 or later)" if "unknown command" in text
                    else " (a Redis Cluster: use a redis+cluster:// URL)"
                    if is_redirect(reply) else "")
            log.warning("broker: %s refused a command: %s%s", self._address, reply, hint)

    def malformed(self) -> None:
        """A message on one of this process's channels was not an item: count it."""
        self._counts.malformed += 1
        if not self._malformed_reported:
            self._malformed_reported = True
            log.warning("broker: dropped a message on a channel of %s that is not "
                        "a realtime item (counted, not reported again)", self._address)
