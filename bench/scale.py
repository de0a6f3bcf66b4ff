#!/usr/bin/env python3
"""Capacity benchmark: how many joined connections one webxdc-rt process holds, what each
costs, how long one item takes to reach the last of many receivers, and what 1, 2 and 4
processes over one Redis and one PostgreSQL deliver per CPU second.

    python bench/scale.py [--json] [--connections 1000,10000] [--ramp-to 60000]
                          [--processes 1,2,4] [--no-netns] [--quick]
    python bench/scale.py --cleanup        remove leftovers of a killed run

Run as root for network namespaces (a veth pair from each into a bridge, 10.213.0.0/24);
without them it says so and uses loopback ports. Everything it starts is stopped and what
it makes removed at the end, also on Ctrl-C; it is named `wxrt-...` for `--cleanup`.

1. One process (`webxdc-rt serve`, in-memory broker, SQLite) and the bare relay
   (bench/bare_relay.py) beside it, on loopback: resident memory per idle joined connection
   (RSS after minus before, over the count), and fan-out latency: one sender, every other
   connection receiving, ITEMS items one second apart; per item the p50 / p99 / max over
   its receivers. Then webxdc-rt alone ramps up in steps until a connect fails, a step
   times out or `--ramp-to` is reached, with the connect rate and RSS of each step.
2. 1, 2 and 4 `webxdc-rt serve --broker redis://... --store postgresql://...` processes,
   each in its own namespace: redis-server's CPU per item (one sender); PostgreSQL's per
   status update (a page per member; `--update-listeners N`: N connections listening to
   them, spread over the processes); then, connections spread round robin, deliveries/s,
   CPU and bytes per delivery, p50/p99 latency of `--senders` sending at `--rate`.

CPU is utime+stime from /proc/PID/stat (PostgreSQL's: every backend's too); the load
processes (bench/scale_load.py) are not counted. docs/capacity.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scale_net
from scale_net import BRIDGE_IP, PREFIX, Namespaces, stop
from scale_proc import cpu_seconds, listen_overflows, load_average, rss_mb, tree_cpu_seconds
from scale_report import print_results

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PROBE_APP = ROOT / "tests" / "apps" / "probe"
LOAD_PROCESSES = 2
"""Load processes the clients are spread over (this machine has 2 cores)."""
PER_PAGE = 50
"""Connections per member page (webxdc-rt allows `max_connections_per_page` = 64)."""
UNBOUND = ("realtime.send_items_per_s=1e9", "realtime.send_items_burst=1e9")


# -- processes and /proc ----------------------------------------------------------------

def child_env() -> dict[str, str]:
    """The environment of every Python child: this checkout's sources first."""
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}"}


@dataclass
class Server:
    """A started server process and the socket endpoints its clients use."""

    process: subprocess.Popen[str]
    endpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid


def start_webxdc_rt(work: Path, members: int, address: str, *, prefix: list[str] | None = None,
                    limits: tuple[str, ...] = UNBOUND, extra: tuple[str, ...] = ()) -> Server:
    """`webxdc-rt serve` of the probe app to members p0..p{members-1} on `address`."""
    data = Path(tempfile.mkdtemp(dir=work))
    command = [*(prefix or []), sys.executable, "-m", "webxdc_rt", "serve", str(PROBE_APP),
               "--members", ",".join(f"p{i}" for i in range(members)), "--host", address,
               "--port", "0", "--json", "--data-dir", str(data), *extra,
               *(arg for limit in limits for arg in ("--limit", limit))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_env(),
                               stderr=(work / "webxdc-rt.log").open("ab"))
    server = Server(process)
    for _ in range(members):
        line = process.stdout.readline() if process.stdout else ""
        if not line:
            stop(process)
            raise RuntimeError(f"webxdc-rt serve did not start; see {work / 'webxdc-rt.log'}")
        url = urlsplit(json.loads(line)["url"])
        server.endpoints.append({"ip": address, "port": url.port, "host": url.netloc,
                                 "path": "/.webxdc-rt/socket",
                                 "token": url.path.rsplit("/", 1)[1]})
    return server


