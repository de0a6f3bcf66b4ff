"""`webxdc-rt backup DEST` and `webxdc-rt restore SRC`: the SQLite database of a data
folder copied out while a host runs on it, and copied back while none does.

PostgreSQL (`--store`) is backed up with `pg_dump` (docs/deploy.md says how); these
commands are for the embedded store, whose one file holds everything a host keeps.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..stores.api import StoreError
from ..stores.sqlite import (
    DB_FILE_NAME,
    backup_database,
    database_in_use,
    make_private_dir,
    restore_database,
)
from .admin import AdminSocketError, admin_socket_path, claim_socket_path

__all__ = ["COMMANDS", "add_commands", "run"]

COMMANDS = ("backup", "restore")
"""The subcommands this module carries out."""


def add_commands(commands: Any, data_dir_default: str) -> None:
    """Add `backup` and `restore` to the `webxdc-rt` parser's subcommands."""
    backup = commands.add_parser(
        "backup", help="copy the data folder's database to a new file, also while a host "
                       "runs on it")
    backup.add_argument("destination", metavar="DEST",
                        help="the backup file to create (refused if it exists)")
    restore = commands.add_parser(
        "restore", help="replace the data folder's database with a backup (no host may be "
                        "running on it); every invite link is replaced by a new one")
    restore.add_argument("source", metavar="SRC", help="a file made by `webxdc-rt backup`")
    for parser in (backup, restore):
        parser.add_argument("--data-dir", default=data_dir_default, metavar="DIR",
                            help="the data folder (default: %(default)s)")
        parser.add_argument("--json", action="store_true",
                            help="print the outcome as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Carry out `backup` or `restore`; return the exit status (2 with one line on stderr
    for what the user can fix)."""
    database = Path(args.data_dir) / DB_FILE_NAME
    try:
        if args.command == "backup":
            outcome = _backup(database, Path(args.destination))
        else:
            outcome = _restore(Path(args.source), Path(args.data_dir), database)
    except (OSError, StoreError, AdminSocketError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        print(f"webxdc-rt: error: {args.command}: {reason}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome), flush=True)
    else:
        print(outcome["message"], flush=True)
    return 0


def _backup(database: Path, destination: Path) -> dict[str, Any]:
    if destination.exists():
        raise StoreError(f"{destination} exists; name a new file")
    backup_database(database, destination)
    return {"backup": str(destination), "database": str(database),
            "message": f"backed up {database} to {destination}"}


def _restore(source: Path, data_dir: Path, database: Path) -> dict[str, Any]:
    make_private_dir(data_dir)
    # The admin socket answers while a host runs; the database's lock byte is held while
    # any process (`serve` too) has it open.
    claim_socket_path(admin_socket_path(data_dir))
    if database_in_use(database):
        raise StoreError(f"a webxdc-rt process has {database} open: stop it first")
    rotated = restore_database(source, database)
    return {"restored": str(source), "database": str(database), "links_replaced": rotated,
            "message": f"restored {database} from {source}; {rotated} invite links were "
                       "replaced by new ones (webxdc-rt link show CHAT MEMBER once the host "
                       "runs)"}
