#!/usr/bin/env python3
"""Realtime relay benchmark: webxdc-rt side by side with webxdc-dev 0.21.0 and a bare aiohttp
relay, in one run, on loopback, driven by the same Node.js load generator.

    python bench/realtime.py [--json] [--quick] [--hosts webxdc-rt,webxdc-rt-redis,...]

It installs what it needs on first run (the project's .venv, and `ws` plus webxdc-dev from
the npm registry into bench/node), re-running itself inside the virtual environment.

For each host and case (payloads of 100, 4,000 and 128,000 bytes; channels of 4 and 16
peers; one sender, the others receiving; each host started fresh per run, three runs taking
turns between hosts, medians reported; webxdc-dev runs once); server and load generator
pinned to separate cores:
- deliveries per second at saturation (the sender keeps a window of items in flight to the
  slowest receiver),
- server CPU microseconds per delivery, from the server process's own utime+stime in /proc
  over the measured interval (valid even though the load generator shares the cores);
  both are the median of three back-to-back windows of the saturation phase,
- p50 / p99 one-way latency, and the server CPU per delivery again, at a steady rate well
  below saturation: 500 items/s (100/s for 128,000 bytes), or a quarter of the host's
  saturated rate if that is lower. This steady CPU figure compares hosts at the same load,
  where the saturated one also reflects how well each batches under overload,
- the server's peak resident memory (VmHWM).
Then per host: the time from connect to the first delivery to a newly joined peer, and the
resident memory with 1,000 and 10,000 idle joined peers.

`webxdc-rt-redis` is webxdc-rt as two host processes sharing the chat through a redis-server
(`--broker`), every one of the three on the server core; the peers alternate between the two
processes, the sender's on the first. Its CPU is that of all three processes together, its
latency is also given apart for receivers on the sender's process (`same`) and on the other
(`other`), and it is compared with the single process at the end of the table.

webxdc-rt runs with every rule on, on uvloop (its default when installed); its send-rate
limit is raised (`--limit`) so that it never binds during the saturation phase: the limit is
still checked on every item. The bare relay runs twice: on asyncio's own loop (the smallest
aiohttp server, as most would write it) and on uvloop (the same loop as webxdc-rt).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hosts
from hosts import BENCH, NODE_DIR, VENV_PYTHON, Running, ensure_environment, free_port, pinned

SERVER_CPU, LOADGEN_CPU = "0", "1"
"""Server and load generator are pinned to separate cores (where there are two), so that
neither steals the other's time slices in the middle of a measurement."""

SIZES = (100, 4_000, 128_000)
PEER_COUNTS = (4, 16)
IDLE_COUNTS = (1_000, 10_000)
IDLE_MEMBERS = 200  # webxdc-rt: idle peers spread over this many members' pages
STEADY_RATE = {100: 500, 4_000: 500, 128_000: 100}
"""Items/s of the steady phase (latency, steady CPU): the same for every host that can
carry a quarter more than that; a slower host gets a quarter of its saturated rate."""


# -- the hosts ---------------------------------------------------------------------------

def start_webxdc_rt(peer_count: int, work: Path, data_dir: Path | None = None,
                    broker: str | None = None) -> Running:
    return hosts.start_webxdc_rt(peer_count, work, cpu=SERVER_CPU,
                                 data_dir=data_dir, broker=broker)


