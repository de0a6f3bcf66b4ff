#!/usr/bin/env python3
"""Reliability benchmark: what hostile members and faults cost honest ones, measured.

    python bench/hostile.py [--json] [--seconds S]

Each scenario starts a fresh `webxdc-rt serve` process (default settings, uvloop) on
loopback with the members alice, bob and mallory, pinned to one core while this process
(all clients) runs on the other. Alice sends bob 200 realtime items per second carrying a
timestamp; bob's one-way latency is the honest pair's figure. Meanwhile mallory:

- `baseline`: does nothing;
- `control-flood`: floods join/leave from 16 sockets of her page;
- `realtime-flood`: floods 128,000-byte items from 16 sockets of her page (bob receives them:
  he is slowed by them as any receiver of a busy channel is);
- `stalled-backlog`: 64 sockets ask for a 4.8 MB update backlog and never read;
- `slow-headers`: 1,000 connections send a request head one byte per second;
- `silent-connections`: the host runs with 1,024 file descriptors; mallory opens 2,000
  connections that send nothing, then alice and bob connect.

Reported per scenario: the honest pair's p50/p99 latency and items lost, what mallory
achieved (items or control messages per second accepted, connections still open), and the
host's peak resident memory. `kill-9`: 50 updates (the default burst) acknowledged, the host
killed with SIGKILL and restarted, and how many of them a new listener replays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
APP_DIR = ROOT / "tests" / "apps" / "probe"
HONEST_RATE = 200  # items/s from alice to bob
SERVER_CPU, CLIENT_CPU = 0, 1
OUTLAST_S = 15.0
"""Idle and slow connections are counted this long after they were opened (the host's
header timeout is 10 s by default)."""


def ensure_environment() -> None:
    """Re-run inside the project's virtual environment, created if needed."""
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/_env.sh" && ensure_venv'],
                       check=True)
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])


class Served:
    """A `webxdc-rt serve` subprocess and its invite links."""

    def __init__(self, data_dir: str, nofile: int | None = None) -> None:
        self.data_dir = data_dir
        self.nofile = nofile
        self.proc: asyncio.subprocess.Process | None = None
        self.urls: dict[str, str] = {}

    async def start(self) -> None:
        def limit() -> None:
            if self.nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
            if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
                os.sched_setaffinity(0, {SERVER_CPU})

        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "webxdc_rt", "serve", str(APP_DIR), "--members",
            "alice,bob,mallory", "--port", "0", "--json", "--data-dir", self.data_dir,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=limit)
        assert self.proc.stdout is not None
        for _ in range(3):
            line = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))
            self.urls[line["member"]] = line["url"]

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    async def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.proc is not None and self.proc.stderr is not None
        self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), 60)
        return (await self.proc.stderr.read()).decode()


def socket_target(url: str) -> tuple[int, str, str]:
    parts = urlsplit(url)
    return parts.port or 80, parts.netloc, parts.path.rsplit("/", 1)[-1]


async def raw_ws(url: str):  # -> (session, ws)
    import aiohttp
    port, netloc, token = socket_target(url)
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(f"ws://127.0.0.1:{port}/.webxdc-rt/socket",
                                  headers={"Host": netloc, "Authorization": f"Bearer {token}"})
    return session, ws


