#!/usr/bin/env python3
"""Instructions per realtime delivery of a whole server process, webxdc-rt and the bare
relay side by side, counted by callgrind over real sockets.

    python bench/relay_instructions.py [--hosts webxdc-rt,bare-uvloop] [--items N]
                                       [--peers 4,16] [--sizes 100,4000,128000]
                                       [--modes steady,burst,receipts]
                                       [--stamped] [--top N] [--repeat N]

`bench/hot_path.py` counts the host's own code per item with a fake transport; this one
counts everything the server process does (aiohttp reading and parsing the frame, the
session, the fan-out, the writes, the event loop's turns), so the two sides are compared
in the same harness. The server runs under `valgrind --tool=callgrind` (webxdc-rt with
`webxdc-rt serve`, its send limits raised as in `bench/realtime.py`; the bare relay is
`bench/bare_relay.py`, both on uvloop); peers are aiohttp clients in this process, outside
valgrind. Counting is switched on (`callgrind_control --instr=on`) only once every peer is
connected and joined, for N items, and the total is divided by the deliveries:

- `steady`: one item at a time, the next sent once every receiver has it (each item is one
  turn of the server's loop, as at the benchmark's steady rates);
- `burst`: items sent 32 at a time, the next 32 once every receiver has them (the server
  reads several items per turn, as when saturated);
- `receipts`: as `steady`, and every receiver also reports what it has read (`received`)
  after every 4th item, as a browser's bridge does every 20 ms at 200 items/s
  (webxdc-rt only: the bare relay has no such report).

With `--stamped`, webxdc-rt's peers join with `"stamped": true`, as the bridge and the
Python peer do, and send the 8-byte stamp before each payload (the bare relay's peers send
the same bytes). With `--top N`, the N functions of the server process with the most
instructions (inclusive, from `callgrind_annotate`) are printed after each count: where
the instructions go.

Each count is the median of `--repeat` runs (3 by default), and the spread of the runs
(highest less lowest, over the median) is printed beside it: how reads split between turns
and whether the kernel has room in a socket's buffer move a count by a percent or two, so a
ratio that differs from 1.00 by less than the spread is parity, not a gain.

Instruction counts do not depend on what else runs on the machine, unlike CPU time on a
shared VM; system calls are counted as the user-space instructions around them only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PROBE_APP = ROOT / "tests" / "apps" / "probe"
UNBOUND = ("realtime.send_items_per_s=1e9", "realtime.send_items_burst=1e9",
           "realtime.send_bytes_per_s=1e15", "realtime.send_bytes_burst=1e15")
BURST = 32
STAMP_BYTES = 8
RECEIPT_EVERY = 4


def start(host: str, peers: int, work: Path, out: Path) -> tuple[subprocess.Popen[str], list]:
    """The server under callgrind with counting off, and each peer's (url, headers)."""
    grind = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable]
    if host == "webxdc-rt":
        members = ",".join(f"p{i}" for i in range(peers))
        command = [*grind, "-m", "webxdc_rt", "serve", str(PROBE_APP), "--members", members,
                   "--port", "0", "--json", "--data-dir", str(work / "data"),
                   *[arg for limit in UNBOUND for arg in ("--limit", limit)]]
    else:
        command = [*grind, str(ROOT / "bench" / "bare_relay.py"), "0", "--loop", "uvloop"]
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(ROOT / "src"))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    assert process.stdout is not None
    endpoints = []
    if host == "webxdc-rt":
        for _ in range(peers):
            invite = json.loads(process.stdout.readline())
            parts = urlsplit(invite["url"])
            endpoints.append((f"ws://127.0.0.1:{parts.port}/.webxdc-rt/socket",
                              {"Host": parts.netloc,
                               "Authorization": f"Bearer {parts.path.rsplit('/', 1)[1]}"}))
    else:
        port = int(process.stdout.readline().split()[1])
        endpoints = [(f"ws://127.0.0.1:{port}/", {})] * peers
    return process, endpoints


async def connect(session: aiohttp.ClientSession, url: str, headers: dict,
                  rt: bool, stamped: bool) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, headers=headers, max_msg_size=0)
    if rt:
        assert json.loads((await ws.receive()).data)["type"] == "hello"
        await ws.send_str('{"type":"join","epoch":1,"stamped":true}' if stamped
                          else '{"type":"join","epoch":1}')
        while json.loads((await ws.receive()).data)["type"] != "joined":
            pass
    return ws


