"""A webxdc-rt host running in the test's event loop on a real socket."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from peers import eventually

from webxdc_rt.host.app import Host, HostHooks, HostSettings
from webxdc_rt.model.chats import Page
from webxdc_rt.model.xdc import open_app
from webxdc_rt.stores.sqlite import SqliteStore

PROBE_APP = Path(__file__).parent / "apps" / "probe"


class LiveHost:
    """A host on 127.0.0.1 with a free port; tests create chats and share apps into it."""

    def __init__(self, settings: HostSettings | None = None,
                 store: SqliteStore | None = None, hooks: HostHooks | None = None) -> None:
        self.store = store or SqliteStore()
        self.registry = self.store.load_registry()
        self.sources: dict = {}
        self.host = Host(self.registry, self.sources, settings, store=self.store,
                         hooks=hooks or HostHooks())
        self.port = 0
        self._runner: web.AppRunner | None = None

    def share(self, members: list[str], app_folder: Path = PROBE_APP,
              chat=None) -> dict[str, str]:
        """Share a new copy of an app into `chat` (a new chat if None); member -> invite URL."""
        source = open_app(app_folder)
        if chat is None:
            chat = self.registry.create_chat("test chat", members)
            self.store.save_chat(chat)
        pages = self.registry.share_app(chat, source.name, source.key)
        self.store.save_shared_app(pages[0].app, pages)
        self.sources[pages[0].app.id] = source
        self.last_chat = chat
        self.last_pages = pages
        return {page.member.name: self.url(page) for page in pages}

    async def until_joined(self, count: int, topic: str | None = None) -> None:
        """Wait until `count` connections are joined to `topic` (the last shared copy's)."""
        topic = topic or self.last_pages[0].app.topic
        await eventually(lambda: self.host.hub.joined_count(topic) == count)

    def url(self, page: Page) -> str:
        return self.host.invite_url(page, self.port)

    def origin(self, page: Page) -> str:
        return f"http://{page.label}.localhost:{self.port}"

    def serve_existing(self, app_folder: Path = PROBE_APP) -> None:
        """Serve `app_folder` for every stored copy (after a restart)."""
        for app_id in self.registry.apps:
            self.sources[app_id] = open_app(app_folder)

    async def start(self, port: int = 0) -> None:
        self._runner = self.host.runner()
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
