"""What crossed Redis, and what did not."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BrokerCounts"]


@dataclass(slots=True)
class BrokerCounts:
    """What crossed Redis, and what did not, since the broker started."""

    published: int = 0
    """Items handed to Redis for the other processes."""
    dropped: int = 0
    """Items that could not cross: Redis unreachable, the outgoing queue full, or written
    to a connection that broke before Redis acknowledged them."""
    received: int = 0
    """Items from other processes delivered to this one's connections."""
    malformed: int = 0
    """Messages on this process's channels that were not well-formed items, dropped."""
