"""A throwaway `redis-server` for tests: a free loopback port, a temporary folder, nothing
persisted (`--save ''`, `--appendonly no`); it can be stopped and started again on the same
port, as a restarted Redis would be."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import hiredis
from ports import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """One `redis-server` process the test owns."""

    def __init__(self, folder: Path, port: int | None = None, *options: str,
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.options = options
        """More `redis-server` options, e.g. `--rename-command SPUBLISH ""`."""
        self.tls = tls
        """(certificate, key, CA): TLS only, on `port`; clients' certificates are checked
        against the CA when they present one (this helper presents the server's own)."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def _listen(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        cert, key, ca = self.tls
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                "--tls-auth-clients", "optional"]

    def start(self) -> RedisServer:
        """Start it and return once it answers PING."""
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError("redis-server is not installed; scripts/test installs it "
                               "(Debian package redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "redis.log", "ab") as log:  # kept across restarts
            self.process = subprocess.Popen(
                [REDIS_SERVER, *self._listen(), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no",
                 "--loglevel", "warning", "--protected-mode", "no", *self.options],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                said = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{said}")
            time.sleep(0.01)
        return self
    def stop(self) -> None:
        """Stop it (SIGTERM, as a restart does) and wait until it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def command(self, *args: str | bytes) -> Any:
        """Send one command and return its reply, parsed."""
        reader = hiredis.Reader()
        with self._connect() as conn:
            conn.sendall(hiredis.pack_command(args))
            while (reply := reader.gets()) is False:
                data = conn.recv(65536)
                if not data:
                    raise ConnectionError("redis-server closed the connection")
                reader.feed(data)
            return reply

    def _connect(self) -> socket.socket:
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if self.tls is None:
            return conn
        context = ssl.create_default_context(cafile=str(self.tls[2]))
        context.load_cert_chain(self.tls[0], self.tls[1])
        return context.wrap_socket(conn, server_hostname="127.0.0.1")

    def ping(self) -> bool:
        try:
            return bool(self.command("PING") == b"PONG")
        except OSError:
            return False

    def shard_subscribers(self, channel: str) -> int:
        """How many connections are subscribed to the shard channel `channel`."""
        return int(self.command("PUBSUB", "SHARDNUMSUB", channel)[1])
