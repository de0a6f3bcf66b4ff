"""The simulator behind `webxdc-rt dev`: one app served to a chat of peers on one host, with
the network's faults applied where the host hands realtime items and status updates to a
receiver (`network`), and the traffic counted and sampled for the dashboard's log
(`activity`, `traffic`).

Faults live in the host's delivery path (`Host.route`, `UpdateFeed.route`): transports are
never touched, so what the app sees is what a real network would give it.

The state is ephemeral (an in-memory store): a reset shares the app into a new chat, so
every peer gets a new origin and starts with empty storage, no updates and no messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..host.app import Host, HostHooks, HostSettings
from ..host.lifecycle import Listen, Serving
from ..model.chats import Chat, Page
from ..model.xdc import AppSource, FolderApp, open_app
from ..service.manage import ManageError, Manager
from ..stores.sqlite import SqliteStore
from .activity import Activity
from .dashboard import DASHBOARD_LABEL, DashboardSite
from .faults import FaultPlan, PeerFaults
from .limits import SimulatorLimits
from .network import Network
from .proxy import DevServerApp, DevServerProxy, is_dev_server_url
from .traffic import TrafficLog

__all__ = ["Simulator", "PeerInfo", "PEER_NAMES", "SIM_DOMAIN"]

PEER_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
              "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil")
"""Names given to peers in order: a person tells them apart at a glance."""
SIM_DOMAIN = "sim.localhost"
"""Peers live at `<label>.sim.localhost`, the dashboard at `dashboard.sim.localhost`: one
site (`sim.localhost`), so the dashboard's frames send the pages' SameSite cookies, while
every page keeps its own origin and storage."""


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


class Simulator:
    """One app, a chat of peers, the faults between them and the log of what travels.

    `app` is a folder, a `.xdc`, or the URL of a running dev server (`proxy.py`)."""

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
        self.traffic = TrafficLog(self.limits.traffic)
        self.network = Network(self.limits.faults, self.traffic,
                               self.limits.traffic.preview_bytes, self._page_of_connection,
                               self._disconnect)
        self.activity = Activity(self.limits, self.traffic, self._host, self._names,
                                 self.state)
        # The host's delivery path goes through the network; messages are logged.
        self._route_item = self.network.route_item
        self._route_update = self.network.route_update
        self._on_message = self.activity.on_message
        self.store = SqliteStore()
        self.host: Host | None = None
        self.manager: Manager | None = None
        self.chat: Chat | None = None
        self._chat_number = 0
        self._running = contextlib.AsyncExitStack()
        self._serving: Serving | None = None
        self.dashboard_url = ""

    @property
    def plan(self) -> FaultPlan:
        """The faults in force."""
        return self.network.plan

    @property
    def listeners(self) -> set[Callable[[dict[str, Any]], None]]:
        """Told of every batch and change (the dashboard's sockets)."""
        return self.activity.listeners

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Share the app with the first peers and serve the host and the dashboard."""
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
        # The start-up path every command serves through; the command owns the signals.
        serving = self._serving = await self._running.enter_async_context(
            Serving(self.host, Listen(self.listen_host, self.port, sock=sock), signals=False))
        serving.on_exit(self.network.close)
        self.dashboard_url = (f"{dashboard_origin}/.webxdc-rt/invite/{self.dashboard_token}")
        serving.run_task(self.activity.pump(), "the traffic log's pump")
        if isinstance(self.source, FolderApp):
            serving.run_task(self.activity.watch(self.source.root), "live reload")

    async def close(self) -> None:
        """Stop serving: background work, sockets, the store, then the dev-server proxy."""
        if self._serving is None:
            self.store.close()  # never served: the store is all there is to release
        await self._running.aclose()
        if self._proxy is not None:
            await self._proxy.close()

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
        self.activity.changed()
        return self.peer(member)

    async def remove_peer(self, member: str) -> None:
        """Take a member out of the chat; its sockets are closed. KeyError if unknown."""
        info = self.peer(member)
        chat = self._chat()
        target = next(m for m in chat.members if m.name == info.member)
        self.activity.observe_joins(asyncio.get_running_loop().time())
        await self._manager().remove_member(chat, target)
        self.activity.left(info.label, info.member, asyncio.get_running_loop().time())
        self.network.forget(info.label)
        self._refresh_names()
        self.activity.changed()

    async def reset(self) -> None:
        """A fresh chat with the same peers: no updates, no messages, and new origins, so
        no storage either. Faults stay in force (by member name)."""
        old = {info.member: info.label for info in self.peers()}
        faults = {member: self.plan.faults(label) for member, label in old.items()}
        names = self._names()
        groups = [[names.get(label, label) for label in group] for group in self.plan.groups()]
        old_chat = self._chat()
        members = [member.name for member in old_chat.members]
        # The new chat first: whoever asks meanwhile (the log, the dashboard) sees it.
        self.network.reset()
        self.traffic.reset()
        self.activity.reset()
        self._new_chat(members)
        await self._manager().delete_chat(old_chat)
        for member, peer_faults in faults.items():
            self.set_faults(member, peer_faults, notify=False)
        if groups:
            self.partition(groups, notify=False)
        self.activity.changed()

    # -- faults --------------------------------------------------------------------------

    def set_faults(self, member: str, faults: PeerFaults, *, notify: bool = True) -> None:
        """Put `faults` in force on one peer's link (`PeerFaults()` for a perfect one)."""
        label = self.peer(member).label
        self.plan.set_faults(label, faults)
        self.network.release_updates()
        if notify:
            self.activity.changed()

    def partition(self, groups: Iterable[Iterable[str]], *, notify: bool = True) -> None:
        """Split the peers (by member name) into groups that do not reach one another;
        no groups heals every partition."""
        labels = [[self.peer(member).label for member in group] for group in groups]
        self.plan.partition(labels)
        self.network.release_updates()
        if notify:
            self.activity.changed()

    def heal(self) -> None:
        """Take every fault and partition away."""
        for info in self.peers():
            self.plan.set_faults(info.label, PeerFaults())
        self.plan.partition([])
        self.network.release_updates()
        self.activity.changed()

    # -- what the dashboard reads --------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The peers with their faults, and the partition, as JSON."""
        peers = []
        for info in self.peers():
            peers.append({**info.to_json(), "label": info.label,
                          "faults": self.plan.faults(info.label).to_json(),
                          "shown_faults": self.plan.describe(info.label),
                          "joined": info.label in self.activity.joined})
        names = self._names()
        return {"type": "state", "app": self.source.name, "peers": peers,
                "partition": [[names.get(label, label) for label in group]
                              for group in self.plan.groups()]}

    def joined(self) -> list[str]:
        """Members joined to the realtime channel now."""
        return self.activity.joined_members()

    def batch(self) -> dict[str, Any]:
        """One batch of the log (also what tests read)."""
        return self.activity.batch()

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
        self.network.rename({info.label: info.member for info in self.peers()})

    def _names(self) -> Mapping[str, str]:
        """The member name of each page label now."""
        return self.network.names

    def _page_of_connection(self, conn_id: int) -> Page | None:
        return self._host().page_of_connection(conn_id)

    async def _disconnect(self, label: str, reason: str) -> int:
        return await self._host().disconnect(label, reason)

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


def _bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (the port is needed before the host is made)."""
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
