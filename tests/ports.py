"""Loopback ports for the servers a test starts itself (redis-server, PostgreSQL, host
processes), chosen where nothing else will take them between the choice and the bind.

A port the kernel hands out for `bind(("127.0.0.1", 0))` lies in its ephemeral range, the
same range it draws from for every outgoing connection (to Redis, to PostgreSQL, to a
host). Such a port, free when chosen, can be the local end of some connection a moment
later, and the server then fails to start. So ports are drawn from below that range, at
random, and never handed out twice in one test run."""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000
"""Below this lie the ports of well-known services that may run on the machine."""

_handed_out: set[int] = set()


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports of 127.0.0.1 that nothing listens on now,
    below the kernel's ephemeral range, none of them handed out before in this run."""
    first_ephemeral = int(EPHEMERAL_PORTS.read_text().split()[0])
    for first in random.sample(range(LOWEST, first_ephemeral - count), 2000):
        ports = range(first, first + count)
        if _handed_out.intersection(ports) or not all(map(_bindable, ports)):
            continue
        _handed_out.update(ports)
        return first
    raise AssertionError(f"no {count} free consecutive ports below {first_ephemeral}")


def free_port() -> int:
    """A port of 127.0.0.1 for a server the test starts (see `free_ports`)."""
    return free_ports(1)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
