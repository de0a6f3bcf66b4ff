"""The simulator behind `webxdc-rt dev`: one app served to a chat of peers on one host, with
the network's faults applied where the host hands realtime items and status updates to a
receiver, and the traffic counted and sampled for the dashboard's log.

Faults live in the host's delivery path (`Host.route`, `UpdateFeed.route`): an item for a
receiver is lost, handed over at once, or held on a timer line and handed over later; an
update for a listener whose link is down waits in a bounded queue until the link is back.
Transports are never touched, so what the app sees is what a real network would give it.

The state is ephemeral (an in-memory store): a reset shares the app into a new chat, so
every peer gets a new origin and starts with empty storage, no updates and no messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import math
import os
import secrets
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from ..core.fanout import Published
from ..core.messages import ChatMessageDraft
from ..core.realtime import Connection
from ..core.updates import Update
from ..host.app import Host, HostHooks, HostSettings
from ..host.feed import FeedSocket
from ..model.chats import Chat, Page
from ..model.xdc import AppSource, FolderApp, open_app
from ..service.manage import ManageError, Manager
from ..stores.sqlite import Store
from .faults import FaultLimits, FaultPlan, PeerFaults
from .proxy import DevServerApp, DevServerProxy, is_dev_server_url
from .traffic import PeerCounts, TrafficLimits, TrafficLog, preview

__all__ = ["Simulator", "SimulatorLimits", "PeerInfo", "PEER_NAMES", "SIM_DOMAIN",
           "DASHBOARD_LABEL"]

log = logging.getLogger(__name__)

PEER_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
              "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil")
"""Names given to peers in order: a person tells them apart at a glance."""
SIM_DOMAIN = "sim.localhost"
"""Peers live at `<label>.sim.localhost`, the dashboard at `dashboard.sim.localhost`: one
site (`sim.localhost`), so the dashboard's frames send the pages' SameSite cookies, while
every page keeps its own origin and storage."""
DASHBOARD_LABEL = "dashboard"


@dataclass(frozen=True)
class SimulatorLimits:
    """Bounds of the simulator and its dashboard."""

    max_peers: int = 16
    """Peers at once (the dashboard's layout is made for 1 to 8)."""
    log_interval_s: float = 0.25
    """How often the dashboard is sent the log's batch: rates, who is joined, events."""
    max_dashboard_buffer_bytes: int = 1024 * 1024
    """Bytes waiting for one dashboard socket; a batch beyond it is skipped (counted)."""
    max_dashboards: int = 8
    """Dashboard sockets at once."""
    reload_poll_s: float = 0.5
    """How often an app folder is checked for changed files (live reload)."""
    max_watched_files: int = 10_000
    """Files of an app folder watched for live reload; beyond, the rest are not."""
    faults: FaultLimits = field(default_factory=FaultLimits)
    traffic: TrafficLimits = field(default_factory=TrafficLimits)

    def __post_init__(self) -> None:
        for name in ("max_peers", "log_interval_s", "max_dashboard_buffer_bytes",
                     "max_dashboards", "reload_poll_s", "max_watched_files"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number")


@dataclass(frozen=True)
class PeerInfo:
    """One peer as the dashboard and scripts see it."""

    member: str
    url: str
    """Its invite link (opens the app as this member, on its own origin)."""
    self_addr: str
    label: str
    """Its origin label."""

    def to_json(self) -> dict[str, str]:
        """The form `--json` prints."""
        return {"member": self.member, "url": self.url, "self_addr": self.self_addr}


@dataclass
class _HeldUpdates:
    """Status updates waiting for one listener's link: (sender label, listener, frame,
    not before)."""

    queue: deque[tuple[str, FeedSocket, bytes, float]] = field(default_factory=deque)
    overflowed: bool = False


@dataclass(frozen=True, slots=True)
class _Route:
    """What the log needs of one sender's receivers, kept while they stay the same."""

    receivers: tuple[Connection, ...]
    sender: str
    sender_name: str
    labels: list[str]
    names: list[str]
    counts: list[PeerCounts]


class Simulator:
    """One app, a chat of peers, the faults between them and the log of what travels.

    `app` is a folder, a `.xdc`, or the URL of a running dev server (`devproxy.py`)."""

    def __init__(self, app: str | Path, peers: int = 2, *, host: str = "127.0.0.1",
                 port: int = 0, settings: HostSettings | None = None,
                 limits: SimulatorLimits | None = None) -> None:
        self.limits = limits or SimulatorLimits()
        if not 1 <= peers <= self.limits.max_peers:
            raise ValueError(f"peers must be from 1 to {self.limits.max_peers}")
        self._proxy: DevServerProxy | None = None
        if isinstance(app, str) and is_dev_server_url(app):
            self._proxy = DevServerProxy(app)
            self.source: AppSource = DevServerApp(f"dev server {self._proxy.base_url}",
                                                  key=self._proxy.base_url,
                                                  url=self._proxy.base_url)
        else:
            self.source = open_app(app)
        self.listen_host = host
        self.listen_port = port
        self.port = 0
        self.dashboard_token = secrets.token_urlsafe(16)
        self._settings = settings or HostSettings()
        self._initial = list(PEER_NAMES[:peers])
        self.plan = FaultPlan(self.limits.faults)
        self.traffic = TrafficLog(self.limits.traffic)
        self.store = Store()
        self.host: Host | None = None
        self.manager: Manager | None = None
        self.chat: Chat | None = None
        self._chat_number = 0
        self._runner: web.AppRunner | None = None
        self._labels: dict[int, str] = {}
        self._routes: dict[int, _Route] = {}
        self._names: dict[str, str] = {}
        self._held_items: list[tuple[float, int, Connection, tuple[bytes, ...], int,
                                     Published, str]] = []
        self._held_per_receiver: Counter[str] = Counter()
        self._sequence = itertools.count()
        self._item_timer: asyncio.TimerHandle | None = None
        self._held_updates: dict[str, _HeldUpdates] = {}
        self._update_timer: asyncio.TimerHandle | None = None
        self._joined: set[str] = set()
        self._refused: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[int]] = set()
        self.listeners: set[Callable[[dict[str, Any]], None]] = set()
        """Told of every batch and change (the dashboard's sockets)."""
        self.dashboard_url = ""

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Share the app with the first peers and serve the host and the dashboard."""
        from .dashboard import DashboardSite  # the dashboard's HTTP side needs the simulator

        loop = asyncio.get_running_loop()
        registry = self.store.load_registry()
        # The frames' origin is known once the port is: the host is made after binding.
        sock = _bound_socket(self.listen_host, self.listen_port)
        self.port = sock.getsockname()[1]
        dashboard_origin = f"http://{DASHBOARD_LABEL}.{SIM_DOMAIN}:{self.port}"
        settings = replace(self._settings, domain=SIM_DOMAIN, scheme="http", public_port=None,
                           frame_ancestors=(dashboard_origin,))
        self.host = Host(registry, {}, settings, store=self.store, hooks=HostHooks(
            route_item=self._route_item, route_update=self._route_update,
            watch_messages=self._on_message, app_proxy=self._proxy))
        self.manager = Manager(self.host, self.store)
        self.manager.port = self.port
        self._new_chat(self._initial)
        self.host.mount(DashboardSite(self, dashboard_origin).resolve)
        self._runner = self.host.runner()
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.dashboard_url = (f"{dashboard_origin}/.webxdc-rt/invite/{self.dashboard_token}")
        self._tasks.append(loop.create_task(self._pump()))
        if isinstance(self.source, FolderApp):
            self._tasks.append(loop.create_task(self._watch(self.source.root)))

    async def close(self) -> None:
        """Stop serving."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for timer in (self._item_timer, self._update_timer):
            if timer is not None:
                timer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._proxy is not None:
            await self._proxy.close()
        self.store.close()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- peers ---------------------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        """The peers now, in the order they joined the chat."""
        host, chat = self._host(), self._chat()
        apps = host.registry.apps_of(chat)
        if not apps:
            return []
        app = apps[0]
        result = []
        for member in chat.members:
            page = host.registry.page_of(app, member)
            if page is not None:
                result.append(PeerInfo(member.name, host.invite_url(page, self.port),
                                       page.self_addr, page.label))
        return result

    def peer(self, member: str) -> PeerInfo:
        """One peer by its member name; KeyError if there is none."""
        for info in self.peers():
            if info.member == member:
                return info
        raise KeyError(f"no peer named {member!r}")

    def add_peer(self, member: str | None = None) -> PeerInfo:
        """A new member of the chat with its page; ValueError at `max_peers` or for a
        taken name."""
        chat = self._chat()
        if len(chat.members) >= self.limits.max_peers:
            raise ValueError(f"at most {self.limits.max_peers} peers")
        taken = {m.name.casefold() for m in chat.members}
        if member is None:
            member = next((name for name in PEER_NAMES if name not in taken),
                          f"peer{len(chat.members) + 1}")
        if member.casefold() in taken:
            raise ValueError(f"a peer is named {member!r} already")
        try:
            self._manager().add_member(chat, member)
        except ManageError as exc:  # a name that is not printable text, say
            raise ValueError(str(exc)) from None
        self._refresh_names()
        self._changed()
        return self.peer(member)

    async def remove_peer(self, member: str) -> None:
        """Take a member out of the chat; its sockets are closed. KeyError if unknown."""
        info = self.peer(member)
        chat = self._chat()
        target = next(m for m in chat.members if m.name == info.member)
        self._observe_joins(asyncio.get_running_loop().time())
        await self._manager().remove_member(chat, target)
        if info.label in self._joined:
            self._joined.discard(info.label)
            self.traffic.event("leave", asyncio.get_running_loop().time(), peer=info.member)
        self.plan.forget(info.label)
        self._held_updates.pop(info.label, None)
        self._refresh_names()
        self._changed()

    async def reset(self) -> None:
        """A fresh chat with the same peers: no updates, no messages, and new origins, so
        no storage either. Faults stay in force (by member name)."""
        old = {info.member: info.label for info in self.peers()}
        faults = {member: self.plan.faults(label) for member, label in old.items()}
        groups = [[self._names.get(label, label) for label in group]
                  for group in self.plan.groups()]
        old_chat = self._chat()
        names = [member.name for member in old_chat.members]
        # The new chat first: whoever asks meanwhile (the log, the dashboard) sees it.
        self._held_items.clear()
        self._held_per_receiver.clear()
        self._held_updates.clear()
        self.plan = FaultPlan(self.limits.faults)
        self.traffic.reset()
        self._routes.clear()
        self._joined.clear()
        self._new_chat(names)
        await self._manager().delete_chat(old_chat)
        for member, peer_faults in faults.items():
            self.set_faults(member, peer_faults, notify=False)
        if groups:
            self.partition(groups, notify=False)
        self._changed()

    # -- faults --------------------------------------------------------------------------

    def set_faults(self, member: str, faults: PeerFaults, *, notify: bool = True) -> None:
        """Put `faults` in force on one peer's link (`PeerFaults()` for a perfect one)."""
        label = self.peer(member).label
        self.plan.set_faults(label, faults)
        self._release_updates()
        if notify:
            self._changed()

    def partition(self, groups: Iterable[Iterable[str]], *, notify: bool = True) -> None:
        """Split the peers (by member name) into groups that do not reach one another;
        no groups heals every partition."""
        labels = [[self.peer(member).label for member in group] for group in groups]
        self.plan.partition(labels)
        self._release_updates()
        if notify:
            self._changed()

    def heal(self) -> None:
        """Take every fault and partition away."""
        for info in self.peers():
            self.plan.set_faults(info.label, PeerFaults())
        self.plan.partition([])
        self._release_updates()
        self._changed()

    # -- what the dashboard reads --------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The peers with their faults, and the partition, as JSON."""
        peers = []
        for info in self.peers():
            peers.append({**info.to_json(), "label": info.label,
                          "faults": self.plan.faults(info.label).to_json(),
                          "shown_faults": self.plan.describe(info.label),
                          "joined": info.label in self._joined})
        return {"type": "state", "app": self.source.name, "peers": peers,
                "partition": [[self._names.get(label, label) for label in group]
                              for group in self.plan.groups()]}

    def joined(self) -> list[str]:
        """Members joined to the realtime channel now."""
        return sorted(self._names[label] for label in self._joined if label in self._names)

    # -- the delivery path ---------------------------------------------------------------

    def _route_item(self, topic: str, item: Published, receivers: tuple[Connection, ...],
                    parts: tuple[bytes, ...], size: int) -> None:
        """Every realtime item for this host's receivers: counted, sampled, and handed to
        each receiver now, later, or never, as the faults say."""
        now = asyncio.get_running_loop().time()
        traffic, plan = self.traffic, self.plan
        # Who the receivers are is worked out once per sender and set of receivers: the hub
        # hands the same tuple again while nobody joins or leaves.
        route = self._routes.get(item.sender)
        if route is None or route.receivers is not receivers:
            route = self._routes[item.sender] = self._new_route(item.sender, receivers)
        sender, labels, receiver_names = route.sender, route.labels, route.names
        payload_size = len(item.payload)
        traffic.item(route.sender_name, receiver_names, item.payload, payload_size, now)
        if not plan.active:
            for conn in receivers:
                conn.sink.deliver(parts, size, item)
            for counts in route.counts:
                counts.items_received += 1
                counts.bytes_received += payload_size
            return
        for conn, label, name in zip(receivers, labels, receiver_names, strict=True):
            fate = plan.item_fate(sender, label, size, now)
            if isinstance(fate, str):
                traffic.lost(name, fate)
            elif fate <= 0:
                conn.sink.deliver(parts, size, item)
                traffic.delivered(name, len(item.payload))
            elif self._held_per_receiver[label] >= self.limits.faults.max_held_items:
                traffic.lost(name, "held-full")
            else:
                self._held_per_receiver[label] += 1
                heapq.heappush(self._held_items, (now + fate, next(self._sequence), conn, parts,
                                                  size, item, label))
        self._arm_item_timer()

    def _new_route(self, sender_id: int, receivers: tuple[Connection, ...]) -> _Route:
        names = self._names
        sender = self._label_of(sender_id)
        labels = [self._label_of(conn.id) for conn in receivers]
        receiver_names = [names.get(label, label) for label in labels]
        if len(self._routes) > 4096:  # closed connections are never asked for again
            self._routes.clear()
        return _Route(receivers, sender, names.get(sender, sender), labels, receiver_names,
                      [self.traffic.peer(name) for name in receiver_names])

    def _arm_item_timer(self) -> None:
        if not self._held_items:
            return
        due = self._held_items[0][0]
        timer = self._item_timer
        if timer is not None and timer.when() <= due:
            return
        if timer is not None:
            timer.cancel()
        self._item_timer = asyncio.get_running_loop().call_at(due, self._release_items)

    def _release_items(self) -> None:
        """Hand over every held item that is due, then wait for the next."""
        self._item_timer = None
        now = asyncio.get_running_loop().time()
        held = self._held_items
        while held and held[0][0] <= now:
            _, _, conn, parts, size, item, label = heapq.heappop(held)
            self._held_per_receiver[label] -= 1
            conn.sink.deliver(parts, size, item)
            self.traffic.delivered(self._names.get(label, label), len(item.payload))
        self._arm_item_timer()

    def _route_update(self, sender: Page, update: Update,
                      frames: list[tuple[FeedSocket, bytes]]) -> None:
        """Every stored status update: to each listener now, after its latency, or once its
        link to the sender is back; a listener's own updates reach it at once."""
        now = asyncio.get_running_loop().time()
        self.traffic.event("update", now, sender=self._names.get(sender.label, sender.label),
                           size=len(update.payload_json),
                           **preview(update.payload_json.encode(),
                                     self.limits.traffic.preview_bytes))
        for listener, frame in frames:
            receiver = listener.page.label
            held = self._held_updates.get(receiver)
            if receiver == sender.label or (
                    held is None and self.plan.connected(sender.label, receiver)
                    and not self.plan.update_delay(receiver)):
                listener.sink.write((frame,), len(frame))
                continue
            if held is None:
                held = self._held_updates[receiver] = _HeldUpdates()
            if len(held.queue) >= self.limits.faults.max_held_updates:
                held.queue.clear()
                held.overflowed = True
            held.queue.append((sender.label, listener, frame,
                               now + self.plan.update_delay(receiver)))
        self._release_updates()

    def _release_updates(self) -> None:
        """Hand each listener the held updates whose link is up and whose latency passed,
        in order; wait for the next one due."""
        if self._update_timer is not None:
            self._update_timer.cancel()
            self._update_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        next_due = math.inf
        for receiver, held in list(self._held_updates.items()):
            queue = held.queue
            while queue:
                sender, listener, frame, not_before = queue[0]
                if not self.plan.connected(sender, receiver):
                    break
                if not_before > now:
                    next_due = min(next_due, not_before)
                    break
                queue.popleft()
                listener.sink.write((frame,), len(frame))
            if held.overflowed and self.plan.connected(receiver, receiver):
                # Too many were held to keep: the listener reads them from the store when
                # it reconnects.
                held.overflowed = False
                task = loop.create_task(self._host().disconnect(receiver,
                                                                "updates were dropped"))
                self._closing.add(task)  # the loop holds tasks weakly
                task.add_done_callback(self._closing.discard)
            if not queue and not held.overflowed:
                del self._held_updates[receiver]
        if next_due < math.inf:
            self._update_timer = loop.call_at(next_due, self._release_updates)

    def _on_message(self, page: Page, message: ChatMessageDraft) -> None:
        now = asyncio.get_running_loop().time()
        self.traffic.event("message", now, sender=self._names.get(page.label, page.label),
                           text=(message.text or "")[:200], file_name=message.file_name,
                           file_size=None if message.file_data is None
                           else len(message.file_data))

    # -- the log's batches ---------------------------------------------------------------

    async def _pump(self) -> None:
        """Every `log_interval_s`: who joined or left, what was refused, the rates, the
        events; one batch to every dashboard."""
        while True:
            await asyncio.sleep(self.limits.log_interval_s)
            try:
                self.listeners_send(self.batch())
            except Exception as exc:  # the log must not take the simulator down
                log.error("the dashboard's log failed: %r", exc)

    def batch(self) -> dict[str, Any]:
        """One batch of the log (also what tests read)."""
        host = self._host()
        now = asyncio.get_running_loop().time()
        changed = self._observe_joins(now)
        refused = host.stats.sessions.refused
        for code, count in refused.items():
            if count > self._refused[code]:
                self.traffic.event("refused", now, code=code, count=count - self._refused[code])
                self._refused[code] = count
        rates = self.traffic.rates(now)
        if changed:
            self._changed()
        return {"type": "batch", "rates": rates, "joined": self.joined(),
                "events": self.traffic.drain(), "events_dropped": self.traffic.events_dropped,
                "items_not_described": self.traffic.items_not_described}

    def _observe_joins(self, now: float) -> bool:
        """Log who joined or left the realtime channel since last asked; whether any did."""
        joined = {stats.page for stats in self._host().connection_stats() if stats.joined}
        joined &= set(self._names)
        for label in sorted(joined - self._joined):
            self.traffic.event("join", now, peer=self._names[label])
        for label in sorted(self._joined - joined):
            self.traffic.event("leave", now, peer=self._names.get(label, label))
        changed = joined != self._joined
        self._joined = joined
        return changed

    def listeners_send(self, message: dict[str, Any]) -> None:
        """Tell every dashboard."""
        for listener in tuple(self.listeners):
            listener(message)

    def _changed(self) -> None:
        self.listeners_send(self.state())

    async def _watch(self, root: Path) -> None:
        """Reload every frame when a file of the app folder changes."""
        seen = _snapshot(root, self.limits.max_watched_files)
        while True:
            await asyncio.sleep(self.limits.reload_poll_s)
            now = await asyncio.to_thread(_snapshot, root, self.limits.max_watched_files)
            if now != seen:
                seen = now
                log.info("app files changed: reloading every peer")
                self.listeners_send({"type": "reload"})

    # -- plumbing ------------------------------------------------------------------------

    def _new_chat(self, names: list[str]) -> None:
        host = self._host()
        self._chat_number += 1
        pages = self.store.share(host.registry, f"dev-{self._chat_number}", names,
                                 self.source.name, f"{self.source.key}#{self._chat_number}")
        host.sources[pages[0].app.id] = self.source
        self.chat = host.registry.chats[pages[0].app.chat_id]
        self._refresh_names()

    def _refresh_names(self) -> None:
        self._names = {info.label: info.member for info in self.peers()}
        self._labels.clear()
        self._routes.clear()

    def _label_of(self, conn_id: int) -> str:
        label = self._labels.get(conn_id)
        if label is None:
            page = self._host().page_of_connection(conn_id)
            label = page.label if page is not None else f"#{conn_id}"
            if len(self._labels) > 4096:  # closed connections are never asked for again
                self._labels.clear()
            self._labels[conn_id] = label
        return label

    def _host(self) -> Host:
        if self.host is None:
            raise RuntimeError("the simulator is not started")
        return self.host

    def _manager(self) -> Manager:
        if self.manager is None:
            raise RuntimeError("the simulator is not started")
        return self.manager

    def _chat(self) -> Chat:
        if self.chat is None:
            raise RuntimeError("the simulator is not started")
        return self.chat


def _bound_socket(host: str, port: int) -> Any:
    """A listening TCP socket (the port is needed before the host is made)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _snapshot(root: Path, limit: int) -> dict[str, tuple[float, int]]:
    """Modification time and size of the app folder's files (at most `limit`)."""
    files: dict[str, tuple[float, int]] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if len(files) >= limit:
                return files
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                stat = os.stat(path)
                files[path] = (stat.st_mtime, stat.st_size)
    return files


def dump_json_line(simulator: Simulator) -> str:
    """The line `--json` prints: the dashboard and every peer."""
    return json.dumps({"dashboard": simulator.dashboard_url,
                       "peers": [info.to_json() for info in simulator.peers()]})
