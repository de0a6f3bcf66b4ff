"""`webxdc-rt serve` processes sharing one chat through PostgreSQL and Redis, for the tests
of several processes."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pg_server import PostgresServer
from ports import free_port
from redis_server import RedisServer

from webxdc_rt.client import Peer, connect

APP = Path(__file__).parent / "apps" / "probe"
MEMBERS = ["alice", "bob", "carol"]


def on_port(url: str, other: str) -> str:
    """Invite link `url` pointed at the process that printed `other`."""
    port = urlsplit(other).port
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


async def listening(url: str) -> tuple[Peer, list[dict[str, Any]]]:
    """A peer on the page at `url` with an update listener, and what it receives."""
    peer = await connect(url)
    seen: list[dict[str, Any]] = []
    await peer.set_update_listener(seen.append)
    return peer, seen


FAST_UPDATES = ["--limit", "updates.interval_ms=1", "--limit", "updates.burst=1000"]


class ServeProcess:
    """One `webxdc-rt serve` process on --store and --broker: its links, its stderr."""

    def __init__(self, folder: Path, store_url: str, broker_url: str | None,
                 *extra: str) -> None:
        self.log = folder / f"serve-{free_port()}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webxdc_rt", "serve", str(APP), "--members",
             ",".join(MEMBERS), "--port", "0", "--json", "--data-dir", str(folder / "unused"),
             "--store", store_url, *(["--broker", broker_url] if broker_url else []),
             *FAST_UPDATES, *extra],
            stdout=subprocess.PIPE, stderr=self.log.open("wb"), text=True)
        assert self.process.stdout is not None
        lines = [self.process.stdout.readline() for _ in MEMBERS]
        if not all(lines):
            raise AssertionError(f"serve did not start: {self.log.read_text()}")
        self.urls = {line["member"]: line["url"] for line in map(json.loads, lines)}

    def stderr(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def serving(folder: Path, postgres: PostgresServer, redis: RedisServer,
            count: int = 3) -> Iterator[list[ServeProcess]]:
    hosts: list[ServeProcess] = []
    try:
        for _ in range(count):
            hosts.append(ServeProcess(folder, postgres.url, redis.url))
        yield hosts
    finally:
        for host in hosts:
            host.stop()
        for host in hosts:
            assert "Traceback" not in host.stderr(), host.stderr()
