"""The host's numbers in the Prometheus text format, for `/metrics` on the admin listener.

A custom collector reads what the host counts (`stats.HostStats`, plain ints bumped where
things happen) and what it holds now (connections, chats) only when Prometheus scrapes:
serving members never calls into `prometheus_client`. The process collector adds memory,
CPU time and open file descriptors.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..core.stats import LatencyHistogram
from .app import Host

__all__ = ["HostCollector", "metrics_registry", "render", "CONTENT_TYPE", "PREFIX"]

PREFIX = "webxdc_rt"
"""The start of every metric name of the host's own."""
CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Content-Type of the text format."""


class HostCollector(Collector):
    """The metrics of one host, read from its counters at each scrape."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def collect(self) -> Iterable[Metric]:
        """Every metric of the host, as it is now."""
        host, stats = self.host, self.host.stats
        open_connections, joined = host.connection_counts()
        yield _gauge("connections", "WebSocket connections open now.", open_connections)
        yield _gauge("joined_connections",
                     "WebSocket connections joined to their realtime channel now.", joined)
        registry = host.registry
        yield _gauge("chats", "Chats served.", len(registry.chats))
        yield _gauge("app_copies", "App copies shared into the chats.", len(registry.apps))
        yield _gauge("app_copies_served", "App copies whose files are served.",
                     len(host.sources))
        yield _counter("realtime_items_received",
                       "Realtime items read from connections and published.",
                       stats.realtime_items_in)
        yield _counter("realtime_bytes_received", "Payload bytes of the realtime items read.",
                       stats.realtime_bytes_in)
        yield _counter("realtime_items_sent",
                       "Realtime items handed to receivers (one per receiver).",
                       stats.realtime_items_out)
        yield _counter("realtime_bytes_sent",
                       "Bytes of the frames of the realtime items handed to receivers "
                       "(payload and WebSocket header).",
                       stats.realtime_bytes_out)
        drops = stats.drops
        yield _labelled("realtime_items_dropped",
                        "Realtime items not delivered because their receiver did not keep "
                        "up: stale (waited too long) or crowded (too much waiting).",
                        "reason", (("stale", drops.stale), ("crowded", drops.crowded)))
        yield _counter("realtime_bytes_dropped",
                       "Frame bytes of the realtime items not delivered to slow receivers.",
                       drops.bytes)
        yield _counter("slow_receivers_cut_off",
                       "Connections cut off for having too much waiting to be sent to them.",
                       stats.slow_receivers_cut_off)
        yield _counter("status_updates_appended", "Status updates stored and sent.",
                       stats.updates_appended)
        feed = host.feed
        yield _counter("status_update_announcements",
                       "Announcements of status updates stored by any process, heard from a "
                       "shared store (only of app copies this process has listeners of).",
                       feed.announcements)
        yield _counter("status_updates_read_back",
                       "Status updates read back from a shared store to send them to this "
                       "process's listeners.", feed.read_back)
        yield _counter("chat_messages_stored", "Messages apps posted with sendToChat.",
                       stats.chat_messages_stored)
        yield _labelled("refusals", "Requests refused, by the error code sent.", "code",
                        stats.sessions.refused.items())
        yield _labelled("rate_limited", "Times a page began to be slowed, by what it sent "
                        "too fast (items: realtime, control: control messages).", "budget",
                        stats.sessions.rate_limited.items())
        yield _labelled("connections_refused", "WebSockets refused at connect, by reason.",
                        "reason", stats.connections_refused.items())
        yield _histogram("store_latency_seconds",
                         "Time to store a status update, a chat message or a change to the "
                         "chats, commit included.", host.store.latency)


def metrics_registry(host: Host) -> CollectorRegistry:
    """A registry with the host's collector and the process's (memory, CPU, files)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(HostCollector(host))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """Every metric of `registry` in the text format."""
    return generate_latest(registry)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _labelled(name: str, documentation: str, label: str,
              values: Iterable[tuple[str, int]]) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=[label])
    for key, value in sorted(values):
        family.add_metric([key], value)
    return family


def _histogram(name: str, documentation: str,
               latency: LatencyHistogram) -> HistogramMetricFamily:
    bounds = [repr(bound) for bound in latency.bounds] + ["+Inf"]
    buckets = list(zip(bounds, accumulate(latency.counts), strict=True))
    return HistogramMetricFamily(f"{PREFIX}_{name}", documentation, buckets=buckets,
                                 sum_value=latency.total_s)
