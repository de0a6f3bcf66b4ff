"""One start-up path for every command that serves: `serve`, `host` and `dev`.

`Serving` is an async context manager around a `Host`. Entering it installs the stop
signals' handlers, starts the broker, sets up the host's web runner and listens; leaving it
undoes all of that in reverse order: background tasks cancelled and awaited, runners cleaned
up (open sockets closed), the broker closed, the store closed, the signals given back. What
the commands add (the admin socket, the dashboard) goes through the same object, so nothing
a command starts can outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from .app import Host

__all__ = ["STOP_SIGNALS", "Listen", "Startable", "Serving", "ListenFailed"]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""What stops a serving process: Ctrl-C and the service manager's SIGTERM."""


class ListenFailed(OSError):
    """The address to listen on cannot be had (taken, not this machine's, no permission);
    the message names the address and why."""


@dataclass(frozen=True, slots=True)
class Listen:
    """Where the host's web server listens."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; `Serving.port` tells which."""
    reuse_port: bool = False
    """Share the port with other processes (SO_REUSEPORT): the workers of `serve
    --workers`, among which the kernel spreads connections."""
    sock: socket.socket | None = None
    """A socket already bound (and then `host` and `port` only describe it): for a caller
    that needs the port before the host exists."""


class Startable(Protocol):
    """A part with background work of its own (the Redis broker): started before the
    host serves, closed after it stopped."""

    async def start(self) -> None:
        """Begin the background work; never raises for a peer that cannot be reached."""

    async def close(self) -> None:
        """End the background work and release what it holds."""


class Serving:
    """A host that serves until stopped, and everything that belongs to it.

    `port` is known once entered. `run_task` starts background work that lasts as long as
    the host serves (the store's following of other processes is started here when the store
    says it is shared); it is cancelled and awaited on the way out. A task that fails
    unexpectedly stops the process rather than leaving it half-working.
    """

    def __init__(self, host: Host, listen: Listen, *, broker: Startable | None = None,
                 signals: bool = True) -> None:
        self.host = host
        self.listen = listen
        self.broker = broker
        self.port = 0
        self._signals = signals
        self._stop = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._tasks: asyncio.TaskGroup | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Serving:
        await self._stack.__aenter__()
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._stack.__aexit__(*exc_info)

    async def _start(self) -> None:
        stack, store = self._stack, self.host.store
        stack.callback(store.close)
        # After the sockets are closed (they are added later, so undone earlier): the
        # commits in flight end and their listeners are told before the store closes.
        stack.push_async_callback(store.drain)
        if self._signals:
            self._take_signals()
        if self.broker is not None:
            await self.broker.start()
            stack.push_async_callback(self.broker.close)
        runner = self.host.runner()
        await self.add_runner(runner)
        self.port = await self._open_site(runner)
        self._tasks = await stack.enter_async_context(asyncio.TaskGroup())
        stack.callback(self._cancel_tasks)  # runs before the group waits for them
        if store.shared:
            self.run_task(store.follow(self.host.feed.announced, self.host.feed.resync),
                          "follow the shared store")

    def _take_signals(self) -> None:
        """Stop on SIGINT and SIGTERM, from now until the way out: installed before
        anything is announced, since whoever reads the links may stop the process at once."""
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._stop.set)
        for signum in STOP_SIGNALS:
            self._stack.callback(loop.remove_signal_handler, signum)

    async def add_runner(self, runner: web.BaseRunner) -> None:
        """Set up `runner` now and clean it up on the way out (before what was added
        earlier): its sockets are closed while the store and broker still work."""
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)

    async def _open_site(self, runner: web.AppRunner) -> int:
        listen = self.listen
        site: web.BaseSite
        backlog = self.host.settings.listen_backlog
        if listen.sock is not None:
            site = web.SockSite(runner, listen.sock, backlog=backlog)
        else:
            site = web.TCPSite(runner, listen.host, listen.port, reuse_port=listen.reuse_port,
                               backlog=backlog)
        try:
            await site.start()
        except OSError as exc:
            raise ListenFailed(exc.errno, f"cannot listen on {listen.host}:{listen.port}: "
                                          f"{exc.strerror or exc}") from None
        port: int = runner.addresses[-1][1]
        return port

    def run_task(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run `work` while the host serves; cancelled and awaited when it stops."""
        if self._tasks is None:
            raise RuntimeError("background work starts once the host is serving")
        task = self._tasks.create_task(work, name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def _cancel_tasks(self) -> None:
        for task in list(self._running):
            task.cancel()

    def on_exit(self, callback: Callable[[], object]) -> None:
        """Call `callback` on the way out, before everything entered so far is undone."""
        self._stack.callback(callback)

    def stop(self) -> None:
        """Ask `stopped` to return (as SIGINT or SIGTERM do)."""
        self._stop.set()

    async def stopped(self) -> None:
        """Return once the process is asked to stop."""
        await self._stop.wait()
        log.info("stopping")
