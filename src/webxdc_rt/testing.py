"""`webxdc_rt.testing`: a pytest plugin (entry point `pytest11`) for webxdc app authors. It
serves an app folder (or `.xdc`) to a chat of N members on a simulator and gives each member
a Python peer, and, when Playwright is installed, a browser page; the network's faults are
set from Python just as on the `webxdc-rt dev` dashboard.

    async def test_game_survives_loss(webxdc_sim):
        sim = await webxdc_sim("app/", peers=2)
        sim.set_faults("bob", loss_percent=10, seed=1)
        alice, bob = await sim.member("alice"), await sim.member("bob")
        for i in range(100):
            alice.channel.send(b"move %d" % i)
        await sim.eventually(lambda: sim.delivered("bob") + sim.lost("bob") == 100)
        assert 70 <= len(bob.inbox) <= 100

`pip install 'webxdc-rt[pytest]'` brings pytest and pytest-asyncio; an async test that takes
`webxdc_sim` is marked for pytest-asyncio as it is collected, so it runs with no
configuration (other async tests follow the project's own pytest-asyncio settings).
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from .client import Peer, RealtimeChannel, connect
from .dev.faults import PeerFaults
from .dev.simulator import Simulator

_Function = TypeVar("_Function", bound=Callable[..., Any])


def _async_fixture(function: _Function) -> _Function:
    """A fixture of pytest-asyncio when it is installed, else a plain one (which then needs
    an async-capable pytest setup of its own)."""
    try:
        import pytest_asyncio
    except ImportError:
        return cast(_Function, pytest.fixture(function))
    return cast(_Function, pytest_asyncio.fixture(function))

__all__ = ["Simulation", "SimMember", "webxdc_sim", "pytest_pycollect_makeitem"]
FIXTURE = "webxdc_sim"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Marks an async test that takes the `webxdc_sim` fixture to run on asyncio (the mark
    pytest-asyncio's default strict mode asks for), before pytest makes it an item; the
    fixture and the test then share one event loop."""
    if inspect.iscoroutinefunction(obj) and FIXTURE in inspect.signature(obj).parameters:
        pytest.mark.asyncio(obj)


class SimMember:
    """A member's Python peer joined to the realtime channel, recording what it receives."""

    def __init__(self, name: str, peer: Peer, channel: RealtimeChannel) -> None:
        self.name = name
        self.peer = peer
        self.channel = channel
        self.inbox: list[bytes] = []
        """Every realtime item received, in order."""
        self.updates: list[dict[str, Any]] = []
        """Every status update received (after `listen()`), in order."""
        channel.set_listener(self.inbox.append)

    async def listen(self) -> None:
        """Start recording status updates (the stored ones first)."""
        await self.peer.set_update_listener(self.updates.append)


class Simulation:
    """A running simulator with helpers for tests; made by the `webxdc_sim` fixture."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._peers: list[Peer] = []
        self._contexts: list[Any] = []
        self.events: deque[dict[str, Any]] = deque(maxlen=100_000)
        """Every event of the simulator's log since the start, as the dashboard gets them
        (items sampled, see `traffic.TrafficLimits`)."""
        simulator.listeners.add(self._on_log)

    def _on_log(self, message: dict[str, Any]) -> None:
        if message["type"] == "batch":
            self.events.extend(message["events"])

    def logged(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind logged so far (`item`, `join`, `leave`, `update`,
        `message`, `refused`)."""
        return [event for event in self.events if event["kind"] == kind]

    @property
    def members(self) -> list[str]:
        """The members' names, in order."""
        return [info.member for info in self.simulator.peers()]

    async def member(self, name: str) -> SimMember:
        """A Python peer of `name`, joined to the realtime channel once this returns."""
        peer = await connect(self.simulator.peer(name).url)
        self._peers.append(peer)
        member = SimMember(name, peer, peer.join_realtime_channel())
        await member.channel.joined()
        return member

    async def page(self, name: str, browser: Any) -> Any:
        """A Playwright page of `name` in its own browser context of `browser`, with
        `window.webxdc` ready."""
        context = await browser.new_context()
        self._contexts.append(context)
        page = await context.new_page()
        await page.goto(self.simulator.peer(name).url)
        await page.wait_for_function("window.webxdc !== undefined")
        return page

    def set_faults(self, name: str, **faults: Any) -> None:
        """Put faults on `name`'s link: `latency_ms`, `jitter_ms`, `loss_percent`, `seed`,
        `bandwidth_bytes_per_s`, `offline` (see `faults.PeerFaults`); none heals it."""
        self.simulator.set_faults(name, PeerFaults(**faults))

    def partition(self, *groups: list[str]) -> None:
        """Split the members into groups that do not reach one another; none heals."""
        self.simulator.partition(groups)

    def delivered(self, name: str) -> int:
        """Realtime items handed to `name`'s connections so far."""
        return self.simulator.traffic.peer(name).items_received

    def lost(self, name: str) -> int:
        """Realtime items for `name` lost to the faults so far."""
        return sum(self.simulator.traffic.peer(name).lost.values())

    @staticmethod
    async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds; AssertionError if not within `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Close every peer and page made, then the simulator."""
        for peer in self._peers:
            await peer.close()
        for context in self._contexts:
            await context.close()
        await self.simulator.close()


@_async_fixture
async def webxdc_sim() -> AsyncIterator[Callable[..., Awaitable[Simulation]]]:
    """Starts simulations: `await webxdc_sim(app, peers=2)`; all closed after the test."""
    started: list[Simulation] = []

    async def start(app: str | Path, peers: int = 2) -> Simulation:
        simulator = Simulator(app, peers)
        await simulator.start()
        simulation = Simulation(simulator)
        started.append(simulation)
        return simulation

    yield start
    for simulation in started:
        await simulation.close()
