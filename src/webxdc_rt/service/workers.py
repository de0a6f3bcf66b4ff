"""`serve --workers N`: N processes on one port, kept running.

The parent binds the port once (SO_REUSEPORT, so that the kernel spreads connections over
the workers), forks the workers, passes stop signals on and replaces a worker that dies.
Every worker runs the same `serve` start-up path; the first one prints the links. On Linux
each worker asks the kernel for SIGTERM when the parent dies, so that a parent killed
outright (SIGKILL, the OOM killer) takes its workers with it instead of leaving them on the
port.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from ..host.lifecycle import STOP_SIGNALS
from .options import UsageError

__all__ = ["WORKER_RESPAWN_INTERVAL_S", "Worker", "run_workers"]

log = logging.getLogger(__name__)

WORKER_RESPAWN_INTERVAL_S = 1.0
"""Least time between two replacements of workers that died, so that a worker that dies at
once again and again costs one fork a second, not a busy loop."""

PR_SET_PDEATHSIG = 1
"""prctl(2) option, from <linux/prctl.h>: the signal this process gets when the thread that
forked it ends."""

Worker = Callable[[int, bool, int], None]
"""Serve as worker `index` on `port` (bound by the parent), printing the links when told;
returns once stopped, raises UsageError for what the user can fix."""


def run_workers(workers: int, host: str, port: int, worker: Worker) -> int:
    """Fork `workers` processes that each run `worker` on the same port. A worker that dies
    (killed, or a failure it did not expect) is replaced, and the others serve on meanwhile;
    one that ends with a usage error (exit status 2: it cannot listen, the store is
    unreachable) is not. Returns once every worker has ended: 0 if the last ones ended
    cleanly, else the first status of a worker that was not replaced."""
    probe = _hold_port(host, port)
    try:
        port = probe.getsockname()[1]
        _say_if_workers_may_outlive_this_process()
        children = {_fork(worker, index, index == 0, port, probe): index
                    for index in range(workers)}
        return _supervise(children, worker, port, probe)
    finally:
        probe.close()


def _hold_port(host: str, port: int) -> socket.socket:
    """A socket bound to the workers' address (port 0 picks one), held while they run."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        probe.bind((host, port))
    except OSError as exc:
        probe.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return probe


def _supervise(children: dict[int, int], worker: Worker, port: int,
               probe: socket.socket) -> int:
    """Wait for the workers, replacing those that die, until all have ended."""
    stopping = False

    def pass_on(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, pass_on)
    result = 0
    last_respawn = -math.inf
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if index is None or code == 0 or stopping:
            continue
        if code == 2:
            result = result or code
            continue
        time.sleep(max(0.0, last_respawn + WORKER_RESPAWN_INTERVAL_S - time.monotonic()))
        if stopping:
            continue
        last_respawn = time.monotonic()
        log.warning("worker %d (pid %d) ended (%d); starting another, %d still serving",
                    index, pid, code, len(children))
        children[_fork(worker, index, False, port, probe)] = index
    return result


def _fork(worker: Worker, index: int, links: bool, port: int, probe: socket.socket) -> int:
    """Start worker `index` in a child process; return its pid. The child never returns
    into the parent's code: it exits with 0, 2 for a usage error, or 1."""
    sys.stdout.flush()
    sys.stderr.flush()
    # Always on the main thread (the only one allowed signal handlers, see _supervise),
    # which lives as long as this process: the kernel's parent-death signal follows the
    # thread that forked, not the process.
    supervisor = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    probe.close()
    _name_in_log_lines(index)
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    status = 0
    try:
        if _stop_with(supervisor):
            worker(index, links, port)
    except UsageError as exc:
        print(f"webxdc-rt: error: {exc}", file=sys.stderr, flush=True)
        status = 2
    except BaseException:
        log.exception("worker %d failed", index)
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _prctl() -> Callable[..., int] | None:
    """The C library's prctl(2), where there is one (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _say_if_workers_may_outlive_this_process() -> None:
    if _prctl() is None:
        log.warning("this system has no prctl(PR_SET_PDEATHSIG): if this process is killed "
                    "outright (SIGKILL), its workers keep serving until stopped one by one")


def _stop_with(supervisor: int) -> bool:
    """In a worker just forked: have the kernel send SIGTERM (the graceful stop) when the
    parent, `supervisor`, dies. False if it died already, before the kernel was asked: the
    worker then does not start."""
    prctl = _prctl()
    if prctl is None:
        return True
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot have this worker stopped when its parent dies: prctl: %s",
                    os.strerror(ctypes.get_errno()))
        return True
    if os.getppid() != supervisor:
        log.warning("the parent process (pid %d) is gone; not starting", supervisor)
        return False
    return True


def _name_in_log_lines(index: int) -> None:
    """Every log line of this worker process begins with `worker INDEX:`, so the lines of
    workers that start or stop together can be told apart."""
    prefix = f"worker {index}: "

    def name(record: logging.LogRecord) -> bool:
        record.msg = prefix + str(record.msg)
        return True

    for handler in logging.getLogger().handlers:
        handler.addFilter(name)