async def honest_pair(served: Served, seconds: float) -> dict:
    """Alice sends bob HONEST_RATE timestamped items/s for `seconds`; bob's latencies."""
    from webxdc_rt.client import connect
    alice, bob = await connect(served.urls["alice"]), await connect(served.urls["bob"])
    latencies: list[float] = []
    tag = b"honest"

    def received(data: bytes) -> None:
        if data.startswith(tag):
            latencies.append(time.perf_counter() - float(data[len(tag):]))

    sender = alice.join_realtime_channel()
    bob.join_realtime_channel().set_listener(received)
    await asyncio.sleep(0.3)  # both joins took effect (no item is lost to a late join)
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        sender.send(tag + repr(time.perf_counter()).encode())
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / HONEST_RATE - time.perf_counter()))
    await asyncio.sleep(1.0)  # stragglers
    await alice.close()
    await bob.close()
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {"sent": sent, "lost": sent - len(ms),
            "p50_ms": round(statistics.median(ms), 2) if ms else None,
            "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2) if ms else None}


async def control_flood(served: Served, stop: asyncio.Event) -> dict:
    sockets = [await raw_ws(served.urls["mallory"]) for _ in range(16)]
    answered = 0
    started = time.perf_counter()

    async def one(ws) -> None:
        nonlocal answered
        while not stop.is_set():
            await ws.send_str('{"type":"join","epoch":1}')
            await ws.send_str('{"type":"leave"}')
            msg = await ws.receive()
            if msg.type.name != "TEXT":
                return
            answered += json.loads(msg.data).get("type") == "joined"

    await asyncio.gather(*(one(ws) for _, ws in sockets), return_exceptions=True)
    elapsed = time.perf_counter() - started
    for session, _ in sockets:
        await session.close()
    return {"mallory_joins_per_s": round(answered / elapsed)}


async def realtime_flood(served: Served, stop: asyncio.Event) -> dict:
    sockets = [await raw_ws(served.urls["mallory"]) for _ in range(16)]
    item = bytes(128_000)
    sent = 0
    started = time.perf_counter()

    async def one(ws) -> None:
        nonlocal sent
        await ws.send_str('{"type":"join","epoch":1}')
        while not stop.is_set():
            await ws.send_bytes(item)
            sent += 1

    await asyncio.gather(*(one(ws) for _, ws in sockets), return_exceptions=True)
    elapsed = time.perf_counter() - started
    for session, _ in sockets:
        await session.close()
    return {"mallory_mb_per_s_written": round(sent * len(item) / elapsed / 1e6, 1)}


async def stalled_backlog(served: Served, stop: asyncio.Event) -> dict:
    from webxdc_rt.client import connect
    writer = await connect(served.urls["alice"])
    for n in range(40):
        writer.send_update({"payload": "x" * 120_000, "info": str(n)})
    seen: list[dict] = []
    await writer.set_update_listener(seen.append)
    await writer.close()
    port, netloc, token = socket_target(served.urls["mallory"])
    stalled = []
    for _ in range(64):
        reader, w = await asyncio.open_connection("127.0.0.1", port)
        w.write((f"GET /.webxdc-rt/socket HTTP/1.1\r\nHost: {netloc}\r\nAuthorization: Bearer "
                 f"{token}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "\r\n").encode())
        await reader.readuntil(b"\r\n\r\n")
        payload = b'{"type":"update-listen","listen":1,"serial":0}'
        w.write(bytes([0x81, 0x80 | len(payload)]) + bytes(4) + payload)
        stalled.append(w)
    started = time.perf_counter()
    late = await connect(served.urls["bob"])
    replayed: list[dict] = []
    await late.set_update_listener(replayed.append)
    replay_s = time.perf_counter() - started
    await late.close()
    await stop.wait()
    for w in stalled:
        w.close()
    return {"honest_backlog_replay_s": round(replay_s, 2), "replayed": len(replayed)}


async def open_idle(port: int, count: int) -> list[tuple[asyncio.StreamReader,
                                                       asyncio.StreamWriter]]:
    """Up to `count` connections to the host (fewer if it refuses them)."""
    connections = []
    for _ in range(count):
        try:
            connections.append(await asyncio.open_connection("127.0.0.1", port))
        except OSError:
            break
    return connections


def still_open(connections: list) -> int:
    """How many of the connections the host has not closed (EOF not seen)."""
    return sum(not reader.at_eof() for reader, _ in connections)


async def slow_headers(served: Served, stop: asyncio.Event) -> dict:
    port, netloc, _ = socket_target(served.urls["mallory"])
    head = f"GET / HTTP/1.1\r\nHost: {netloc}\r\nX-Slow: ".encode()
    connections = await open_idle(port, 1000)
    opened = time.perf_counter()
    sent = 0
    # One more byte of the head per second, never finished; for at least OUTLAST_S, so
    # that the host's header timeout has had its chance.
    while not stop.is_set() or time.perf_counter() - opened < OUTLAST_S:
        for _, writer in connections:
            if not writer.is_closing():
                writer.write(head[sent % len(head):][:1])
        sent += 1
        await asyncio.sleep(1)
    result = {"slow_connections_opened": len(connections),
              "still_open_at_end": still_open(connections)}
    for _, writer in connections:
        writer.close()
    return result


async def silent_connections(served: Served, stop: asyncio.Event) -> dict:
    port, _, _ = socket_target(served.urls["mallory"])
    connections = await open_idle(port, 2000)
    opened = time.perf_counter()
    await stop.wait()
    await asyncio.sleep(max(0.0, OUTLAST_S - (time.perf_counter() - opened)))
    result = {"silent_connections_opened": len(connections),
              "still_open_at_end": still_open(connections)}
    for _, writer in connections:
        writer.close()
    return result


SCENARIOS: dict[str, Callable[[Served, asyncio.Event], Awaitable[dict]] | None] = {
    "baseline": None,
    "control-flood": control_flood,
    "realtime-flood": realtime_flood,
    "stalled-backlog": stalled_backlog,
    "slow-headers": slow_headers,
    "silent-connections": silent_connections,
}


async def run_scenario(name: str, seconds: float) -> dict:
    attack = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as data_dir:
        served = Served(data_dir, nofile=1024 if name == "silent-connections" else None)
        await served.start()
        stop = asyncio.Event()
        attacking = asyncio.ensure_future(attack(served, stop)) if attack else None
        await asyncio.sleep(1.0 if attack else 0)  # the attack is under way
        try:
            honest = await asyncio.wait_for(honest_pair(served, seconds), seconds + 60)
        except (OSError, asyncio.TimeoutError) as exc:
            honest = {"failed": f"{type(exc).__name__}: {exc}"}
        stop.set()
        attacker = await attacking if attacking else {}
        result = {"scenario": name, **honest, **attacker,
                  "host_peak_rss_mb": round(served.peak_rss_mb())}
        stderr = await served.stop()
        result["tracebacks_in_log"] = stderr.count("Traceback")
        return result


async def kill_nine() -> dict:
    """Updates acknowledged (delivered to the sender's own listener) survive SIGKILL."""
    from webxdc_rt.client import connect
    with tempfile.TemporaryDirectory() as data_dir:
        served = Served(data_dir)
        await served.start()
        alice = await connect(served.urls["alice"])
        seen: list[dict] = []
        await alice.set_update_listener(seen.append)
        for n in range(50):  # the default burst: none is refused for its pace
            alice.send_update({"payload": n})
        while len(seen) < 50:  # each one delivered back to its sender: acknowledged
            await asyncio.sleep(0.01)
        await served.stop(signal.SIGKILL)
        await alice.close()
        again = Served(data_dir)
        await again.start()
        bob = await connect(again.urls["bob"])
        replayed: list[dict] = []
        await bob.set_update_listener(replayed.append)
        await bob.close()
        await again.stop()
        return {"scenario": "kill-9", "acknowledged": len(seen), "replayed": len(replayed)}


async def main(args: argparse.Namespace) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {CLIENT_CPU})
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, max(8192, resource.getrlimit(
        resource.RLIMIT_NOFILE)[1])))
    results = [await run_scenario(name, args.seconds) for name in SCENARIOS]
    results.append(await kill_nine())
    for result in results:
        print(json.dumps(result) if args.json else
              "  ".join(f"{k}={v}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="how long the honest pair measures in each scenario")
    ensure_environment()
    asyncio.run(main(parser.parse_args()))
