"""`RedisClusterShares`: the pools of pages' budgets (`budgets`) on a Redis Cluster. Each
page's pool is one key, under a hash tag of its own, so it lives in one hash slot; its
requests go to the primary that serves that slot, over one connection per primary kept for
requests only (`budgets.PoolLink`), so that an answer never waits behind the items a
publishing connection is writing.

The slot map is the cluster broker's (`cluster.RedisClusterBroker` hands over each map it
learns, `use`). A node that no longer serves a pool says where it is now: on `MOVED` (the
slot moved) the request is sent again to the node named, and the broker learns the map
again; on `ASK` (the slot is being moved and the pool is already on the node named) it is
sent there after `ASKING`; a node refuses a request it does not apply, so it is applied once,
where the pool is. A request whose primary is unreachable or not known yet, or whose
connection ended while it was in flight (it may or may not have been applied), is answered
from this process's own pool with the debt it carried (fail open, as on one Redis), until
the map names a primary that answers. So no request's debt is lost, and none is applied to
the pools in Redis twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import hiredis

from ...core.shares import Shared
from ..limits import BrokerLimits
from .address import RedisAddress
from .budgets import REPLY_BYTES, LocalPools, Pending, PoolLink, pool_key
from .link import keep_link
from .topology import Node, SlotMap, key_slot

__all__ = ["RedisClusterShares", "MAX_REDIRECTS"]

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
"""How often one request follows `MOVED`/`ASK` before it is answered here (nodes that
disagree about a slot while it moves would otherwise send it back and forth)."""
_SLOTS_KEPT = 4096
"""Pages whose pool's hash slot is remembered."""


class RedisClusterShares:
    """The `core.shares.ShareSource` of a host process whose pages' budgets are pooled in a
    Redis Cluster. Its connections follow the slot map its broker hands over (`use`);
    `close()` it after use. `stale` is called when a node says the map changed."""

    def __init__(self, address: RedisAddress, limits: BrokerLimits,
                 stale: Callable[[], None]) -> None:
        self.address = address
        self.limits = limits
        self.local = LocalPools(address)
        self._stale = stale
        self._owners: list[Node | None] = []
        self._pools: dict[Node, PoolLink] = {}
        self._tasks: dict[Node, asyncio.Task[None]] = {}
        self._retired: set[asyncio.Task[None]] = set()
        self._slot_of_page: dict[str, int] = {}

    async def start(self) -> None:
        """Nothing to do: connections open as the broker learns the slot map."""

    async def close(self) -> None:
        """Stop: close every connection; requests from now on are answered here."""
        for node in list(self._tasks):
            self._retire(node)
        await asyncio.gather(*self._retired, return_exceptions=True)

    def use(self, learned: SlotMap) -> list[asyncio.Future[None]]:
        """Send requests by `learned` from now on: connect to its new primaries and close
        the connections to nodes that serve no slot (their requests in flight are sent
        again by the map); the first attempts of the new connections."""
        self._owners = learned.owners
        loop = asyncio.get_running_loop()
        starting: list[asyncio.Future[None]] = []
        for node in learned.nodes - set(self._pools):
            pools = self._pools[node] = PoolLink(self.address.db, self._refused,
                                                 self._unanswered, self._up,
                                                 self.limits.budget_answer_timeout_s)
            first: asyncio.Future[None] = loop.create_future()
            starting.append(first)
            self._tasks[node] = loop.create_task(keep_link(
                self.address.at(*node), self.limits, pools, REPLY_BYTES, first))
        for node in set(self._pools) - learned.nodes:
            self._retire(node)
        return starting

    def _retire(self, node: Node) -> None:
        self._pools.pop(node, None)
        task = self._tasks.pop(node)
        task.cancel()
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    # -- the ShareSource protocol ---------------------------------------------------------

    def ask(self, share: Shared) -> None:
        """Send the request of `share` to the primary of its pool, or answer it here while
        that is unreachable or not known."""
        self._send(Pending(share, share.key, share.request()))

    def give_back(self, share: Shared) -> None:
        """Return what `share` holds to its pool (nothing to answer)."""
        self._send(Pending(None, share.key, share.release()))

    def _send(self, pending: Pending) -> None:
        pools = self._pools_of(pending.key)
        if pools is None or not pools.send(pending):
            self.local.answer(pending)

    def _pools_of(self, page: str) -> PoolLink | None:
        """The connection to the primary of `page`'s pool, as the slot map says."""
        slot = self._slot_of_page.get(page)
        if slot is None:
            if len(self._slot_of_page) >= _SLOTS_KEPT:
                self._slot_of_page.clear()
            slot = self._slot_of_page[page] = key_slot(
                pool_key(self.address.db, page).encode())
        node = self._owners[slot] if self._owners else None
        return self._pools.get(node) if node is not None else None

    # -- what the connections report ------------------------------------------------------

    def _refused(self, pending: Pending, reply: Any) -> None:
        """A node did not apply `pending`: send it where the node says the pool is now, or
        answer it here."""
        redirect = _redirect(reply)
        if redirect is None:
            log.warning("budgets: %s refused a request (%s)", self.address, reply)
            self.local.answer(pending)
            return
        moved, node = redirect
        if moved:
            self._stale()
        pending.redirects += 1
        pools = self._pools.get(node)
        if pending.redirects > MAX_REDIRECTS or pools is None \
                or not pools.send(pending, asking=not moved):
            self.local.answer(pending)

    def _unanswered(self, waiting: list[Pending], broke: bool) -> None:
        """A connection ended with requests in flight: each may or may not have been
        applied, so none is sent again (that could apply it twice); each is answered here,
        as on one Redis."""
        if broke:
            self._stale()  # the primary may have failed over to its replica
        for pending in waiting:
            self.local.answer(pending)

    def _up(self) -> None:
        if all(pools.alive for pools in self._pools.values()):
            self.local.recovered()


def _redirect(reply: Any) -> tuple[bool, Node] | None:
    """(True for `MOVED`, False for `ASK`; the node named) when `reply` is either; else
    None."""
    if not isinstance(reply, hiredis.ReplyError):
        return None
    words = str(reply).split()
    if len(words) != 3 or words[0] not in ("MOVED", "ASK"):
        return None
    host, _, port = words[2].rpartition(":")
    if not host or host == "?" or not port.isdigit():
        return None  # a node that does not know the other's address: learn the map
    return words[0] == "MOVED", (host.strip("[]"), int(port))
