"""A simulated network's faults between the member pages of one app copy, no I/O: for each
realtime item and each receiver, whether it is lost and, if not, how long it is held; for
each status update, whether it must wait until the link between its sender and a listener
is back.

Faults are set per peer (its link to the rest): added latency and jitter, a loss rate drawn
from a random generator seeded per peer (the same seed and the same traffic lose the same
items), a bandwidth cap on what the peer receives, and offline (its link down both ways).
Partitions split the peers into groups that do not reach one another; peers named in no
group form one more group together. Realtime items that cannot pass are lost, as on a real
network; status updates are held and arrive once the link is back, as in a real chat.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.limits import require_non_negative, require_positive

__all__ = ["PeerFaults", "FaultLimits", "FaultPlan", "LOSS_REASONS"]

LOSS_REASONS = ("offline", "partition", "loss", "bandwidth", "held-full")
"""Why an item was lost, as counted: its sender or receiver offline, a partition between
them, the loss rate, more than `FaultLimits.max_bandwidth_backlog_s` queued behind the
bandwidth cap, or more than `FaultLimits.max_held_items` held for the receiver."""


@dataclass(frozen=True)
class FaultLimits:
    """Bounds of what faults may hold back."""

    max_latency_ms: float = 60_000.0
    """Largest latency plus jitter a peer may be given."""
    max_bandwidth_backlog_s: float = 2.0
    """Seconds of items a bandwidth cap queues for a receiver; items beyond are lost."""
    max_held_items: int = 10_000
    """Realtime items held back (latency, bandwidth) for one receiver; more are lost."""
    max_held_updates: int = 10_000
    """Status updates held for one listener while its link is down; beyond, the held ones
    are dropped and the listener's sockets are closed when the link is back, so that it
    reconnects and reads them from the store."""

    def __post_init__(self) -> None:
        require_positive(self)


@dataclass(frozen=True)
class PeerFaults:
    """The faults of one peer's link; the defaults are a perfect link."""

    latency_ms: float = 0.0
    """Added to every item and update that reaches the peer."""
    jitter_ms: float = 0.0
    """Each item's delay varies by up to this much either way (never below zero)."""
    loss_percent: float = 0.0
    """Share of the realtime items for the peer that are lost, 0 to 100."""
    seed: int | None = None
    """Seed of the peer's loss draws; None draws from the system's randomness."""
    bandwidth_bytes_per_s: float = 0.0
    """What the peer may receive per second (frames as sent), at least 1; 0 is no cap."""
    offline: bool = False
    """The peer's link is down: no realtime item reaches it or leaves it, status updates
    wait."""

    def __post_init__(self) -> None:
        require_non_negative(self, "latency_ms", "jitter_ms", "bandwidth_bytes_per_s")
        if 0 < self.bandwidth_bytes_per_s < 1:
            raise ValueError("bandwidth_bytes_per_s must be 0 (no cap) or at least 1")
        if isinstance(self.loss_percent, bool) or not 0 <= self.loss_percent <= 100:
            raise ValueError("loss_percent must be from 0 to 100")
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, int)
                                      or abs(self.seed) >= 2**63):
            raise ValueError("seed must be a whole number (64 bits) or null")
        if not isinstance(self.offline, bool):
            raise ValueError("offline must be true or false")

    @property
    def perfect(self) -> bool:
        """Whether the link has no fault at all."""
        return self == PERFECT

    def to_json(self) -> dict[str, Any]:
        """The faults as a JSON object (the dashboard's and the API's form)."""
        return asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> PeerFaults:
        """Faults from a JSON object of the fields above (missing ones default); ValueError
        for anything else."""
        if not isinstance(value, Mapping):
            raise ValueError("faults must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown fault {sorted(unknown)[0]!r}; known: {sorted(known)}")
        fields: dict[str, Any] = {}
        for name, given in value.items():
            if name == "offline":
                if not isinstance(given, bool):
                    raise ValueError("offline must be true or false")
            elif name == "seed":
                if given is not None and (isinstance(given, bool) or not isinstance(given, int)):
                    raise ValueError("seed must be a whole number or null")
            elif isinstance(given, bool) or not isinstance(given, int | float):
                raise ValueError(f"{name} must be a number")
            fields[name] = given
        return cls(**fields)


PERFECT = PeerFaults()


@dataclass
class _Link:
    """What the plan keeps per peer: its faults, its loss draws, its bandwidth queue."""

    faults: PeerFaults
    rng: random.Random
    free_at: float = 0.0
    """When what the bandwidth cap queued for the peer has been received."""


