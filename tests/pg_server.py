"""A throwaway PostgreSQL for tests: `initdb` into a temporary folder, `postgres` on a free
loopback port with its Unix socket in that folder, nothing fsynced; it can be stopped and
started again on the same port, as a restarted PostgreSQL would be.

PostgreSQL refuses to run as root, so as root (in CI) the folder is given to the unprivileged
user `nobody` and the server programs run as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from ports import free_port


def _bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, else from Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise RuntimeError(f"{name} is not installed; scripts/test installs it "
                       "(Debian package postgresql)")


class PostgresServer:
    """One `postgres` process the test owns, with a database `webxdc` in a fresh cluster."""

    def __init__(self, *options: str) -> None:
        self.options = options
        """More `postgres` options, e.g. `-c ssl=on`."""
        # Not under pytest's tmp_path: as root that lies in a folder only root may enter.
        self.folder = Path(tempfile.mkdtemp(prefix="webxdc-rt-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.folder, nobody.pw_uid, nobody.pw_gid)
            self._as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid,
                             "extra_groups": []}
        subprocess.run([_bin("initdb"), "-D", str(self.data), "-A", "trust",
                        "-U", "postgres", "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=self.folder, **self._as_user)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/webxdc"

    def start(self) -> PostgresServer:
        """Start it and return once the database `webxdc` accepts connections."""
        self.process = subprocess.Popen(
            [_bin("postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.folder), "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=100", *self.options],
            stdout=subprocess.DEVNULL, stderr=(self.folder / "log").open("ab"),
            cwd=self.folder, **self._as_user)
        deadline = time.monotonic() + 30
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        while True:
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=2) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = 'webxdc'").fetchone()
                    if exists is None:
                        conn.execute("CREATE DATABASE webxdc")
                return self
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start on port {self.port}: "
                                       f"{(self.folder / 'log').read_text()[-2000:]}") from None
                time.sleep(0.05)

    def give(self, *paths: Path) -> None:
        """Hand files in the folder to the user the server runs as, readable by it alone
        (as PostgreSQL wants its TLS key)."""
        for path in paths:
            path.chmod(0o600)
            if self._as_user:
                os.chown(path, self._as_user["user"], self._as_user["group"])

    def stop(self) -> None:
        """Stop it (fast shutdown: clients are disconnected) and wait until it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        """Stop it and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
