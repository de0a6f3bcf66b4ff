"""The hosts the benchmarks run side by side: set up, started on loopback, addressed, stopped.

Shared by `realtime.py` (Node.js peers on raw sockets) and `browser.py` (Chromium pages
through each host's own bridge). webxdc-rt is started with `webxdc-rt serve`, its send
limits raised so that they never bind while saturating (they are still checked on every
item); webxdc-dev 0.21.0 with `webxdc-dev run`, its peers being its instances.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NODE_DIR = BENCH / "node"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PROBE_APP = ROOT / "tests" / "apps" / "probe"

UNBOUND_SEND_LIMITS = ("realtime.send_items_per_s=1e9", "realtime.send_items_burst=1e9",
                       "realtime.send_bytes_per_s=1e15", "realtime.send_bytes_burst=1e15")
"""webxdc-rt's per-page send limits, raised so that a saturating sender is never paced."""


CHROMIUM = os.environ.get("WEBXDC_RT_CHROMIUM", "/usr/bin/chromium")
"""Debian's Chromium, as the browser tests use it (never a downloaded browser)."""


def ensure_environment(*, chromium: bool = False) -> None:
    """Re-run inside the project's virtual environment, created if needed; npm packages;
    with `chromium`, Debian's chromium package when it is missing."""
    if chromium and not os.access(CHROMIUM, os.X_OK):
        subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/_env.sh" && ensure_chromium'],
                       check=True)
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/_env.sh" && ensure_venv'],
                       check=True)
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    stamp = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not stamp.exists() or lock.stat().st_mtime > stamp.stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=NODE_DIR, check=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it


@dataclass
class Running:
    """A started server: its process, the socket endpoints its raw peers use, and the page
    URLs a browser opens (webxdc-rt: invite links; webxdc-dev: its instances)."""

    process: subprocess.Popen[str]
    endpoints: list[dict[str, Any]]
    protocol: str
    pages: list[str] = field(default_factory=list)
    others: list[subprocess.Popen[str]] = field(default_factory=list)
    """More server processes of the same host (other host processes, redis-server): their
    CPU and memory count as the host's."""

    @property
    def pids(self) -> list[int]:
        """Every process of the host."""
        return [self.process.pid, *(other.pid for other in self.others)]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s, to every process; safe to call twice."""
        for process in (self.process, *self.others):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def pinned(command: list[str], cpu: str | None) -> list[str]:
    """`command`, run on the given core when `taskset` exists and there are two cores."""
    if cpu is not None and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", cpu, *command]
    return command


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_webxdc_rt(peer_count: int, work: Path, *, app: Path = PROBE_APP,
                    cpu: str | None = None, limits: tuple[str, ...] = UNBOUND_SEND_LIMITS,
                    data_dir: Path | None = None, broker: str | None = None) -> Running:
    """`webxdc-rt serve app` to members p0, p1, ... with a data folder (a fresh one under
    `work` unless given) and, if given, `--broker`."""
    members = ",".join(f"p{i}" for i in range(peer_count))
    data_dir = data_dir or Path(tempfile.mkdtemp(dir=work))
    limit_args = [arg for limit in limits for arg in ("--limit", limit)]
    broker_args = ["--broker", broker] if broker else []
    process = subprocess.Popen(pinned(
        [str(VENV_PYTHON), "-m", "webxdc_rt", "serve", str(app), "--members", members,
         "--port", "0", "--json", "--data-dir", str(data_dir), *broker_args, *limit_args],
        cpu),
        stdout=subprocess.PIPE, stderr=open(work / "webxdc-rt.log", "ab"), text=True)
    endpoints, pages = [], []
    for _ in range(peer_count):
        line = process.stdout.readline() if process.stdout else ""
        if not line:
            process.wait()
            raise RuntimeError(f"webxdc-rt serve did not start; see {work / 'webxdc-rt.log'}")
        invite = json.loads(line)
        parts = urlsplit(invite["url"])
        token = parts.path.rsplit("/", 1)[1]
        pages.append(invite["url"])
        endpoints.append({"url": f"ws://127.0.0.1:{parts.port}/.webxdc-rt/socket",
                          "headers": {"Host": parts.netloc, "Authorization": f"Bearer {token}"}})
    return Running(process, endpoints, "rt", pages)


def start_webxdc_dev(peer_count: int, work: Path, *, app: Path = PROBE_APP,
                     cpu: str | None = None) -> Running:
    """`webxdc-dev run app` with `peer_count` instances, each on its own port."""
    base_port = free_port()
    cli = NODE_DIR / "node_modules" / "@webxdc" / "webxdc-dev" / "dist" / "backend" / "cli.js"
    process = subprocess.Popen(pinned(["node", str(cli), "run", str(app),
                                       "--port", str(base_port)], cpu),
                               stdout=subprocess.PIPE, stderr=open(work / "dev.log", "ab"),
                               text=True, cwd=work)
    assert process.stdout is not None
    while "Started webxdc-dev frontend" not in (line := process.stdout.readline()):
        if not line:
            process.wait()
            raise RuntimeError(f"webxdc-dev did not start; see {work / 'dev.log'}")
    # It logs every instance's traffic; keep reading so that it never blocks on a full pipe.
    threading.Thread(target=lambda out: [None for _ in out], args=(process.stdout,),
                     daemon=True).start()
    api = f"http://127.0.0.1:{base_port}/instances"
    ports = [instance["port"] for instance in json.load(urllib.request.urlopen(api))]
    while len(ports) < peer_count:  # its peers are its instances
        request = urllib.request.Request(api, method="POST")
        ports.append(json.load(urllib.request.urlopen(request))["port"])
    time.sleep(0.5)
    ports = ports[:peer_count]
    return Running(process, [{"url": f"ws://127.0.0.1:{p}/webxdc"} for p in ports], "dev",
                   [f"http://localhost:{p}/" for p in ports])