@dataclass
class FaultPlan:
    """The faults in force between the peers of one app copy, and the decisions they make.

    Peers are named by any hashable key the caller uses (the simulator uses page labels)."""

    limits: FaultLimits = field(default_factory=FaultLimits)
    _links: dict[str, _Link] = field(default_factory=dict)
    _groups: dict[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether any fault or partition is in force (if not, everything passes at once)."""
        return bool(self._links) or bool(self._groups)

    def faults(self, peer: str) -> PeerFaults:
        """The faults of one peer's link."""
        link = self._links.get(peer)
        return link.faults if link is not None else PERFECT

    def set_faults(self, peer: str, faults: PeerFaults) -> None:
        """Put `faults` in force for `peer` (a perfect link removes them). Its loss draws
        start again from the seed."""
        if faults.latency_ms + faults.jitter_ms > self.limits.max_latency_ms:
            raise ValueError(f"latency plus jitter above {self.limits.max_latency_ms} ms")
        if faults.perfect:
            self._links.pop(peer, None)
            return
        rng = random.Random(f"{faults.seed}:{peer}") if faults.seed is not None \
            else random.Random()
        self._links[peer] = _Link(faults, rng)

    def forget(self, peer: str) -> None:
        """The peer is gone: drop its faults and its place in any partition."""
        self._links.pop(peer, None)
        self._groups.pop(peer, None)

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Split the peers into groups that do not reach one another (peers in no group
        form one group together); no groups heals every partition."""
        placed: dict[str, int] = {}
        for number, group in enumerate(groups, start=1):
            for peer in group:
                if peer in placed:
                    raise ValueError(f"{peer!r} is in two groups")
                placed[peer] = number
        self._groups = placed

    def groups(self) -> list[list[str]]:
        """The partition's groups as given (without the implicit group of the rest)."""
        by_number: dict[int, list[str]] = {}
        for peer, number in self._groups.items():
            by_number.setdefault(number, []).append(peer)
        return [by_number[number] for number in sorted(by_number)]

    def connected(self, sender: str, receiver: str) -> bool:
        """Whether the link between two peers is up: both online, same side of any
        partition."""
        return (self._groups.get(sender, 0) == self._groups.get(receiver, 0)
                and not self.faults(sender).offline and not self.faults(receiver).offline)

    def item_fate(self, sender: str, receiver: str, size: int, now: float) -> float | str:
        """What becomes of one realtime item of `size` bytes from `sender` for `receiver`
        at time `now` (seconds): the delay before it is handed to the receiver, or the
        reason it is lost (one of `LOSS_REASONS`, but `held-full`, which the caller
        decides)."""
        if self.faults(sender).offline or self.faults(receiver).offline:
            return "offline"
        if self._groups.get(sender, 0) != self._groups.get(receiver, 0):
            return "partition"
        link = self._links.get(receiver)
        if link is None:
            return 0.0
        faults = link.faults
        if faults.loss_percent and link.rng.random() * 100 < faults.loss_percent:
            return "loss"
        delay = faults.latency_ms / 1000
        if faults.jitter_ms:
            delay = max(0.0, delay + link.rng.uniform(-faults.jitter_ms, faults.jitter_ms)
                        / 1000)
        if faults.bandwidth_bytes_per_s:
            start = max(now, link.free_at)
            if start - now > self.limits.max_bandwidth_backlog_s:
                return "bandwidth"
            link.free_at = start + size / faults.bandwidth_bytes_per_s
            delay += link.free_at - now
        return delay

    def update_delay(self, receiver: str) -> float:
        """How long a status update takes to reach `receiver` once its link is up (its
        latency; updates are never reordered, so no jitter)."""
        return self.faults(receiver).latency_ms / 1000

    def describe(self, peer: str) -> str:
        """What is in force for `peer`, in a few words ('' for a perfect link)."""
        faults = self.faults(peer)
        words = []
        if faults.offline:
            words.append("offline")
        if faults.latency_ms or faults.jitter_ms:
            words.append(f"{faults.latency_ms:g}±{faults.jitter_ms:g} ms")
        if faults.loss_percent:
            seed = "" if faults.seed is None else f" seed {faults.seed}"
            words.append(f"loss {faults.loss_percent:g}%{seed}")
        if faults.bandwidth_bytes_per_s:
            words.append(f"{faults.bandwidth_bytes_per_s:g} B/s")
        if peer in self._groups:
            words.append(f"group {self._groups[peer]}")
        return ", ".join(words)
