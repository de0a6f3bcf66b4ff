"""The data folder and the database file: this user's alone.

The folder holds the host's secret and every invite token, so a new folder is made 0700
and the database 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` files the
database's mode). An existing folder is never changed, only warned about.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from pathlib import Path
from typing import Final

from ...model.names import shown

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "make_private_dir", "shared_dir_warning",
           "create_private"]

PRIVATE_DIR_MODE: Final = 0o700
"""The data folder holds the host's secret and every invite token: its user's alone."""
PRIVATE_FILE_MODE: Final = 0o600
"""The database, and the log and shared-memory files SQLite makes beside it with its mode."""


def make_private_dir(data_dir: str | Path) -> Path:
    """The data folder, created readable by this user alone (`PRIVATE_DIR_MODE`) if it does
    not exist yet (the folders above it as usual). An existing folder is left as it is: see
    `shared_dir_warning`. OSError if it cannot be created."""
    directory = Path(data_dir)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=PRIVATE_DIR_MODE)
    return directory


def shared_dir_warning(data_dir: str | Path) -> str | None:
    """A line for the log when other users may enter or read the data folder (group or
    world permissions), with the command that fixes it; None when it is private. The folder
    is not changed: its permissions may be someone's choice (a backup group)."""
    try:
        mode = stat.S_IMODE(os.stat(data_dir).st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return shown(f"the data folder {data_dir} (mode {mode:04o}) lets other users of this "
                 "machine read the invite links and the host's secret in it; fix: chmod 700 "
                 f"{shlex.quote(str(data_dir))}")


def create_private(path: Path) -> None:
    """Create the database file with `PRIVATE_FILE_MODE` before SQLite opens it, if it does
    not exist: SQLite gives its log and shared-memory files the mode of the database."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(descriptor)
