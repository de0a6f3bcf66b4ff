"""The hosts the suite runs on, each a small adapter: it shares the app into one chat, serves
it on loopback and names the pages the runner opens. Adding a host is adding an adapter to
`HOSTS`.

- `webxdc-rt`: this project's host, in the runner's own process, with two members and two
  copies of the app in one chat (the second copy sends while the first runs its steps, for
  the isolation row); each member's invite link opened twice gives two pages of one member.
- `webxdc-dev`: `webxdc-dev run` from the npm package (installed by npm into a folder the
  runner manages on first use) with two instances as the two members; it serves one copy of
  one app, so the isolation row is not testable there; one instance is one device, so
  no member has a second page.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp

from ..host.app import Host
from ..host.lifecycle import Listen, Serving
from ..model.xdc import AppSource, open_app
from ..stores.sqlite import SqliteStore

__all__ = ["Deployment", "HostAdapter", "HostUnavailable", "HOSTS", "WEBXDC_DEV_VERSION",
           "WebxdcRt", "WebxdcDev", "webxdc_dev_cli"]

WEBXDC_DEV_VERSION = "0.21.0"
"""The webxdc-dev release the runner installs and compares with."""

START_TIMEOUT_S = 60.0
"""How long a host process may take to say it serves."""


class HostUnavailable(Exception):
    """A host cannot be set up or started here; the message is one line saying why."""


@dataclass(frozen=True)
class Deployment:
    """One host serving the app: the pages the runner opens, by role."""

    host: str
    first: str
    """A page of the first member: it starts the run and coordinates it."""
    second: str
    """A page of another member."""
    same_member: str | None
    """Another page of the first member, where the host has such a thing."""
    other_copy: str | None
    """A page of a second copy of the app shared into the same chat, where the host can."""


class HostAdapter(Protocol):
    """How the runner gets a host to serve the app."""

    name: str

    def deploy(self, app: Path, work: Path) -> AbstractAsyncContextManager[Deployment]:
        """Serve the app folder `app` (`work` is a folder for the host's files) until the
        context exits."""
        ...


class WebxdcRt:
    """This project's host, in process, over an in-memory store."""

    name = "webxdc-rt"

    @contextlib.asynccontextmanager
    async def deploy(self, app: Path, work: Path) -> AsyncIterator[Deployment]:
        """Two members (alice, bob), two copies of the app in their chat."""
        store = SqliteStore()
        registry = store.load_registry()
        source = open_app(app)
        chat = registry.create_chat("conformance", ["alice", "bob"])
        store.save_chat(chat)
        copies, sources = [], dict[str, AppSource]()
        for _ in range(2):
            pages = registry.share_app(chat, source.name, source.key)
            store.save_shared_app(pages[0].app, pages)
            sources[pages[0].app.id] = source
            copies.append(pages)
        host = Host(registry, sources, store=store)
        async with Serving(host, Listen("127.0.0.1", 0), signals=False) as serving:
            links = [[host.invite_url(page, serving.port) for page in pages] for pages in copies]
            yield Deployment(self.name, links[0][0], links[0][1], links[0][0], links[1][0])


def webxdc_dev_cli(npm_dir: Path) -> Path:
    """Where webxdc-dev's command is once installed under `npm_dir`."""
    return npm_dir / "node_modules" / "@webxdc" / "webxdc-dev" / "dist" / "backend" / "cli.js"


class WebxdcDev:
    """webxdc-dev from the npm registry, installed into `npm_dir` unless already there."""

    name = "webxdc-dev"

    def __init__(self, npm_dir: Path) -> None:
        self.npm_dir = npm_dir

    async def install(self) -> Path:
        """webxdc-dev's command, installed with npm on first use."""
        cli = webxdc_dev_cli(self.npm_dir)
        if cli.exists():
            return cli
        if shutil.which("npm") is None or shutil.which("node") is None:
            raise HostUnavailable("webxdc-dev needs Node.js and npm (Debian: apt install npm)")
        self.npm_dir.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            "npm", "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error",
            "--prefix", str(self.npm_dir), f"@webxdc/webxdc-dev@{WEBXDC_DEV_VERSION}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, errors = await process.communicate()
        if process.returncode != 0 or not cli.exists():
            last = errors.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise HostUnavailable(f"npm could not install @webxdc/webxdc-dev@"
                                  f"{WEBXDC_DEV_VERSION} into {self.npm_dir}: {last[0]}")
        return cli

    @contextlib.asynccontextmanager
    async def deploy(self, app: Path, work: Path) -> AsyncIterator[Deployment]:
        """`webxdc-dev run app` with two instances, one page each."""
        cli = await self.install()
        port = _free_port()
        log = open(work / "webxdc-dev.log", "ab")
        process = await asyncio.create_subprocess_exec(
            "node", str(cli), "run", str(app), "--port", str(port), cwd=work,
            stdout=asyncio.subprocess.PIPE, stderr=log)
        drain: asyncio.Task[None] | None = None
        try:
            try:
                await asyncio.wait_for(_started(process), START_TIMEOUT_S)
                drain = asyncio.create_task(_drain(process))
                ports = await _instances(f"http://127.0.0.1:{port}/instances", 2)
            except (TimeoutError, OSError, aiohttp.ClientError, ValueError, KeyError) as exc:
                raise HostUnavailable(f"webxdc-dev did not start ({exc!r}); see "
                                      f"{work / 'webxdc-dev.log'}") from None
            first, second = (f"http://localhost:{p}/" for p in ports[:2])
            # One instance is one member on one device, not a member with two devices: with
            # two pages open on one instance, neither page received realtime items.
            yield Deployment(self.name, first, second, None, None)
        finally:
            if drain is not None:
                drain.cancel()
            await _stop(process)
            log.close()


async def _started(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while b"Started webxdc-dev frontend" not in (line := await process.stdout.readline()):
        if not line:
            raise OSError("it exited")


async def _drain(process: asyncio.subprocess.Process) -> None:
    """webxdc-dev logs every item; read on so that it never blocks on a full pipe."""
    assert process.stdout is not None
    while await process.stdout.read(65536):
        pass


async def _instances(api: str, count: int) -> list[int]:
    """The ports of `count` webxdc-dev instances (its members), adding instances as needed."""
    async with aiohttp.ClientSession() as session:
        async with session.get(api) as response:
            ports = [int(instance["port"]) for instance in await response.json()]
        while len(ports) < count:
            async with session.post(api) as response:
                ports.append(int((await response.json())["port"]))
    return ports


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


HOSTS: dict[str, Callable[[Path], HostAdapter]] = {
    "webxdc-rt": lambda npm_dir: WebxdcRt(),
    "webxdc-dev": WebxdcDev,
}
"""The hosts by name; each is made from the folder npm packages are installed into."""
