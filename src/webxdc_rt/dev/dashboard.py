"""The simulator's dashboard on its own origin (`dashboard.sim.localhost`): its page, the
commands it sends (add, remove, reset, faults, partition) and the WebSocket that carries the
log to it. Like a member's page it needs its secret link, which sets a host-only cookie;
commands are taken from its own origin only.

Each dashboard socket is sent one batch of the log every `SimulatorLimits.log_interval_s`;
a socket with more than `max_dashboard_buffer_bytes` unsent skips batches (counted), so a
slow dashboard never holds memory or slows the host.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, Protocol

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from ..core import wire
from ..host import http_guard
from ..host.app import Host
from ..host.routing import HOST_PREFIX, invite_response, same_origin
from ..model.chats import Entrance
from .faults import PeerFaults
from .limits import SimulatorLimits

__all__ = ["DASHBOARD_LABEL", "MAX_COMMAND_BYTES", "SimulatorControls", "DashboardSite",
           "apply_command"]

log = logging.getLogger(__name__)

# The event loop keeps only weak references to tasks: each write is held until it is done.
_writes: set[asyncio.Task[None]] = set()

_STATIC = {"/": ("dashboard.html", "text/html"), "/dashboard.js": ("dashboard.js",
                                                                   "text/javascript"),
           "/dashboard.css": ("dashboard.css", "text/css"),
           # Named by the page, so the browser does not ask for a missing /favicon.ico.
           "/favicon.svg": ("favicon.svg", "image/svg+xml")}
_INVITE_PREFIX = HOST_PREFIX + "/invite/"
MAX_COMMAND_BYTES = 16 * 1024
"""Largest command the dashboard may post."""
DASHBOARD_LABEL = "dashboard"
"""The origin label of the dashboard, beside the peers' labels."""


