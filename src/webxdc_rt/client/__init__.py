"""The Python peer: take part in a shared app as one of its members: its realtime channel,
its status updates, and what it posts to the chat.

    peer = await connect(url)            # an invite link printed by `webxdc-rt serve`
    ch = peer.join_realtime_channel()
    ch.set_listener(lambda data: print(data))
    await ch.joined()                    # optional: wait until the host applied the join
    ch.send(b"hello")
    ch.leave()
    await peer.close()

It follows the same rules as the browser bridge: `send` checks type and size at once
(TypeError, ValueError), never echoes, and a join made while another is active raises
RuntimeError. Sending does not block: items go through a bounded queue, written in order by
a background task; `await channel.drain()` waits until everything sent was written.

Realtime items are the one thing it drops, as the host does: an item that waited in the
queue longer than `max_item_wait_s` (the host or the link is slower than the app sends), or
that finds `max_pending_item_bytes` of items queued, is dropped with one warning per episode
rather than sent seconds late, since stale realtime data is worse than none; one that arrives
older than the host's `max_item_age_ms` since it was sent (`wire.items`) is dropped too. It
tells the host what it has read (`received` reports), so the host keeps what is in flight to
it small when it reads slowly. `peer.stats` counts both.

With `connect(url, reconnect=Reconnect(...))` (or `reconnect=True`) the peer outlives a lost
link: it dials the same invite link again with jittered exponential backoff, joins its
channel again, restarts its update listener after the last update it passed on (none missed,
none repeated), and sends again, with the same ids, the status updates the host has not
confirmed stored (kept up to `Reconnect.max_unstored_update_bytes`). Realtime items sent
while there is no link are dropped and counted (`stats.items_dropped_offline`). It reports
each `LinkEvent` (UP, DOWN, CLOSED) to `on_link` and `peer.link_events()`, and gives up only
when the host refuses the invite (`InviteRefused`) or its `Reconnect` limits run out
(`LinkLost`); `await peer.wait_closed()` raises that error.

The package's modules: `peer` (the `Peer` and `connect`), `channel` (`RealtimeChannel`),
`link` (one socket: dialling, reading, writing), `sendqueue` (what waits to be written, and
`PeerStats`), `reconnect` (`Reconnect`, link events, dialling again), `listening` (the update
listener), `outbox` (updates not yet confirmed stored), `answers` (requests in flight),
`errors`.
"""

from __future__ import annotations

from .channel import Listener, RealtimeChannel
from .errors import InviteRefused, LinkLost, UnstoredUpdatesFull
from .link import (
    DEFAULT_MAX_ITEM_WAIT_S,
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_ITEM_BYTES,
    INVITE_MARKER,
    MIN_REPORT_BYTES,
    REPORT_DELAY_S,
    SOCKET_PATH,
)
from .listening import UpdateListener
from .peer import Peer, connect
from .reconnect import (
    DEFAULT_MAX_UNSTORED_UPDATE_BYTES,
    LINK_EVENTS_KEPT,
    LinkEvent,
    LinkState,
    Reconnect,
)
from .sendqueue import PeerStats

__all__ = ["InviteRefused", "LinkLost", "UnstoredUpdatesFull", "Peer", "PeerStats",
           "RealtimeChannel", "connect", "Reconnect", "LinkEvent", "LinkState", "Listener",
           "UpdateListener", "DEFAULT_MAX_PENDING_BYTES", "DEFAULT_MAX_PENDING_ITEM_BYTES",
           "DEFAULT_MAX_ITEM_WAIT_S", "DEFAULT_MAX_UNSTORED_UPDATE_BYTES", "LINK_EVENTS_KEPT",
           "INVITE_MARKER", "SOCKET_PATH", "MIN_REPORT_BYTES", "REPORT_DELAY_S"]
