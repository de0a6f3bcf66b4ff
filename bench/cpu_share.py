"""What else used the machine's CPU while a benchmark measured (Linux /proc).

On a shared machine the figures move with what other processes do. Around each measured
phase this samples the machine's CPU time (/proc/stat) and that of this process and all its
descendants alive at both ends (/proc/<pid>/stat), so that a report can say how much of the
machine other processes took, and how much the hypervisor took away (steal).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def machine_ticks() -> tuple[int, int, int]:
    """Clock ticks since boot of all cores: (busy, steal, all)."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(x) for x in stat.readline().split()[1:9])
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + idle + iowait + steal


def own_ticks() -> dict[int, int]:
    """utime + stime, in clock ticks, of this process and each of its live descendants."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it has just exited
        fields = stat[stat.rindex(")") + 2:].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        ticks[pid] = int(fields[11]) + int(fields[12])
    own: dict[int, int] = {}
    pending = [os.getpid()]
    while pending:
        pid = pending.pop()
        own[pid] = ticks.get(pid, 0)
        pending.extend(children.get(pid, ()))
    return own


@dataclass
class CpuShare:
    """CPU time, in seconds, over the phases measured so far: of the whole machine (all
    cores), used by processes other than this run's, and taken by the hypervisor."""

    total_s: float = 0.0
    others_s: float = 0.0
    steal_s: float = 0.0

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        """Adds the time spent inside the `with` block."""
        machine_before, own_before = machine_ticks(), own_ticks()
        try:
            yield
        finally:
            busy, steal, total = (b - a for a, b in zip(machine_before, machine_ticks(),
                                                         strict=True))
            own_after = own_ticks()
            own = sum(t - own_before.get(pid, 0) for pid, t in own_after.items())
            hz = os.sysconf("SC_CLK_TCK")
            self.total_s += total / hz
            self.others_s += max(0, busy - own) / hz
            self.steal_s += steal / hz

    def add(self, other: CpuShare) -> None:
        """Counts `other`'s phases in this one's too."""
        self.total_s += other.total_s
        self.others_s += other.others_s
        self.steal_s += other.steal_s

    @property
    def others(self) -> float:
        """Share of the machine's CPU time that other processes used."""
        return self.others_s / self.total_s if self.total_s else 0.0

    @property
    def steal(self) -> float:
        """Share of the machine's CPU time that the hypervisor took away."""
        return self.steal_s / self.total_s if self.total_s else 0.0