class SimulatorControls(Protocol):
    """What the dashboard reads of the simulator and asks it to do."""

    @property
    def limits(self) -> SimulatorLimits:
        """The simulator's bounds (those of the dashboard's sockets among them)."""

    @property
    def dashboard_token(self) -> str:
        """The secret of the dashboard's link."""

    @property
    def host(self) -> Host | None:
        """The host serving the peers and the dashboard, once started."""

    @property
    def listeners(self) -> set[Callable[[dict[str, Any]], None]]:
        """Told of every batch of the log and every change of the state."""

    def state(self) -> dict[str, Any]:
        """The peers with their faults, and the partition, as JSON."""

    def add_peer(self, member: str | None = None) -> object:
        """A new member of the chat with its page (ValueError when refused)."""

    async def remove_peer(self, member: str) -> None:
        """Take a member out of the chat (KeyError if unknown)."""

    async def reset(self) -> None:
        """A fresh chat with the same peers and faults."""

    def set_faults(self, member: str, faults: PeerFaults) -> None:
        """Put `faults` in force on one peer's link."""

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Split the peers into groups that do not reach one another."""

    def heal(self) -> None:
        """Take every fault and partition away."""


async def apply_command(simulator: SimulatorControls, command: Any) -> dict[str, Any]:
    """Carry out one dashboard command (a decoded JSON object); ValueError or KeyError
    saying what is wrong with it."""
    if not isinstance(command, dict):
        raise ValueError("a command is a JSON object")
    op = command.get("op")
    if op == "add":
        member = command.get("member")
        if member is not None and not isinstance(member, str):
            raise ValueError("member must be a name")
        simulator.add_peer(member)
    elif op == "remove":
        await simulator.remove_peer(_member(command))
    elif op == "reset":
        await simulator.reset()
    elif op == "faults":
        simulator.set_faults(_member(command), PeerFaults.from_json(command.get("faults")))
    elif op == "partition":
        groups = command.get("groups")
        if not isinstance(groups, list) or not all(
                isinstance(group, list) and all(isinstance(m, str) for m in group)
                for group in groups):
            raise ValueError("groups must be a list of lists of member names")
        simulator.partition(groups)
    elif op == "heal":
        simulator.heal()
    else:
        raise ValueError(f"unknown op {op!r}: add, remove, reset, faults, partition, heal")
    return simulator.state()


def _member(command: dict[str, Any]) -> str:
    member = command.get("member")
    if not isinstance(member, str):
        raise ValueError("member must be a name")
    return member


class DashboardSite:
    """Serves the dashboard's origin beside the peers' pages (`Host.mount`)."""

    def __init__(self, simulator: SimulatorControls, origin: str) -> None:
        self.simulator = simulator
        self.origin = origin
        self._policy = (
            "default-src 'self'; "
            f"frame-src http://*.{origin.split('://', 1)[1].split('.', 1)[1]}; "
            "img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
        self._files = {
            path: (resources.files("webxdc_rt.dev").joinpath("static", name).read_bytes(), kind)
            for path, (name, kind) in _STATIC.items()}
        self._sockets = 0
        self._entrance = Entrance(DASHBOARD_LABEL, simulator.dashboard_token)

    def resolve(self, label: str) -> Handler | None:
        """The dashboard's handler for its label."""
        if label != DASHBOARD_LABEL:
            return None
        return functools.partial(self._handle, label=label)

    async def _handle(self, request: web.Request, label: str) -> web.StreamResponse:
        path = request.path
        if path.startswith(_INVITE_PREFIX):
            if not self._entrance.token_matches(path[len(_INVITE_PREFIX):]):
                return _text(403, "This dashboard link is not valid.")
            http_guard.admit(request, label)
            return invite_response(request, self._entrance.token, False)
        host = self.simulator.host
        assert host is not None  # the dashboard is mounted on the simulator's host
        if not host.presents(request, self._entrance):
            response = _text(403, "The dashboard needs its link: open the one printed.")
            response.force_close()
            return response
        http_guard.admit(request, label)
        if path == "/socket":
            return await self._socket(request)
        if path == "/api" and request.method == "POST":
            return await self._command(request)
        if path == "/api/state" and request.method == "GET":
            return web.json_response(self.simulator.state(),
                                     headers={"Cache-Control": "no-store"})
        if request.method != "GET" or path not in self._files:
            return _text(404, f"Not a file of the dashboard: {path}")
        body, kind = self._files[path]
        return web.Response(body=body, content_type=kind,
                            headers={"Cache-Control": "no-cache",
                                     "Content-Security-Policy": self._policy})

    async def _command(self, request: web.Request) -> web.StreamResponse:
        if not same_origin(request):
            return _text(403, "Commands are taken from the dashboard's own origin only.")
        body = await request.content.read(MAX_COMMAND_BYTES + 1)
        if len(body) > MAX_COMMAND_BYTES:
            return _error(413, "too-large", f"a command is at most {MAX_COMMAND_BYTES} bytes")
        try:
            command = wire.decode_json(body.decode("utf-8"))
            state = await apply_command(self.simulator, command)
        except UnicodeDecodeError:
            return _error(400, "bad-command", "the command is not UTF-8")
        except (ValueError, KeyError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            return _error(400, "bad-command", str(message))
        return web.json_response(state)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if not same_origin(request):
            return _text(403, "WebSocket from another origin refused.")
        limits = self.simulator.limits
        if self._sockets >= limits.max_dashboards:
            return _text(503, f"At most {limits.max_dashboards} dashboards at once.")
        # No permessage-deflate: a few bytes on the wire must not inflate to megabytes here.
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_COMMAND_BYTES,
                                   compress=False)
        await ws.prepare(request)
        http_guard.upgraded(request)
        transport = request.transport
        skipped = 0

        def send(message: dict[str, Any]) -> None:
            nonlocal skipped
            if ws.closed or transport is None or transport.is_closing():
                return
            if transport.get_write_buffer_size() > limits.max_dashboard_buffer_bytes:
                skipped += 1  # a slow dashboard skips batches; the counts stay exact
                return
            if skipped and message.get("type") == "batch":
                message = {**message, "batches_skipped": skipped}
            # The write is buffered by the transport; the size check above bounds it.
            task = asyncio.get_running_loop().create_task(_send(ws, json.dumps(message)))
            _writes.add(task)
            task.add_done_callback(_writes.discard)

        self._sockets += 1
        self.simulator.listeners.add(send)
        try:
            send(self.simulator.state())
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue  # the dashboard only listens; commands go by POST
        finally:
            self.simulator.listeners.discard(send)
            self._sockets -= 1
        return ws


async def _send(ws: web.WebSocketResponse, text: str) -> None:
    try:
        await ws.send_str(text)
    except (ConnectionError, RuntimeError):
        pass  # the dashboard went away; its socket's handler ends by itself


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)