def start_bare_relay(work: Path) -> Server:
    """bench/bare_relay.py on loopback, on uvloop (the loop webxdc-rt runs on)."""
    process = subprocess.Popen([sys.executable, str(BENCH / "bare_relay.py"), "0",
                                "--loop", "uvloop"], stdout=subprocess.PIPE, text=True,
                               stderr=(work / "bare.log").open("ab"), env=child_env())
    port = int((process.stdout.readline() if process.stdout else "0 0").split()[1])
    return Server(process, [{"ip": "127.0.0.1", "port": port, "host": f"127.0.0.1:{port}",
                             "path": "/", "bare": True}])


class LoadProcess:
    """One bench/scale_load.py process, driven by JSON lines."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(BENCH / "scale_load.py")],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=child_env())

    def send(self, command: str, **arguments: Any) -> None:
        """Start a command without waiting for its answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"command": command, **arguments}) + "\n")
        self.process.stdin.flush()

    def answer(self) -> dict[str, Any]:
        """The answer to the oldest command not yet answered."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a load process died; see its stderr above")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        """Close its stdin (it closes its clients and exits), then make sure it is gone."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stop(self.process, signal.SIGKILL)


def on_all(loads: list[LoadProcess], command: str, per_load: list[dict[str, Any]]
           ) -> list[dict[str, Any]]:
    """Run `command` on every load process at once, each with its own arguments."""
    for load, arguments in zip(loads, per_load, strict=True):
        load.send(command, **arguments)
    return [load.answer() for load in loads]


CONCURRENCY = 50
"""Connections each load process opens at once: 100 in flight in all, within aiohttp's
default listen backlog (128), so that part 1 measures held connections rather than a burst
(docs/capacity.md has what 400 in flight did; `--concurrency` to try others)."""
SOURCES = [f"127.0.0.{2 + i}" for i in range(8)]
"""Client addresses on loopback, taken in turn (each load process its own), so that no
address runs out of ephemeral ports (about 28,000 to one server port)."""


