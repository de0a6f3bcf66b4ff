"""`webxdc-rt dev APP` (a folder, a `.xdc` or a dev server's URL): the simulator served
until Ctrl-C, its dashboard opened in the default browser (unless `--no-open`), and with
`--json` one line for scripts:
`{"dashboard": URL, "peers": [{"member", "url", "self_addr"}, ...]}`, flushed before
serving."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import webbrowser

from .limits import SimulatorLimits
from .simulator import Simulator

__all__ = ["add_command", "run"]

log = logging.getLogger(__name__)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `dev` subcommand's options."""
    dev = commands.add_parser(
        "dev", help="every peer of an app on one dashboard, with a live log and faults")
    dev.add_argument("app", metavar="APP",
                     help="a .xdc file, a folder with index.html at its root (its frames "
                          "reload when a file changes), or the URL of a running dev server "
                          "such as http://localhost:5173 (carried through every peer's "
                          "origin, hot reload included)")
    dev.add_argument("--peers", type=int, default=2, metavar="N",
                     help="peers to start with (default: 2)")
    dev.add_argument("--host", default="127.0.0.1",
                     help="loopback address to listen on (default: 127.0.0.1)")
    dev.add_argument("--port", type=int, default=0,
                     help="port to listen on (default: 0, a free one)")
    dev.add_argument("--no-open", action="store_true",
                     help="do not open the dashboard in the default browser")
    dev.add_argument("--json", action="store_true",
                     help="print one JSON line with the dashboard's and the peers' links")


async def run(args: argparse.Namespace) -> None:
    """Serve the simulator until SIGINT or SIGTERM. Raises ValueError (bad peers count, a
    broken app) and OSError (a taken port) before anything is served."""
    limits = SimulatorLimits()
    simulator = Simulator(args.app, args.peers, host=args.host, port=args.port, limits=limits)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await simulator.start()
    try:
        if args.json:
            print(json.dumps({"dashboard": simulator.dashboard_url,
                              "peers": [peer.to_json() for peer in simulator.peers()]}),
                  flush=True)
        else:
            print(f"dashboard: {simulator.dashboard_url}", flush=True)
            for peer in simulator.peers():
                print(f"{peer.member}: {peer.url}", flush=True)
        if not args.no_open:
            await asyncio.to_thread(webbrowser.open, simulator.dashboard_url)
        log.info("simulating %r on %s:%d; Ctrl-C stops", simulator.source.name, args.host,
                 simulator.port)
        await stop.wait()
    finally:
        await simulator.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
