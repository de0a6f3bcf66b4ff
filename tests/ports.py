"""Loopback ports for the servers a test starts itself (redis-server, PostgreSQL, host
processes), chosen where nothing else will take them between the choice and the bind.

A port the kernel hands out for `bind(("127.0.0.1", 0))` lies in its ephemeral range, the
same range it draws from for every outgoing connection (to Redis, to PostgreSQL, to a
host). Such a port, free when chosen, can be the local end of some connection a moment
later, and the server then fails to start. So ports are drawn from outside that range
(below it, or above it where it ends early), at random, and never handed out twice in one
test run."""

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
    outside the kernel's ephemeral range, none of them handed out before in this run."""
    first_ephemeral, last_ephemeral = map(int, EPHEMERAL_PORTS.read_text().split())
    outside = [*range(LOWEST, first_ephemeral - count + 1),
               *range(last_ephemeral + 1, 65536 - count + 1)]
    for first in random.sample(outside, min(2000, len(outside))):
        ports = range(first, first + count)
        if _handed_out.intersection(ports) or not all(map(_bindable, ports)):
            continue
        _handed_out.update(ports)
        return first
    raise AssertionError(f"no {count} free consecutive ports outside the ephemeral range "
                         f"{first_ephemeral}-{last_ephemeral}")


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
