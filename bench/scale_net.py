"""What bench/scale.py runs its servers in and beside: network namespaces joined by veth
pairs to a bridge in the root namespace, and a throwaway redis-server and PostgreSQL.

Everything it makes is named with PREFIX, so that `cleanup()` (`scale.py --cleanup`) finds
and removes leftovers of a run that was killed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pg_server import _bin as pg_bin  # noqa: E402  (the tests' lookup of server programs)
from ports import free_port  # noqa: E402  (servers' ports, below the ephemeral range)

PREFIX = "wxrt"
"""Names of the namespaces, links and temporary folders this benchmark makes start so."""

SUBNET = "10.213.0"
BRIDGE, BRIDGE_IP = f"{PREFIX}-br", f"{SUBNET}.1"
"""The bridge in the root namespace, and its address: where Redis, PostgreSQL and the load
processes meet the servers in the namespaces."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS`."""
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@dataclass
class Namespaces:
    """Namespaces made for one run: their names and each one's address on the bridge."""

    names: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)

    def prefix(self, index: int) -> list[str]:
        """The command prefix that runs a program in namespace `index`."""
        return ["ip", "netns", "exec", self.names[index]]


def make_namespaces(count: int) -> Namespaces:
    """`count` namespaces, each with a veth pair into the bridge and its own 10.213.0.x/24
    address; raises OSError with the reason when they cannot be made."""
    if ip("link", "show", BRIDGE, check=False).returncode == 0:
        raise OSError(f"{BRIDGE} exists: another run is using it (or, if none is running, "
                      "`scale.py --cleanup` removes its leftovers)")
    made = Namespaces()
    try:
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for index in range(count):
            name, outer, inner = f"{PREFIX}-ns{index}", f"{PREFIX}-v{index}", f"{PREFIX}-p{index}"
            address = f"{SUBNET}.{10 + index}"
            ip("netns", "add", name)
            made.names.append(name)
            ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            ip("link", "set", inner, "netns", name)
            ip("link", "set", outer, "master", BRIDGE, "up")
            ip("-n", name, "addr", "add", f"{address}/24", "dev", inner)
            ip("-n", name, "link", "set", inner, "up")
            ip("-n", name, "link", "set", "lo", "up")
            made.addresses.append(address)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        remove(made)
        detail = getattr(error, "stderr", "") or str(error)
        raise OSError(f"network namespaces could not be made: {detail.strip()}") from error
    return made


def remove(made: Namespaces) -> None:
    """Remove the namespaces of one run (their veth pairs go with them) and the bridge."""
    for name in made.names:
        for pid in ip("netns", "pids", name, check=False).stdout.split():
            os.kill(int(pid), signal.SIGKILL)
        ip("netns", "del", name, check=False)
    ip("link", "del", BRIDGE, check=False)


def cleanup() -> list[str]:
    """Remove every namespace, link and temporary folder named with PREFIX, and kill the
    processes (servers, Redis, PostgreSQL) that run in them or from such a folder, and the
    load processes; what was removed."""
    removed = []
    listed = ip("netns", "list", check=False).stdout.split("\n")
    for name in [line.split()[0] for line in listed if line.startswith(f"{PREFIX}-")]:
        pids = ip("netns", "pids", name, check=False).stdout.split()
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)
        ip("netns", "del", name, check=False)
        removed.append(f"netns {name}")
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():
        link = line.split(":")[1].strip().split("@")[0]
        if link.startswith(f"{PREFIX}-"):
            ip("link", "del", link, check=False)
            removed.append(f"link {link}")
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            # redis-server rewrites its command line: its folder is its working directory.
            where = (proc / "cmdline").read_bytes() + os.readlink(proc / "cwd").encode()
            if f"/{PREFIX}-scale-".encode() in where or b"bench/scale_load.py" in where:
                os.kill(int(proc.name), signal.SIGKILL)
                removed.append(f"process {proc.name}")
        except (OSError, ProcessLookupError):
            continue
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}-scale-*"):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(f"folder {folder}")
    return removed


def wait_for_port(address: str, port: int, process: subprocess.Popen[bytes], what: str,
                  log: Path) -> None:
    """Return once `address:port` accepts connections; raise if `process` died or 30 s
    passed."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)


def start_redis(folder: Path, addresses: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server without persistence, listening on `addresses`; its process and URL."""
    port = free_port()
    log = folder / "redis.log"
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", *addresses, "--save", "",
         "--appendonly", "no", "--dir", str(folder), "--protected-mode", "no",
         "--maxclients", "10000", "--loglevel", "warning", "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log.touch()
    wait_for_port(addresses[0], port, process, "redis-server", log)
    return process, f"redis://{addresses[-1]}:{port}/0"


def _as_unprivileged(folder: Path) -> dict[str, object]:
    """PostgreSQL refuses root: as root, the folder goes to `nobody`, who runs it."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def start_postgres(folder: Path, addresses: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """A PostgreSQL cluster in `folder/pg` trusting the bench's addresses, with database
    `webxdc`; durable settings left at their defaults (fsync on), as a deployment runs it."""
    pg = folder / "pg"
    pg.mkdir()
    as_user = _as_unprivileged(pg)
    data = pg / "data"
    subprocess.run([pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, cwd=pg,
                   **as_user)  # type: ignore[call-overload]
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {SUBNET}.0/24 trust\n")
    port = free_port()
    log = pg / "log"
    process = subprocess.Popen(
        [pg_bin("postgres"), "-D", str(data), "-p", str(port), "-h", ",".join(addresses),
         "-k", str(pg), "-c", "max_connections=200"],
        stdout=subprocess.DEVNULL, stderr=log.open("ab"), cwd=pg,
        **as_user)  # type: ignore[call-overload]
    wait_for_port(addresses[0], port, process, "postgres", log)
    deadline = time.monotonic() + 30
    while subprocess.run([pg_bin("createdb"), "-h", addresses[0], "-p", str(port),
                          "-U", "postgres", "webxdc"], capture_output=True).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError(f"postgres did not accept createdb: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process, f"postgresql://postgres@{addresses[-1]}:{port}/webxdc"


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str] | None,
         sig: int = signal.SIGTERM) -> None:
    """Signal `process`, wait up to 10 s, then kill it; safe on a stopped one."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
