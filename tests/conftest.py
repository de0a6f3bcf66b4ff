"""Shared fixtures: a webxdc-rt host running in the test's event loop on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from webxdc_rt.chats import Page, Registry
from webxdc_rt.server import Host, HostSettings
from webxdc_rt.xdc import open_app

PROBE_APP = Path(__file__).parent / "apps" / "probe"


class LiveHost:
    """A host on 127.0.0.1 with a free port; tests create chats and share apps into it."""

    def __init__(self, settings: HostSettings | None = None) -> None:
        self.registry = Registry()
        self.sources: dict = {}
        self.host = Host(self.registry, self.sources, settings)
        self.port = 0
        self._runner: web.AppRunner | None = None

    def share(self, members: list[str], app_folder: Path = PROBE_APP,
              chat=None) -> dict[str, str]:
        """Share a new copy of an app into `chat` (a new chat if None); member -> invite URL."""
        chat = chat or self.registry.create_chat("test chat", members)
        pages = self.registry.share_app(chat, "probe")
        self.sources[pages[0].app.id] = open_app(app_folder)
        self.last_chat = chat
        self.last_pages = pages
        return {page.member.name: self.url(page) for page in pages}

    def url(self, page: Page) -> str:
        return self.host.invite_url(page, self.port)

    def origin(self, page: Page) -> str:
        return f"http://{page.label}.localhost:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.host.application(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def hosts() -> AsyncIterator:
    """A factory that starts hosts (optionally with custom settings), all stopped after."""
    started: list[LiveHost] = []

    async def start(settings: HostSettings | None = None) -> LiveHost:
        host = LiveHost(settings)
        await host.start()
        started.append(host)
        return host

    yield start
    for host in started:
        await host.stop()


@pytest.fixture
async def live_host(hosts) -> LiveHost:
    """One host with default settings."""
    return await hosts()
