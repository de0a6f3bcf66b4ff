"""The host's settings: its options and the limits it applies to members, each with its
documented default, and what every connection's `hello` tells of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..brokers.limits import BrokerLimits
from ..core import wire
from ..core.limits import (
    ChatLimits,
    DeliveryLimits,
    RealtimeLimits,
    UpdateLimits,
    require_non_negative,
    require_positive,
)
from ..model.sharing import HomeLimits
from ..stores.api import StoreLimits

__all__ = ["HostSettings", "hello_limits"]

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class HostSettings:
    """The host's options and the limits it applies to members, with their documented
    defaults (what a `.xdc` may hold is `xdc.ContainerLimits`; the nesting of JSON is the
    protocol's `wire.MAX_JSON_DEPTH`)."""

    realtime: RealtimeLimits = field(default_factory=RealtimeLimits)
    updates: UpdateLimits = field(default_factory=UpdateLimits)
    chat: ChatLimits = field(default_factory=ChatLimits)
    delivery: DeliveryLimits = field(default_factory=DeliveryLimits)
    home: HomeLimits = field(default_factory=HomeLimits)
    broker: BrokerLimits = field(default_factory=BrokerLimits)
    store: StoreLimits = field(default_factory=StoreLimits)
    domain: str = "localhost"
    """Pages are served at `<label>.<domain>`; `*.localhost` needs no DNS in browsers."""
    scheme: str = "http"
    """Scheme of the invite links (`https` behind a TLS proxy)."""
    public_port: int | None = None
    """Port in invite links when it differs from the one bound (behind a proxy)."""
    max_connections: int = 20_000
    """WebSocket connections the host accepts in all."""
    max_connections_per_page: int = 64
    """WebSocket connections one member's page may hold at once (tabs, devices)."""
    listen_backlog: int = 1024
    """Connections the kernel holds for the host to accept (the listen backlog; the kernel
    caps it at `net.core.somaxconn`). Past it a connecting client's handshake is dropped and
    retried a second later: a thousand pages reconnecting at once after a restart must not
    wait on that."""
    max_http_connections_per_page: int = 32
    """Plain HTTP (kept-alive) connections one member's page may hold at once, all its
    tabs and devices together (a browser opens up to 6 per origin). A request that would go
    over it closes the page's connection idle the longest; if none of them is idle, it is
    refused (503) and its connection closed."""
    max_frame_bytes: int = 1 * MiB
    """Bound on a WebSocket message read: one of this size or longer closes the connection
    (code 1009). Above `realtime.max_payload_bytes` plus an item's 8-byte stamp."""
    max_outbound_bytes: int = 16 * MiB
    """Bytes of frames that are never dropped (status updates, chat messages, control
    frames) waiting to be written to one connection; more and it is cut off as too slow.
    Realtime items are held and dropped by `delivery` instead."""
    close_grace_s: float = 5.0
    """How long a connection being cut off gets to take its close frame before it is dropped."""
    max_protocol_errors: int = 32
    """Refused requests one connection may make before it is disconnected (code 1008)."""
    control_per_s: float = 100.0
    """Control messages (text frames) one page may send per second, sustained; a page
    over it is not read from until it is back within it."""
    control_burst: int = 200
    """Control messages one page may send at once before the pace applies."""
    heartbeat_s: float = 30.0
    """Ping interval that finds dead links, which then count as having left (R17)."""
    bridge_max_pending_items: int = 1024
    """Items the browser bridge queues while its link is down (R9); more are dropped. Also
    the status updates it keeps until the host says they are stored (to send them again
    on a new link); past that `sendUpdate` throws."""
    bridge_max_pending_bytes: int = 16 * MiB
    """Bytes the browser bridge queues while its link is down; and bytes of status updates
    it keeps until they are stored."""
    bridge_max_buffered_bytes: int = 4 * MiB
    """Bytes the browser bridge lets wait in its open socket (`bufferedAmount`): a
    realtime item sent while the socket holds this much is dropped."""
    bridge_max_buffered_ms: float = 100.0
    """Milliseconds of sending the browser bridge lets wait in its open socket, by the rate
    the socket was seen to drain: a realtime item sent while what it holds would take longer
    to leave is dropped, so a page that sends faster than the host takes loses items rather
    than queueing seconds of them (an app's burst of a window of items is not cut into)."""
    max_tcp_connections: int = 25_000
    """TCP connections the host holds in all (pages, WebSockets, and those that have not shown
    an invite yet). At the cap the oldest connection without a valid invite is closed to make
    room; if every one has shown an invite, the longest idle connection of the member page
    holding the most, if that is more than its share of the cap; else the newcomer is
    closed."""
    fd_reserve: int = 64
    """File descriptors kept free below the open-file limit (RLIMIT_NOFILE) for the store,
    logs and listening sockets: the connection cap is lowered to the limit minus this."""
    header_timeout_s: float = 10.0
    """Seconds a new connection has to show a valid invite (its link, the page's cookie or
    bearer token) in a complete request; then it is closed. A request refused for want of an
    invite closes its connection at once."""
    idle_timeout_s: float = 30.0
    """Seconds a kept-alive connection may take, after a response, until its next request
    head is complete; then it is closed. WebSockets are watched by `heartbeat_s` instead."""
    max_preauth_bytes: int = 16 * KiB
    """Bytes of request head a connection may send before it has shown a valid invite; more
    get 431 and a close. Bounds the memory unauthenticated connections hold. A body (an
    upload) is not counted: it is read only once its handler checked the invite."""
    max_request_line_bytes: int = 8190
    """Longest request line (method, path, version); a longer one gets 400 and a close."""
    max_header_bytes: int = 8190
    """Longest single request header line; a longer one gets 400 and a close."""
    max_headers: int = 64
    """Most request header lines; more get 400 and a close."""
    max_session_cookies: int = 64
    """Values of the page's cookie looked at in one request, in the order sent (the rest are
    passed over). A browser sends one for each parent domain and path prefix a sibling
    origin set one for, before or after the page's own; the bound keeps the work small."""
    frame_ancestors: tuple[str, ...] = ()
    """Origins besides the page's own that may show its documents in a frame (the
    simulator's dashboard); none by default."""

    def __post_init__(self) -> None:
        # Items of the bridge and the Python peer carry their stamp before the payload.
        if self.max_frame_bytes <= self.realtime.max_payload_bytes + wire.ITEM_HEADER_BYTES:
            raise ValueError(f"max_frame_bytes must exceed realtime.max_payload_bytes plus "
                             f"the {wire.ITEM_HEADER_BYTES}-byte stamp of an item")
        require_positive(self, "max_connections", "max_connections_per_page", "listen_backlog",
                         "max_http_connections_per_page", "max_session_cookies",
                         "max_outbound_bytes", "max_protocol_errors", "control_per_s",
                         "control_burst", "heartbeat_s", "bridge_max_pending_items",
                         "bridge_max_pending_bytes", "bridge_max_buffered_bytes",
                         "bridge_max_buffered_ms", "max_tcp_connections", "header_timeout_s",
                         "idle_timeout_s", "max_preauth_bytes", "max_request_line_bytes",
                         "max_header_bytes", "max_headers")
        require_non_negative(self, "fd_reserve", "close_grace_s")


def hello_limits(limits: RealtimeLimits, delivery: DeliveryLimits) -> wire.HelloLimits:
    """What every connection's `hello` tells of the realtime limits, named on the wire."""
    return wire.HelloLimits(
        max_payload_bytes=limits.max_payload_bytes,
        send_items_per_s=limits.send_items_per_s, send_items_burst=limits.send_items_burst,
        send_bytes_per_s=limits.send_bytes_per_s, send_bytes_burst=limits.send_bytes_burst,
        receive_window_bytes=delivery.receive_window_bytes,
        max_item_age_ms=delivery.max_item_age_s * 1000.0)
