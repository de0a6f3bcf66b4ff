"""`webxdc-rt conformance pack FILE.xdc` and `webxdc-rt conformance run [--hosts ...]
[--json]`: exit 0 when it ran, 2 for an unknown or unreachable host or a runner that cannot
run here."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from .hosts import HOSTS
from .pack import pack
from .runner import RUN_TIMEOUT_S, RunnerError, run_hosts
from .table import as_json, as_table

__all__ = ["DEFAULT_HOSTS", "add_parser", "default_npm_dir", "run"]

DEFAULT_HOSTS = "webxdc-rt,webxdc-dev"


def default_npm_dir() -> Path:
    """Where the runner installs the npm packages of other hosts: under the user's cache."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "webxdc-rt" / "npm"


def _seconds(text: str) -> float:
    """A positive, finite number of seconds, as `--run-timeout` takes it."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number: {text!r}")
    return seconds


def add_parser(commands: Any) -> None:
    """Add `conformance` and its two subcommands to the command's subparsers."""
    conformance = commands.add_parser(
        "conformance", help="the realtime conformance suite: the app and its runner")
    sub = conformance.add_subparsers(dest="conformance_command", metavar="COMMAND",
                                     required=True)
    packing = sub.add_parser("pack", help="write the realtime conformance app as a .xdc")
    packing.add_argument("file", metavar="FILE.xdc", help="where to write it")
    running = sub.add_parser("run", help="run the suite on hosts, print them side by side")
    running.add_argument("--hosts", default=DEFAULT_HOSTS, metavar="NAMES",
                         help=f"comma-separated, of: {', '.join(HOSTS)} "
                              f"(default: {DEFAULT_HOSTS})")
    running.add_argument("--json", action="store_true", help="print one JSON object")
    running.add_argument("--run-timeout", type=_seconds, default=RUN_TIMEOUT_S,
                         metavar="SECONDS", help="how long one host's run may take before it "
                         "is given up, saying where each page was (default: %(default)g)")
    running.add_argument("--npm-dir", type=Path, default=default_npm_dir(), metavar="DIR",
                         help="where npm packages of other hosts are installed "
                              "(default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Carry out `conformance pack` or `conformance run`; return the exit status."""
    if args.conformance_command == "pack":
        print(pack(args.file))
        return 0
    names = [name.strip() for name in args.hosts.split(",") if name.strip()]
    unknown = [name for name in names if name not in HOSTS]
    if unknown or not names:
        print(f"webxdc-rt: error: unknown host {', '.join(unknown) or '(none given)'}; "
              f"known: {', '.join(HOSTS)}", file=sys.stderr)
        return 2
    try:
        results = asyncio.run(run_hosts(names, args.npm_dir, run_timeout_s=args.run_timeout))
    except RunnerError as exc:
        print(f"webxdc-rt: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(as_json(results), flush=True)
    elif results.reports:
        print(as_table(results), flush=True)
    for host, why in results.unavailable.items():
        print(f"webxdc-rt: error: {host} unreachable: {why}", file=sys.stderr)
    return 2 if results.unavailable else 0