def connect(loads: list[LoadProcess], endpoints: list[dict[str, Any]], count: int,
            timeout: float) -> dict[str, Any]:
    """Spread `count` more joined connections over the load processes (the first of
    them gets the odd one): how many each holds now in all, the time taken, the first
    failure."""
    shares = [count // len(loads) + (i < count % len(loads)) for i in range(len(loads))]
    local = endpoints[0]["ip"].startswith("127.")
    answers = on_all(loads, "connect", [
        {"endpoints": endpoints[i::len(loads)] or endpoints, "count": shares[i],
         "sources": SOURCES[i::len(loads)] if local else [],
         "concurrency": CONCURRENCY, "timeout": timeout}
        for i in range(len(loads))])
    failures = [a["failure"] for a in answers if a["failure"]]
    return {"connected": sum(a["connected"] for a in answers),
            "seconds": max(a["seconds"] for a in answers),
            "failure": failures[0] if failures else None}


def percentile(values: list[float], share: float) -> float | None:
    """The value below which `share` of `values` lie (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def collect(loads: list[LoadProcess]) -> tuple[dict[int, list[float]], int]:
    """Latencies by sequence number from every load process (cleared there), and the
    clients lost."""
    by_seq: dict[int, list[float]] = {}
    lost = 0
    for answer in on_all(loads, "report", [{"clear": True}] * len(loads)):
        lost += answer["lost"]
        for seq, latency in answer["items"]:
            by_seq.setdefault(seq, []).append(latency * 1000)
    return by_seq, lost


# -- 1. one process ----------------------------------------------------------------------

def fan_out(loads: list[LoadProcess], receivers: int, items: int, size: int = 100
            ) -> dict[str, Any]:
    """The first client of load process 0 sends `items` items one second apart; per item,
    the p50 / p99 / max of its latency over the receivers that got it."""
    collect(loads)
    on_all(loads[:1], "send", [{"items": items, "interval": 1.0, "size": size, "senders": 1,
                                "first_seq": 0}])
    time.sleep(1.0)  # the last item's fan-out
    by_seq, lost = collect(loads)
    per_item = [(percentile(v, 0.5), percentile(v, 0.99), max(v), len(v))
                for _, v in sorted(by_seq.items())]
    worst = max((p[2] for p in per_item), default=None)
    return {"items": items, "receivers": receivers,
            "p50_ms": percentile([p[0] for p in per_item if p[0] is not None], 0.5),
            "p99_ms": percentile([p[1] for p in per_item if p[1] is not None], 0.5),
            "last_ms": percentile([p[2] for p in per_item], 0.5), "worst_last_ms": worst,
            "min_received": min((p[3] for p in per_item), default=0), "lost": lost}


def run_single(host: str, count: int, items: int, work: Path, limits: tuple[str, ...] = ()
               ) -> dict[str, Any]:
    """Memory per idle joined connection and fan-out latency of one fresh server (webxdc-rt
    with `limits` set too)."""
    members = -(-count // PER_PAGE) + 1
    server = (start_webxdc_rt(work, members, "127.0.0.1", limits=(*UNBOUND, *limits))
              if host == "webxdc-rt"
              else start_bare_relay(work))
    loads = [LoadProcess() for _ in range(LOAD_PROCESSES)]
    try:
        time.sleep(1.0)  # let start-up allocation settle before the baseline
        before, overflows = rss_mb(server.pid), listen_overflows()
        cpu_before = cpu_seconds(server.pid)
        connected = connect(loads, server.endpoints, count, timeout=300)
        if connected["failure"]:
            raise RuntimeError(f"{host}: {connected['failure']} at {connected['connected']}")
        time.sleep(2.0)
        after = rss_mb(server.pid)
        connect_cpu = cpu_seconds(server.pid) - cpu_before
        fan = fan_out(loads, count - 1, items)
        return {"phase": "single", "host": host, "connections": count,
                "rss_before_mb": before, "rss_after_mb": after,
                "kb_per_connection": (after - before) * 1024 / count,
                "connect_s": connected["seconds"],
                "listen_overflows": listen_overflows() - overflows,
                "server_cpu_ms_per_connect": connect_cpu * 1000 / count, **fan}
    finally:
        for load in loads:
            load.close()
        stop(server.process)


def run_ramp(ramp_to: int, step: int, work: Path) -> dict[str, Any]:
    """Add `step` connections at a time to one webxdc-rt (its connection limits raised to
    `ramp_to`) until one fails, a step takes over two minutes, or `ramp_to` is held."""
    limits = (*UNBOUND, f"max_connections={ramp_to}", f"max_tcp_connections={ramp_to + 100}")
    server = start_webxdc_rt(work, -(-ramp_to // PER_PAGE) + 1, "127.0.0.1", limits=limits)
    loads = [LoadProcess() for _ in range(LOAD_PROCESSES)]
    steps, held, stopped = [], 0, f"reached --ramp-to {ramp_to}"
    try:
        time.sleep(1.0)
        base = rss_mb(server.pid)
        while held < ramp_to:
            cpu, overflows = cpu_seconds(server.pid), listen_overflows()
            batch = connect(loads, server.endpoints, min(step, ramp_to - held), timeout=120)
            added, held = batch["connected"] - held, batch["connected"]
            steps.append({"held": held, "per_s": added / batch["seconds"],
                          "rss_mb": rss_mb(server.pid),
                          "server_cpu_s": cpu_seconds(server.pid) - cpu,
                          "listen_overflows": listen_overflows() - overflows})
            print(f"# ramp: {held} held, {steps[-1]['per_s']:.0f}/s, "
                  f"{steps[-1]['rss_mb']:.0f} MB", file=sys.stderr, flush=True)
            if batch["failure"] or server.process.poll() is not None:
                stopped = batch["failure"] or "the server exited"
                break
        return {"phase": "ramp", "host": "webxdc-rt", "held": held, "stopped_by": stopped,
                "rss_base_mb": base, "steps": steps,
                "fds_open": len(os.listdir(f"/proc/{server.pid}/fd"))
                if server.process.poll() is None else None}
    finally:
        for load in loads:
            load.close()
        stop(server.process)


# -- 2. several processes over Redis and PostgreSQL ---------------------------------------

@dataclass
class Shared:
    """What the processes of part 2 share: namespaces (or none), Redis and PostgreSQL."""

    namespaces: Namespaces | None
    redis: subprocess.Popen[bytes]
    redis_url: str
    postgres: subprocess.Popen[bytes]
    postgres_url: str


def start_processes(count: int, shared: Shared, members: int, work: Path) -> list[Server]:
    """`count` webxdc-rt processes of one chat over the shared Redis and PostgreSQL, each in
    its own namespace when there are namespaces, one after the other (the first creates the
    chat in the store, the others find it)."""
    extra = ("--broker", shared.redis_url, "--store", shared.postgres_url)
    ns = shared.namespaces
    return [start_webxdc_rt(work, members, ns.addresses[i] if ns else "127.0.0.1",
                            prefix=ns.prefix(i) if ns else None, extra=extra)
            for i in range(count)]


def interleaved(servers: list[Server], count: int) -> list[dict[str, Any]]:
    """`count` endpoints taking the servers in turn, each server's members in turn."""
    members = len(servers[0].endpoints)
    return [servers[k % len(servers)].endpoints[(k // len(servers)) % members]
            for k in range(count)]


def server_cpu(servers: list[Server], shared: Shared) -> tuple[float, ...]:
    """CPU seconds so far of the webxdc-rt processes, redis-server and PostgreSQL, and the
    bytes that left and entered the namespaces of the processes (0 without namespaces)."""
    sent = received = 0
    if shared.namespaces:
        for index in range(len(servers)):
            stats = Path(f"/sys/class/net/{PREFIX}-v{index}/statistics")
            # Seen from the bridge: what the namespace sent arrives (rx) on its outer end.
            sent += int((stats / "rx_bytes").read_text())
            received += int((stats / "tx_bytes").read_text())
    return (sum(cpu_seconds(s.pid) for s in servers), cpu_seconds(shared.redis.pid),
            tree_cpu_seconds(shared.postgres.pid), sent, received, time.monotonic())


def idle_rates(servers: list[Server], shared: Shared, seconds: float) -> tuple[float, ...]:
    """CPU seconds per second that the hosts, redis-server and PostgreSQL spend with
    nothing sent (timers, heartbeats, polling), over `seconds`."""
    before = server_cpu(servers, shared)
    time.sleep(seconds)
    after = server_cpu(servers, shared)
    return tuple((after[i] - before[i]) / (after[5] - before[5]) for i in range(3))


def spent(before: tuple[float, ...], after: tuple[float, ...], idle: tuple[float, ...]
          ) -> tuple[float, ...]:
    """CPU seconds (hosts, redis, postgres) above their idle rates between two
    `server_cpu` readings, then bytes out of and into the namespaces."""
    elapsed = after[5] - before[5]
    cpu = (max(0.0, after[i] - before[i] - idle[i] * elapsed) for i in range(3))
    return (*cpu, after[3] - before[3], after[4] - before[4])


def run_multi(count: int, shared: Shared, args: argparse.Namespace, work: Path
              ) -> dict[str, Any]:
    """`count` processes: Redis's CPU per published item (one sender, two connections per
    process), PostgreSQL's CPU per status update (one page per member), then deliveries/s,
    CPU per delivery and latency with `--receivers` connections."""
    servers = start_processes(count, shared, args.members, work)
    loads = [LoadProcess() for _ in range(LOAD_PROCESSES)]
    try:
        probes = max(2 * count, args.senders)
        result: dict[str, Any] = {"phase": "multi", "processes": count,
                                  "netns": shared.namespaces is not None}
        joined(connect(loads[:1], interleaved(servers, probes), probes, timeout=60))
        idle = idle_rates(servers, shared, args.duration)
        result["idle_cpu"] = {"hosts": idle[0], "redis": idle[1], "postgres": idle[2]}
        result.update(run_redis_items(loads, servers, shared, args, idle))
        held = joined(connect(loads[:1], interleaved(servers, args.members), args.members,
                              timeout=60))
        result.update(run_updates(loads, servers, shared, args, idle, first=probes))
        joined(connect(loads, interleaved(servers, count * args.members),
                       args.receivers - held, timeout=120))
        result.update(run_deliveries(loads, servers, shared, args, idle))
        return result
    finally:
        for load in loads:
            load.close()
        for server in servers:
            stop(server.process)


def joined(outcome: dict[str, Any]) -> int:
    """The connections held after a `connect` that must not fail."""
    if outcome["failure"]:
        raise RuntimeError(f"{outcome['failure']} at {outcome['connected']} connections")
    return int(outcome["connected"])


def timed_send(loads: list[LoadProcess], servers: list[Server], shared: Shared, rate: float,
               senders: int, args: argparse.Namespace, idle: tuple[float, ...]
               ) -> tuple[tuple[float, ...], dict[int, list[float]], int]:
    """The first `senders` clients of load process 0 send `rate` items/s each of `--size`
    for `--duration`, after a one-second warm-up: what was `spent` meanwhile, latencies by
    item, and the items sent."""
    seconds, size = args.duration, args.size
    send = {"interval": 1 / rate, "size": size, "senders": senders}
    on_all(loads[:1], "send", [{**send, "items": int(rate), "first_seq": 0}])
    time.sleep(0.5)
    collect(loads)
    before = server_cpu(servers, shared)
    items = int(rate * seconds)
    on_all(loads[:1], "send", [{**send, "items": items, "first_seq": 1_000_000}])
    time.sleep(0.5)  # the last items' delivery
    after = server_cpu(servers, shared)
    by_seq, _lost = collect(loads)
    return spent(before, after, idle), by_seq, items * senders


def run_redis_items(loads: list[LoadProcess], servers: list[Server], shared: Shared,
                    args: argparse.Namespace, idle: tuple[float, ...]) -> dict[str, Any]:
    """One sender at `--redis-rate` items/s to one other connection on its process and two
    on each other: redis-server's CPU per published item."""
    cpu, _by_seq, published = timed_send(loads, servers, shared, args.redis_rate, 1, args,
                                         idle)
    return {"redis_items": published, "redis_cpu_us_per_item": cpu[1] * 1e6 / published,
            "redis_host_cpu_us_per_item": cpu[0] * 1e6 / published,
            "redis_probe_bytes_out_per_item": cpu[3] / published if cpu[3] else None,
            "redis_probe_bytes_in_per_item": cpu[4] / published if cpu[4] else None}


def run_deliveries(loads: list[LoadProcess], servers: list[Server], shared: Shared,
                   args: argparse.Namespace, idle: tuple[float, ...]) -> dict[str, Any]:
    """`--senders` senders at `--rate` items/s each to every other connection."""
    connections = sum(a["clients"] for a in on_all(loads, "report",
                                                   [{"clear": True}] * len(loads)))
    cpu, by_seq, published = timed_send(loads, servers, shared, args.rate, args.senders,
                                        args, idle)
    latencies = [v for values in by_seq.values() for v in values]
    return {"connections": connections, "senders": args.senders, "size": args.size,
            "items_per_s": args.rate * args.senders, "published": published,
            "deliveries": len(latencies), "expected": published * (connections - 1),
            "deliveries_per_s": len(latencies) / args.duration,
            "server_cpu_us_per_delivery": cpu[0] * 1e6 / max(1, len(latencies)),
            "server_cpu_share": cpu[0] / args.duration,
            "bytes_out_per_delivery": cpu[3] / max(1, len(latencies)) if cpu[3] else None,
            "bytes_in_per_item": cpu[4] / published if cpu[4] else None,
            "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
            "max_ms": max(latencies, default=None)}


def run_updates(loads: list[LoadProcess], servers: list[Server], shared: Shared,
                args: argparse.Namespace, idle: tuple[float, ...], first: int
                ) -> dict[str, Any]:
    """One page per member sends status updates at `--update-rate` each for `--duration`:
    PostgreSQL's and the hosts' CPU per update."""
    rounds = int(args.update_rate * args.duration)
    if args.update_listeners:  # the first probes, one on each process in turn
        on_all(loads[:1], "listen_updates", [{"first": 0, "count": args.update_listeners}])
        time.sleep(1.0)  # their listeners started
    before = server_cpu(servers, shared)
    sent = on_all(loads[:1], "updates", [{"first": first, "count": args.members,
                                          "rounds": rounds,
                                          "interval": 1 / args.update_rate}])[0]["sent"]
    time.sleep(1.0)  # the last commits
    cpu = spent(before, server_cpu(servers, shared), idle)
    errors = on_all(loads, "report", [{"clear": True}] * len(loads))
    return {"updates": sent, "updates_per_s": sent / args.duration,
            "update_listeners": args.update_listeners,
            "postgres_cpu_us_per_update": cpu[2] * 1e6 / max(1, sent),
            "server_cpu_us_per_update": cpu[0] * 1e6 / max(1, sent),
            "errors": {k: v for e in errors for k, v in e["errors"].items()}}


# -- reporting and the command -----------------------------------------------------------

def raise_open_file_limit() -> None:
    """Every connection is a descriptor in a server and in a load process: as root, raise
    the hard limit too (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1_048_576 if os.geteuid() == 0 else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_part_two(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Namespaces (or loopback, said so), Redis and PostgreSQL, then each process count."""
    counts = [int(x) for x in args.processes.split(",") if x]
    namespaces = None
    if not args.no_netns:
        try:
            namespaces = scale_net.make_namespaces(max(counts))
        except OSError as error:
            print(f"# {error}; FALLING BACK to loopback ports (results labelled netns=no)",
                  flush=True)
    addresses = ["127.0.0.1", BRIDGE_IP] if namespaces else ["127.0.0.1"]
    redis = postgres = None
    try:
        redis, redis_url = scale_net.start_redis(work, addresses)
        postgres, postgres_url = scale_net.start_postgres(work, addresses)
        shared = Shared(namespaces, redis, redis_url, postgres, postgres_url)
        results = []
        for count in counts:
            results.append(run_multi(count, shared, args, work))
            print(f"# {count} processes: done (load {load_average()})", file=sys.stderr,
                  flush=True)
        return results
    finally:
        stop(redis)
        stop(postgres, signal.SIGINT)
        if namespaces:
            scale_net.remove(namespaces)


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="also print one JSON line a result")
    parser.add_argument("--cleanup", action="store_true",
                        help=f"remove namespaces, links and folders named {PREFIX}-* and exit")
    parser.add_argument("--connections", default="1000,10000",
                        help="part 1: idle joined connections to measure (comma-separated)")
    parser.add_argument("--hosts", default="webxdc-rt,bare-relay", help="part 1: servers")
    parser.add_argument("--items", type=int, default=5, help="part 1: fan-out items")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="part 1: a webxdc-rt setting (`serve --limit`), repeatable")
    parser.add_argument("--ramp-to", type=int, default=60_000,
                        help="part 1: most connections the ramp tries (0: no ramp)")
    parser.add_argument("--ramp-step", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY,
                        help="connections each load process opens at once")
    parser.add_argument("--processes", default="1,2,4",
                        help="part 2: process counts (empty: skip part 2)")
    parser.add_argument("--no-netns", action="store_true",
                        help="part 2 on loopback ports instead of network namespaces")
    parser.add_argument("--receivers", type=int, default=400, help="part 2: connections")
    parser.add_argument("--members", type=int, default=100, help="part 2: member pages")
    parser.add_argument("--senders", type=int, default=4, help="part 2: sending connections")
    parser.add_argument("--rate", type=int, default=25, help="part 2: items/s per sender")
    parser.add_argument("--size", type=int, default=100, help="part 2: item bytes")
    parser.add_argument("--duration", type=float, default=5.0, help="part 2: seconds a phase")
    parser.add_argument("--redis-rate", type=float, default=2000,
                        help="part 2: items/s of the Redis probe's one sender")
    parser.add_argument("--update-rate", type=float, default=5.0,
                        help="part 2: status updates/s per member page")
    parser.add_argument("--update-listeners", type=int, default=0,
                        help="part 2: probe connections with an update listener while the "
                             "updates are sent (the first on process 1, the next on 2, ...)")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 connections, no ramp, 1 and 2 processes, 3 s phases")
    args = parser.parse_args()
    if args.quick:
        args.connections, args.ramp_to, args.processes, args.duration = "1000", 0, "1,2", 3.0
    return args


def main() -> None:
    """Run the parts asked for; stop and remove everything on the way out."""
    args = parse_args()
    if args.cleanup:
        print("\n".join(scale_net.cleanup()) or "nothing to remove")
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    raise_open_file_limit()
    global CONCURRENCY
    CONCURRENCY = args.concurrency
    work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-scale-"))
    work.chmod(0o755)  # PostgreSQL runs as `nobody` in a folder under it
    print(f"# load average before: {load_average()} ({os.cpu_count()} cores); open-file limit "
          f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,} (servers and load processes)",
          flush=True)
    results: list[dict[str, Any]] = []
    try:
        for count in [int(x) for x in args.connections.split(",") if x]:
            for host in args.hosts.split(","):
                results.append(run_single(host, count, args.items, work,
                                          tuple(args.limit)))
                print(f"# {host} {count}: done", file=sys.stderr, flush=True)
        if args.ramp_to:
            results.append(run_ramp(args.ramp_to, args.ramp_step, work))
        if args.processes:
            results.extend(run_part_two(args, work))
    except Exception:
        for log in sorted(work.glob("*.log")):
            print(f"# {log.name}:\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_results(results)
    print(f"# load average after: {load_average()}")
    if args.json:
        for result in results:
            print(json.dumps(result))


if __name__ == "__main__":
    main()
