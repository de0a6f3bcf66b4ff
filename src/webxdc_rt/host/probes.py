"""The metrics and health listener (`--metrics HOST:PORT`): a TCP listener of its own for a
scraper and a service manager, apart from the public one and from the admin socket.

It answers three GETs and nothing else: `/metrics` (the Prometheus text format, the same
metrics as the admin socket's), `/healthz` (200 while the event loop answers) and `/readyz`
(200 when the store answers a read, made off the event loop, and the broker, if any, has
both its Redis connections up; else 503 naming what is not). It holds no management route,
so the admin API cannot be reached through it however it is exposed. With `serve --workers
N`, worker i listens on PORT + i: each worker is a process with its own loop, store
connection and Redis links, so a scraper sees each one's health and a stuck worker stays
visible, where a sum made by the parent would hide it behind the others and need a channel
between the processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..stores.api import StoreError
from . import metrics
from .app import Host

__all__ = ["ProbeAddress", "Reachable", "Probes", "parse_probe_address", "start_probes"]

_READY_PROBE_APP = ""
"""An app copy id that no copy has: reading its highest serial is a cheap real read of a
shared store (SQLite's, kept in memory by this process, reads nothing)."""


@dataclass(frozen=True, slots=True)
class ProbeAddress:
    """Where the metrics and health listener listens."""

    host: str
    port: int


def parse_probe_address(text: str) -> ProbeAddress:
    """`PORT` (on 127.0.0.1), `HOST:PORT` or `[IPv6]:PORT`; ValueError for anything else."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if sep else "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"must be PORT or HOST:PORT with a port from 0 to 65535, got {text!r}")
    return ProbeAddress(host, int(port))


class Reachable(Protocol):
    """A broker that says whether its links are up (the Redis broker)."""

    @property
    def connected(self) -> bool:
        """Its connections are up."""


class _WorkerCollector(Collector):
    def __init__(self, worker: int) -> None:
        self.worker = worker

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(f"{metrics.PREFIX}_worker",
                                   "The index of this worker of serve --workers.",
                                   labels=["worker"])
        family.add_metric([str(self.worker)], 1)
        yield family


class Probes:
    """The application of the metrics and health listener of one host process."""

    def __init__(self, host: Host, broker: Reachable | None = None,
                 worker: int | None = None) -> None:
        self.host = host
        self.broker = broker
        self.registry = metrics.metrics_registry(host)
        if worker is not None:
            self.registry.register(_WorkerCollector(worker))

    def application(self) -> web.Application:
        """GET /metrics, /healthz and /readyz; any other path is 404, any other method
        405."""
        app = web.Application(client_max_size=1024)
        app.router.add_get("/metrics", self._metrics, allow_head=False)
        app.router.add_get("/healthz", self._healthz, allow_head=False)
        app.router.add_get("/readyz", self._readyz, allow_head=False)
        return app

    async def problems(self) -> list[str]:
        """What keeps this process from serving fully now (empty when ready)."""
        found = []
        try:
            await self.host.store.read_max_serial(_READY_PROBE_APP)
        except StoreError as exc:
            found.append(f"store: {exc}")
        if self.broker is not None and not self.broker.connected:
            found.append("broker: Redis is not reachable")
        return found

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=metrics.render(self.registry),
                            headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.StreamResponse:
        problems = await self.problems()
        if problems:
            return web.Response(status=503, text="".join(f"{line}\n" for line in problems))
        return web.Response(text="ready\n")


async def start_probes(runner: web.AppRunner, address: ProbeAddress) -> int:
    """Listen on `address` with `runner` (already set up); the port it got."""
    site = web.TCPSite(runner, address.host, address.port)
    await site.start()
    port: int = runner.addresses[-1][1]
    return port