async def drive(pid: int, endpoints: list, rt: bool, items: int, size: int,
                mode: str, stamped: bool) -> None:
    """Connect every peer, switch counting on, send `items` items, switch it off."""
    async with aiohttp.ClientSession() as session:
        peers = [await connect(session, url, headers, rt, stamped)
                 for url, headers in endpoints]
        sender, receivers = peers[0], peers[1:]
        payload = bytes(size + (STAMP_BYTES if stamped else 0))
        size = len(payload)
        read = [0] * len(receivers)
        batch = BURST if mode == "burst" else 1

        async def round_of(count: int) -> None:
            for _ in range(count):
                await sender.send_bytes(payload)
            for i, ws in enumerate(receivers):
                for _ in range(count):
                    msg = await ws.receive()
                    assert msg.type is aiohttp.WSMsgType.BINARY, msg
                    read[i] += len(msg.data) + (2 if size < 126 else 4 if size < 65536 else 10)

        await round_of(batch)  # warm: every path taken once before counting
        grind(pid, "--instr=on")
        for n in range(0, items, batch):
            await round_of(batch)
            if mode == "receipts" and n % RECEIPT_EVERY == 0:
                for i, ws in enumerate(receivers):
                    await ws.send_str(f'{{"type":"received","bytes":{read[i]}}}')
        await asyncio.sleep(0.2)  # let the server finish what the last round set off
        grind(pid, "--instr=off")
        for ws in peers:
            await ws.close()


def grind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                   capture_output=True)


def measure(host: str, peers: int, size: int, items: int, mode: str, stamped: bool = False,
            top: int = 0) -> float:
    """Instructions per delivery; with `top`, the functions with the most instructions are
    printed."""
    work = Path(tempfile.mkdtemp(prefix="relay-instr-"))
    out = work / "callgrind.out"
    process, endpoints = start(host, peers, work, out)
    try:
        asyncio.run(drive(process.pid, endpoints, host == "webxdc-rt", items, size, mode,
                          stamped))
    finally:
        process.terminate()
        process.wait(timeout=120)
        text = out.read_text(errors="replace") if out.exists() else ""
        if top and text:
            print_top(out, top, host)
        shutil.rmtree(work, ignore_errors=True)
    totals = [int(m) for m in re.findall(r"^totals:\s+(\d+)", text, re.M)]
    if not totals:
        raise RuntimeError(f"no counts from callgrind for {host}")
    return totals[0] / (items * (peers - 1))


def print_top(out: Path, top: int, host: str) -> None:
    """The `top` functions with the most inclusive instructions in a callgrind output."""
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(out)],
                               capture_output=True, text=True, check=True).stdout
    rows = [line for line in annotated.splitlines() if re.match(r"^\s*[\d,]+ \(", line)]
    print(f"  {host}: top {top} functions, inclusive instructions")
    for line in rows[1:top + 1]:  # the first row is the program total
        print("   ", line.strip()[:150])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="webxdc-rt,bare-uvloop")
    parser.add_argument("--items", type=int, default=640)
    parser.add_argument("--peers", default="4,16")
    parser.add_argument("--sizes", default="100,4000,128000")
    parser.add_argument("--modes", default="steady,burst,receipts")
    parser.add_argument("--stamped", action="store_true",
                        help="webxdc-rt's peers join stamped and send stamped items")
    parser.add_argument("--top", type=int, default=0,
                        help="print the N functions with the most instructions")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per count; the median is reported, with the spread")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench/relay_instructions.py needs valgrind (Debian package valgrind)")
    hosts = args.hosts.split(",")
    print(f"{'mode':<9} {'size':>7} {'peers':>5} "
          + " ".join(f"{h:>19}" for h in hosts)
          + f"  instructions per delivery (median of {args.repeat}, spread)", flush=True)
    for mode in args.modes.split(","):
        for size in map(int, args.sizes.split(",")):
            for peers in map(int, args.peers.split(",")):
                runs = [[measure(h, peers, size, args.items, mode, args.stamped, args.top)
                         for _ in range(args.repeat)]
                        if mode != "receipts" or h == "webxdc-rt" else None for h in hosts]
                counts = [None if r is None else statistics.median(r) for r in runs]
                cells = " ".join(f"{_cell(r):>19}" for r in runs)
                ratio = (f"  ratio {counts[0] / counts[1]:.2f}"
                         if len(counts) > 1 and None not in counts[:2] else "")
                print(f"{mode:<9} {size:>7} {peers:>5} {cells}{ratio}", flush=True)


def _cell(runs: list[float] | None) -> str:
    """A count's median and the spread of its runs, e.g. `18,627 (1.4%)`."""
    if runs is None:
        return "-"
    median = statistics.median(runs)
    return f"{median:,.0f} ({(max(runs) - min(runs)) / median:.1%})"


if __name__ == "__main__":
    main()
