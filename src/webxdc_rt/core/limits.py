"""The settings of the protocol core, each a named limit with its documented default:
realtime items (`RealtimeLimits`), status updates (`UpdateLimits`), chat messages
(`ChatLimits`) and delivery to slow receivers (`DeliveryLimits`); and the one check of
numeric settings that every `*Limits` class of the package uses, so that a bad value is
refused in the same words wherever it is set (`--limit`, a constructor, a test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "RealtimeLimits",
    "UpdateLimits",
    "ChatLimits",
    "DeliveryLimits",
    "require_positive",
    "require_non_negative",
]

KiB = 1024
MiB = 1024 * KiB


def require_positive(settings: object, *names: str, below: float = math.inf) -> None:
    """Raise ValueError, naming the setting and its value, unless each of `names` (every
    field of the dataclass `settings` when none are given) is a finite number above 0 (and
    below `below`, when given)."""
    bounds = "above 0" if below == math.inf else f"above 0 and below {below:g}"
    for name in names or _field_names(settings):
        value = getattr(settings, name)
        if not (_is_number(value) and 0 < value < below):
            raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}")


def require_non_negative(settings: object, *names: str) -> None:
    """Raise ValueError, naming the setting and its value, unless each of `names` (every
    field of the dataclass `settings` when none are given) is a finite number, 0 or above."""
    for name in names or _field_names(settings):
        value = getattr(settings, name)
        if not (_is_number(value) and 0 <= value < math.inf):
            raise ValueError(f"{name} must be a finite number, 0 or above, got {value!r}")


def _is_number(value: object) -> bool:
    # A bool is an int to isinstance, but `True` is no number of bytes or seconds.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field_names(settings: object) -> tuple[str, ...]:
    return tuple(field.name for field in fields(settings))  # type: ignore[arg-type]


MAX_PAYLOAD_BYTES = 128_000
"""The largest realtime item the webxdc spec allows, in bytes."""



@dataclass(frozen=True, slots=True)
class RealtimeLimits:
    """The limits the host enforces on realtime items, with their defaults.

    The send rate is counted per member page (all its connections together) and enforced
    by backpressure: a connection whose page sends faster is not read from until the page
    is back within its budget, so a flood is slowed to the rate and costs other peers
    nothing.
    """

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    """Largest item a connection may send (the spec's limit, R8)."""
    send_items_per_s: float = 2000.0
    """Items one page may send per second, sustained."""
    send_items_burst: int = 2000
    """Items one page may send at once before the rate applies."""
    send_bytes_per_s: float = 32 * MiB
    """Payload bytes one page may send per second, sustained."""
    send_bytes_burst: int = 32 * MiB
    """Payload bytes one page may send at once before the rate applies."""

    def __post_init__(self) -> None:
        require_positive(self)
        if self.send_bytes_burst < self.max_payload_bytes:
            raise ValueError("send_bytes_burst must be at least max_payload_bytes")


@dataclass(frozen=True, slots=True)
class UpdateLimits:
    """Limits on status updates; the bridge states the first two to apps as
    `sendUpdateMaxSize` and `sendUpdateInterval`."""

    max_payload_bytes: int = 128_000
    """Largest JSON-encoded `payload` of one update (`sendUpdateMaxSize`)."""
    interval_ms: int = 100
    """Sustained pace one page may send updates at (`sendUpdateInterval`)."""
    burst: int = 50
    """Updates one page may send at once before the pace applies."""
    max_text_chars: int = 10_000
    """Longest `info`, `href`, `document` or `summary`, in characters."""
    max_notify_entries: int = 100
    """Most entries in `notify`."""
    listens_per_s: float = 2.0
    """Update listeners one page may start per second (each replays a backlog), sustained;
    more are made to wait."""
    listens_burst: int = 16
    """Update listeners one page may start at once (tabs opening together)."""
    backlog_bytes_per_s: float = 32 * 1024 * 1024
    """Backlog bytes replayed to one page per second, sustained (paced, not refused)."""
    backlog_bytes_burst: int = 64 * 1024 * 1024
    """Backlog bytes replayed to one page at once before the pace applies."""
    backlog_chunk_bytes: int = 1024 * 1024
    """Backlog bytes loaded from storage at a time for one listener (at least one update)."""
    max_backlogs_per_page: int = 2
    """Backlogs streamed to one page at once; more listeners wait their turn."""
    max_in_flight_per_socket: int = 32
    """Updates one socket of a page may have waiting for their commit; while that many
    wait, nothing more is read from it (1: each update waits for its commit before the
    next is read). More in flight make bigger groups per commit, so more durable updates
    per second; each waits with its payload (at most `max_payload_bytes`)."""

    def __post_init__(self) -> None:
        require_positive(self)


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Limits on `sendToChat`, with defaults; rates and quotas are per member page."""

    max_text_chars: int = 100_000
    """Longest text of one message."""
    max_file_bytes: int = 256 * KiB
    """Largest file of one message, decoded."""
    max_listed: int = 50
    """Most messages returned to one chat-messages request."""
    max_listed_bytes: int = 1 * MiB
    """Most bytes of text and files returned to one chat-messages request (at least one
    message); older messages are asked for with `before`."""
    messages_per_s: float = 1.0
    """Messages one page may post per second, sustained."""
    messages_burst: int = 20
    """Messages one page may post at once before the rate applies."""
    max_stored_bytes: int = 16 * MiB
    """Bytes of text and files one page may have stored in its chat in all."""

    def __post_init__(self) -> None:
        require_positive(self)


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    """How realtime items for a receiver that does not keep up are held and dropped, with
    their defaults (chosen from the measurements in the README's overload section)."""

    max_item_age_s: float = 2.0
    """Seconds a realtime item may take from its sender to its receiver's listener: the
    host drops one that waited this long in it, and the bridge and the Python peer drop one
    that arrives older, by its stamp (told in the hello, `wire.items`)."""
    max_waiting_bytes: int = 4 * MiB
    """Realtime bytes that may wait in the host for one connection; beyond it items are
    dropped from the sender with the most waiting."""
    socket_buffer_bytes: int = 256 * KiB
    """Bytes a connection's socket may hold unsent before realtime items for it wait in the
    host instead (where they can still be dropped when stale)."""
    socket_receive_buffer_bytes: int = 256 * KiB
    """The kernel receive buffer asked for each WebSocket (SO_RCVBUF). Items a member sends
    wait there, unseen, whenever the host reads slower than they come; kept small, the
    backlog stays in the sender (whose bridge or peer drops what would go stale) instead of
    reaching the host seconds old."""
    socket_send_buffer_bytes: int = 256 * KiB
    """The kernel send buffer asked for each WebSocket (SO_SNDBUF). Left to the kernel, the
    buffer of a socket whose reader stopped grows to several MiB of kernel memory that no
    bound of the host's counts; fixed, what waits for a receiver waits in the host, where it
    is bounded and dropped."""
    stall_timeout_s: float = 30.0
    """Seconds a WebSocket may take no byte of what waits for it before it is dropped: a
    reader that stopped holds its page's backlog slots and its buffers until then (a slow
    reader takes some bytes and is not dropped; a dead link is found by `heartbeat_s`)."""
    receive_window_bytes: int = 4 * MiB
    """Realtime bytes that may be in flight to a receiver that reports what it read (told
    in the hello); less for a slower one: what it reads in a sixteenth of `max_item_age_s`
    by the rate it has shown, and `min_window_bytes` until it has shown one."""
    min_window_bytes: int = 64 * KiB
    """In-flight bytes a reporting receiver always may have, however slow it has been (an
    item goes while less than the window is in flight, so one of any size always can)."""
    receipts_per_s: float = 1000.0
    """`received` reports one page may send per second, sustained; a page over it is not
    read from until it is back within it (as for other control messages)."""
    receipts_burst: int = 1000
    """`received` reports one page may send at once before the pace applies."""

    def __post_init__(self) -> None:
        require_positive(self)
        if self.min_window_bytes > self.receive_window_bytes:
            raise ValueError("min_window_bytes must not exceed receive_window_bytes")
