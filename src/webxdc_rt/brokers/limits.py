"""The bounds of a networked broker, named here so that the host's settings can name them
without importing the Redis client."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.limits import require_non_negative, require_positive

__all__ = ["BrokerLimits"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BrokerLimits:
    """The bounds of a networked broker (Redis), with their defaults; the in-memory broker
    has no queue and ignores them."""

    max_queued_bytes: int = 16 * MiB
    """Bytes of items waiting to be written to Redis; an item that would go over is
    dropped and counted (realtime promises no delivery), so a slow or stalled Redis costs
    a bounded amount of memory and never holds up local delivery."""
    connect_timeout_s: float = 5.0
    """How long one attempt to connect to Redis may take."""
    reconnect_min_s: float = 0.1
    """The first wait before connecting again after Redis was lost; it doubles after each
    failed attempt."""
    reconnect_max_s: float = 5.0
    """The longest wait between two attempts to reach Redis."""
    join_wait_s: float = 1.0
    """How long a join waits for Redis to confirm this process's subscription to its
    channel before the page is told it joined anyway (items from other processes reach it
    once the subscription is in place). No wait while Redis is unreachable."""
    budget_share: float = 0.1
    """The part of each of a page's bursts (realtime items and bytes, status updates,
    chat messages) a process takes from the page's pool in Redis at a time, so that it asks
    Redis once per half of it spent. Smaller costs more requests; larger keeps more of a
    page's allowance in a process that may not use it."""
    budget_hold_s: float = 0.05
    """The longest a page's socket stops reading, when its process has spent all it holds
    of the page's allowance, waiting for Redis to answer the request for more (should Redis
    be slow, one more item is read after this wait, and the next wait is this much
    longer)."""
    budget_answer_timeout_s: float = 1.0
    """How long a request to a page's pool in Redis may go unanswered before Redis counts
    as unreachable for budgets: the connection is dropped, and until Redis answers again
    each process gives a page its whole allowance (fail open), as when Redis refuses
    connections."""

    def __post_init__(self) -> None:
        require_positive(self, "max_queued_bytes", "connect_timeout_s", "reconnect_min_s",
                         "reconnect_max_s")
        require_non_negative(self, "join_wait_s")
        require_positive(self, "budget_share", "budget_hold_s", "budget_answer_timeout_s")
        if self.budget_share > 1:
            raise ValueError(f"budget_share must be at most 1, got {self.budget_share!r}")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