def start_webxdc_rt_redis(peer_count: int, work: Path) -> Running:
    """Two webxdc-rt processes sharing the chat through a redis-server of their own, every
    process on the server core; peers alternate between the processes, so the sender (peer
    0) has half the receivers in its own process and half in the other."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(dir=work))
    redis = subprocess.Popen(pinned(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder), "--loglevel", "warning"], SERVER_CPU),
        stdout=subprocess.DEVNULL, stderr=open(work / "redis.log", "ab"))
    deadline = time.monotonic() + 10
    while not redis_answers(port):
        if time.monotonic() > deadline:
            redis.kill()
            raise RuntimeError("redis-server did not start; see redis.log")
        time.sleep(0.02)
    url = f"redis://127.0.0.1:{port}/0"
    hosts = [start_webxdc_rt(peer_count, work, folder / "data", url) for _ in range(2)]
    endpoints = [{**hosts[i % 2].endpoints[i], "group": "same" if i % 2 == 0 else "other"}
                 for i in range(peer_count)]
    return Running(hosts[0].process, endpoints, "rt", others=[hosts[1].process, redis])


def redis_answers(port: int) -> bool:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_bare_relay(peer_count: int, work: Path, loop: str = "asyncio") -> Running:
    process = subprocess.Popen(pinned([str(VENV_PYTHON), str(BENCH / "bare_relay.py"), "0",
                                       "--loop", loop], SERVER_CPU),
                               stdout=subprocess.PIPE, stderr=open(work / "bare.log", "ab"),
                               text=True)
    port = int(process.stdout.readline().split()[1])
    return Running(process, [{"url": f"ws://127.0.0.1:{port}/"}] * peer_count, "bare")


def start_webxdc_dev(peer_count: int, work: Path) -> Running:
    return hosts.start_webxdc_dev(peer_count, work, cpu=SERVER_CPU)


def start_bare_relay_uvloop(peer_count: int, work: Path) -> Running:
    return start_bare_relay(peer_count, work, loop="uvloop")


HOSTS = {"webxdc-rt": start_webxdc_rt, "webxdc-rt-redis": start_webxdc_rt_redis,
         "bare-relay": start_bare_relay,
         "bare-uvloop": start_bare_relay_uvloop, "webxdc-dev": start_webxdc_dev}


# -- driving the load generator ----------------------------------------------------------

def loadgen(task: dict, work: Path, timeout: float = 300) -> dict:
    config = work / "loadgen.json"
    config.write_text(json.dumps(task))
    result = subprocess.run(pinned(["node", str(NODE_DIR / "loadgen.mjs"), str(config)],
                                   LOADGEN_CPU),
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_case(host: str, size: int, peers: int, args: argparse.Namespace, work: Path) -> dict:
    running = HOSTS[host](peers, work)
    try:
        outcome = loadgen({
            "task": "case", "protocol": running.protocol, "endpoints": running.endpoints,
            "serverPids": running.pids, "size": size, "peers": peers,
            "window": args.window, "durationS": args.duration, "rounds": args.rounds,
            "latencyS": args.latency_duration,
            "latencyLoad": 0.25, "steadyRate": STEADY_RATE[size],
        }, work)
    finally:
        running.stop()
    return {"host": host, "size": size, "peers": peers, **outcome}


def run_first_delivery(host: str, work: Path) -> dict:
    running = HOSTS[host](3, work)
    try:
        return {"host": host, **loadgen({
            "task": "first-delivery", "protocol": running.protocol,
            "endpoints": running.endpoints, "serverPids": running.pids, "trials": 20,
        }, work)}
    finally:
        running.stop()


def run_idle(host: str, count: int, work: Path) -> dict:
    members = IDLE_MEMBERS if host == "webxdc-rt" else 2
    running = HOSTS[host](members, work)
    try:
        return {"host": host, **loadgen({
            "task": "idle", "protocol": running.protocol, "endpoints": running.endpoints,
            "serverPids": running.pids, "count": count,
        }, work, timeout=600)}
    finally:
        running.stop()


# -- reporting ---------------------------------------------------------------------------

def median_record(records: list[dict]) -> dict:
    """One record whose every figure is the median of that figure over `records`."""
    merged = dict(records[0])
    for key, value in records[0].items():
        if isinstance(value, (int, float)) and key not in ("size", "peers"):
            values = sorted(r[key] for r in records if r[key] is not None)
            merged[key] = values[len(values) // 2] if values else None
    merged["runs"] = len(records)
    return merged


def ratio_of(value: float | None, base: float | None) -> float | None:
    return value / base if value and base else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_tables(cases: list[dict], firsts: list[dict], idles: list[dict]) -> None:
    bare = {(c["size"], c["peers"]): c for c in cases if c["host"] == "bare-relay"}
    print("CPU 'vs bare' is the ratio to bare-relay (aiohttp on asyncio's own loop); "
          "bare-uvloop is the same relay on uvloop, the loop webxdc-rt runs on.")
    print(f"{'host':<11} {'size':>7} {'peers':>5} {'deliv/s':>10} {'cpu us':>9} "
          f"{'vs bare':>7} {'steady us':>9} {'vs bare':>7} {'at /s':>6} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'peak MB':>8}")

    def ratio(case: dict, key: str) -> float | None:
        floor = bare.get((case["size"], case["peers"]))
        if not floor or not case[key] or not floor[key]:
            return None
        return case[key] / floor[key]

    for c in cases:
        print(f"{c['host']:<11} {c['size']:>7} {c['peers']:>5} {fmt(c['deliveries_per_s'], 0):>10} "
              f"{fmt(c['cpu_us_per_delivery']):>9} {fmt(ratio(c, 'cpu_us_per_delivery'), 2):>7} "
              f"{fmt(c['steady_cpu_us_per_delivery']):>9} "
              f"{fmt(ratio(c, 'steady_cpu_us_per_delivery'), 2):>7} "
              f"{fmt(c['latency_rate_per_s'], 0):>6} {fmt(c['p50_ms'], 2):>8} "
              f"{fmt(c['p99_ms'], 2):>8} {fmt(c['peak_rss_mb']):>8}")
    print()
    single = {(c["size"], c["peers"]): c for c in cases if c["host"] == "webxdc-rt"}
    for c in cases:
        alone = single.get((c["size"], c["peers"]))
        if c["host"] != "webxdc-rt-redis" or not alone:
            continue
        cpu = ratio_of(c["cpu_us_per_delivery"], alone["cpu_us_per_delivery"])
        steady = ratio_of(c["steady_cpu_us_per_delivery"], alone["steady_cpu_us_per_delivery"])
        rate = ratio_of(c["deliveries_per_s"], alone["deliveries_per_s"])
        print(f"2 processes + Redis vs 1 process, {c['size']} B, {c['peers']} peers: "
              f"CPU per delivery x{fmt(cpu, 2)} saturated, x{fmt(steady, 2)} steady; "
              f"deliveries/s x{fmt(rate, 2)}; "
              f"p50/p99 ms same process {fmt(c.get('p50_ms_same'), 2)}/"
              f"{fmt(c.get('p99_ms_same'), 2)}, other process {fmt(c.get('p50_ms_other'), 2)}/"
              f"{fmt(c.get('p99_ms_other'), 2)}, single process {fmt(alone['p50_ms'], 2)}/"
              f"{fmt(alone['p99_ms'], 2)}")
    print()
    for f in firsts:
        print(f"{f['host']:<11} connect -> first delivery: "
              f"p50 {fmt(f['first_delivery_p50_ms'], 2)} ms, "
              f"max {fmt(f['first_delivery_max_ms'], 2)} ms")
    print()
    for i in idles:
        print(f"{i['host']:<11} {i['idle_peers']:>6} idle joined peers: {fmt(i['rss_mb'])} MB "
              f"resident ({fmt(i['kb_per_idle_peer'])} KB per peer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="also print one JSON object per result")
    parser.add_argument("--hosts", default=",".join(HOSTS), help="comma-separated hosts to run")
    parser.add_argument("--quick", action="store_true",
                        help="shorter phases, 4 peers, no 10,000 idle")
    parser.add_argument("--duration", type=float, default=4.5, help="saturation phase, seconds")
    parser.add_argument("--rounds", type=int, default=3,
                        help="windows the saturation phase is cut into; medians are reported")
    parser.add_argument("--latency-duration", type=float, default=3.0,
                        help="steady (latency) phase, seconds")
    parser.add_argument("--window", type=int, default=32, help="items in flight when saturating")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each case per host (webxdc-dev: one); medians reported")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated payload sizes in bytes")
    parser.add_argument("--peers", default=",".join(map(str, PEER_COUNTS)),
                        help="comma-separated channel sizes")
    parser.add_argument("--no-idle", action="store_true",
                        help="skip first-delivery and idle-peer measurements")
    args = parser.parse_args()
    ensure_environment()
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    unknown = set(hosts) - set(HOSTS)
    if unknown:
        parser.error(f"unknown hosts: {', '.join(sorted(unknown))}")
    sizes = [int(x) for x in args.sizes.split(",")]
    peer_counts = (4,) if args.quick else [int(x) for x in args.peers.split(",")]
    idle_counts = IDLE_COUNTS[:1] if args.quick else IDLE_COUNTS
    if args.quick:
        args.duration, args.latency_duration, args.repeat = 1.5, 1.5, 1
    work = Path(tempfile.mkdtemp(prefix="webxdc-rt-bench-"))
    cases, firsts, idles = [], [], []
    try:
        for size in sizes:
            for peers in peer_counts:
                runs: dict[str, list[dict]] = {host: [] for host in hosts}
                for repetition in range(args.repeat):
                    # Hosts take turns, so that drift on the machine spreads over all of them.
                    for host in hosts:
                        if host == "webxdc-dev" and repetition:
                            continue  # 50 to 500 times the others: one run says enough
                        runs[host].append(run_case(host, size, peers, args, work))
                        print(f"# {host} size={size} peers={peers} run {repetition + 1}: done",
                              file=sys.stderr, flush=True)
                cases.extend(median_record(runs[host]) for host in hosts)
        # Across processes the idle cost per peer is each process's own, measured above.
        for host in [] if args.no_idle else [h for h in hosts if h != "webxdc-rt-redis"]:
            firsts.append(run_first_delivery(host, work))
            for count in idle_counts:
                idles.append(run_idle(host, count, work))
            print(f"# {host} first delivery and idle peers: done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_tables(cases, firsts, idles)
    if args.json:
        for record in (*cases, *firsts, *idles):
            print(json.dumps(record))


if __name__ == "__main__":
    main()
