"""The simulator's settings: its own bounds and those of its faults and its log."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.limits import require_positive
from .faults import FaultLimits
from .traffic import TrafficLimits

__all__ = ["SimulatorLimits"]


@dataclass(frozen=True)
class SimulatorLimits:
    """Bounds of the simulator and its dashboard."""

    max_peers: int = 16
    """Peers at once (the dashboard's layout is made for 1 to 8)."""
    log_interval_s: float = 0.25
    """How often the dashboard is sent the log's batch: rates, who is joined, events."""
    max_dashboard_buffer_bytes: int = 1024 * 1024
    """Bytes waiting for one dashboard socket; a batch beyond it is skipped (counted)."""
    max_dashboards: int = 8
    """Dashboard sockets at once."""
    reload_poll_s: float = 0.5
    """How often an app folder is checked for changed files (live reload)."""
    max_watched_files: int = 10_000
    """Files of an app folder watched for live reload; beyond, the rest are not."""
    faults: FaultLimits = field(default_factory=FaultLimits)
    """Bounds of what faults may hold back."""
    traffic: TrafficLimits = field(default_factory=TrafficLimits)
    """Bounds of the log."""

    def __post_init__(self) -> None:
        require_positive(self, "max_peers", "log_interval_s", "max_dashboard_buffer_bytes",
                         "max_dashboards", "reload_poll_s", "max_watched_files")
