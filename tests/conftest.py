"""Shared fixtures: a webxdc-rt host running in the test's event loop on a real socket."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hosting import HostProcess
from hypothesis import HealthCheck, settings
from live import LiveHost
from pg_server import PostgresServer
from redis_server import RedisServer

from webxdc_rt.host.app import HostSettings
from webxdc_rt.stores.sqlite import SqliteStore

PROBE_APP = Path(__file__).parent / "apps" / "probe"

# Property tests: the same cases on every run by default, so that a failure in CI
# reproduces; HYPOTHESIS_PROFILE=explore draws new ones (and prints how to replay a failure).
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep the garbage collector's full passes off what collection built (every test
    item, every imported module): those live as long as the session, and scanning them on
    every full pass stopped this process for seconds on a busy machine, longer than
    hosts running in it wait for a reply."""
    gc.freeze()


@pytest.fixture
async def hosts() -> AsyncIterator:
    """A factory that starts hosts (optionally with custom settings), all stopped after."""
    started: list[LiveHost] = []

    async def start(settings: HostSettings | None = None, store: SqliteStore | None = None,
                    port: int = 0) -> LiveHost:
        host = LiveHost(settings, store)
        if store is not None:
            host.serve_existing()
        await host.start(port)
        started.append(host)
        return host

    yield start
    for host in started:
        await host.stop()


@pytest.fixture
async def live_host(hosts) -> LiveHost:
    """One host with default settings."""
    return await hosts()


@pytest.fixture
async def service(tmp_path) -> AsyncIterator[HostProcess]:
    """A running `webxdc-rt host` on a fresh data folder; it must stop cleanly."""
    host = await HostProcess(tmp_path / "d").start()
    yield host
    assert await host.stop() == 0
    assert "Traceback" not in host.stderr


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    """A `redis-server` of the test's own on a free loopback port, stopped after."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL of the test's own on a free loopback port, in a temporary folder,
    stopped and removed after."""
    server = PostgresServer().start()
    yield server
    server.remove()
