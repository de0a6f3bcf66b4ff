"""A throwaway Redis Cluster for tests: `redis-server`s in cluster mode on free loopback
ports in a temporary folder, joined with `redis-cli --cluster create`; slots can be moved
between primaries and a primary killed, as operators and failures do."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from ports import free_port
from redis_server import RedisServer

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
NODE_TIMEOUT_MS = 1000
"""How long a primary may be silent before its replica takes over (small, for tests)."""


class RedisCluster:
    """`primaries` primaries, each with `replicas` replicas."""

    def __init__(self, folder: Path, primaries: int = 3, replicas: int = 0,
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        tls_options = ("--tls-cluster", "yes", "--tls-replication", "yes") if tls else ()
        self.tls = tls
        """(certificate, key, CA) of every node: TLS only, between the nodes too."""
        self.servers = [
            RedisServer(folder / f"node-{index}", None, "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf", "--cluster-node-timeout",
                        str(NODE_TIMEOUT_MS), "--cluster-port", str(free_port()),
                        # a replica takes over however long ago it last heard its primary
                        "--cluster-replica-validity-factor", "0", *tls_options, tls=tls)
            for index in range(primaries * (1 + replicas))]
        self.replicas = replicas

    @property
    def url(self) -> str:
        """The broker URL, naming two of the nodes to learn the others from."""
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://" + ",".join(
            f"127.0.0.1:{server.port}" for server in self.servers[:2]) + "/0"

    def start(self) -> RedisCluster:
        """Start every node, join them into one cluster and wait until it serves."""
        for server in self.servers:
            server.start()
        tls = ["--tls", "--cacert", str(self.tls[2]), "--cert", str(self.tls[0]), "--key",
               str(self.tls[1])] if self.tls else []
        subprocess.run(
            [REDIS_CLI, *tls, "--cluster", "create",
             *(f"127.0.0.1:{server.port}" for server in self.servers),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60)
        self.wait_until(lambda: all(self.serving(server) and self.formed(server)
                                    for server in self.live))
        return self

    def formed(self, server: RedisServer) -> bool:
        """`server` sees every replica as one, and is in sync with its primary if it is
        a replica itself."""
        nodes = server.command("CLUSTER", "NODES").decode()
        replicas = nodes.count(" slave ") + nodes.count(",slave ")
        info = server.command("INFO", "replication").decode()
        return (replicas == len(self.servers) - len(self.servers) // (1 + self.replicas)
                and ("role:master" in info or "master_link_status:up" in info))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    @property
    def live(self) -> list[RedisServer]:
        return [server for server in self.servers if server.process is not None]

    @staticmethod
    def serving(server: RedisServer) -> bool:
        info = server.command("CLUSTER", "INFO").decode()
        return "cluster_state:ok" in info and "cluster_slots_ok:16384" in info

    @staticmethod
    def wait_until(condition, timeout: float = 30.0) -> None:
        """Poll `condition` (the servers are other processes) until it holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the cluster did not get there in time")
            time.sleep(0.02)

    def slot(self, channel: str) -> int:
        return int(self.live[0].command("CLUSTER", "KEYSLOT", channel))

    def owner(self, slot: int, asked: RedisServer | None = None) -> RedisServer:
        """The primary that serves `slot`, as node `asked` (else any live one) sees it."""
        for start, end, primary, *_ in (asked or self.live[0]).command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return self._server(int(primary[1]))
        raise LookupError(f"no node serves slot {slot}")

    def primaries(self) -> list[RedisServer]:
        seen = {self.owner(slot).port: None for slot in range(0, 16384, 512)}
        return [self._server(port) for port in seen]

    def move(self, slot: int, target: RedisServer) -> None:
        """Move `slot` to primary `target` as `redis-cli --cluster reshard` does: mark it
        migrating, move its keys, then give it to `target`."""
        source = self.begin_move(slot, target)
        self.migrate_keys(slot, source, target)
        self.finish_move(slot, source, target)

    def begin_move(self, slot: int, target: RedisServer) -> RedisServer:
        """Mark `slot` as migrating from its primary (returned) to `target`, which imports
        it: keys still on the primary are served there, the others on `target` (`ASK`)."""
        source = self.owner(slot)
        source_id, target_id = (node.command("CLUSTER", "MYID") for node in (source, target))
        target.command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        source.command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        return source

    @staticmethod
    def migrate_keys(slot: int, source: RedisServer, target: RedisServer) -> None:
        """Move the keys of `slot` from `source` to `target` (`MIGRATE`)."""
        keys = source.command("CLUSTER", "GETKEYSINSLOT", str(slot), "1000")
        if keys:
            reply = source.command("MIGRATE", "127.0.0.1", str(target.port), "", "0",
                                   "5000", "KEYS", *keys)
            assert reply == b"OK", reply

    def finish_move(self, slot: int, source: RedisServer, target: RedisServer) -> None:
        """Give `slot` to `target` on every primary, and wait until every node says so."""
        target_id = target.command("CLUSTER", "MYID")
        for node in (target, source, *self.primaries()):
            node.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        self.wait_until(lambda: all(self.owner(slot, node) is target for node in self.live))

    def kill(self, server: RedisServer) -> None:
        """Kill `server` at once, as a crash would."""
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        server.process = None

    def _server(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)
