"""`ChatFollower` over a store that announces chat changes: announced chats are read back
one by one, and past `home.max_pending_chat_reloads` waiting, every chat at once."""

from __future__ import annotations

import asyncio
import dataclasses

from peers import eventually

from webxdc_rt.host.app import Host, HostSettings
from webxdc_rt.model.chats import Registry
from webxdc_rt.model.sharing import HomeLimits
from webxdc_rt.service.cluster import ChatFollower
from webxdc_rt.service.manage import Manager
from webxdc_rt.stores.api import ChatChanged, Resync
from webxdc_rt.stores.sqlite import SqliteStore


class Announcing:
    """A store's announcements and reads, as another process's changes would make them."""

    def __init__(self, store: SqliteStore, announced: list[str]) -> None:
        self.store = store
        self.announced = announced
        self.chats_read: list[str] = []

    async def follow_chats(self, on_changed: ChatChanged, on_resync: Resync) -> None:
        for chat_id in self.announced:
            on_changed(chat_id)
        await asyncio.Event().wait()

    def load_chat(self, chat_id: str) -> Registry:
        self.chats_read.append(chat_id)
        fresh = self.store.load_registry()
        stored = Registry(self.store.secret())
        if chat_id in fresh.chats:
            stored.add_chat(fresh.chats[chat_id])
        return stored

    async def read_chat(self, chat_id: str) -> Registry:
        return self.load_chat(chat_id)

    async def read_registry(self) -> Registry:
        return self.store.load_registry()


async def follow(announced_count: int, most_pending: int) -> tuple[Manager, Announcing]:
    """A host on an empty store whose follower hears `announced_count` chats created
    elsewhere, and what it read back once it serves them all."""
    store = SqliteStore()
    elsewhere = store.load_registry()
    chats = [elsewhere.new_chat(f"chat {index}", ["ann"]) for index in range(announced_count)]
    settings = HostSettings(home=dataclasses.replace(
        HomeLimits(), max_pending_chat_reloads=most_pending))
    manager = Manager(Host(store.load_registry(), {}, settings, store=store), store)
    for chat in chats:
        store.create_chat(chat, [])
    announcing = Announcing(store, [chat.id for chat in chats])
    task = asyncio.create_task(ChatFollower(manager, announcing).run())
    try:
        await eventually(lambda: len(manager.registry.chats) == announced_count)
    finally:
        task.cancel()
    return manager, announcing


async def test_announced_chats_are_read_back_one_by_one():
    manager, announcing = await follow(3, most_pending=10)
    assert sorted(announcing.chats_read) == sorted(manager.registry.chats)


async def test_past_the_most_pending_every_chat_is_read_at_once():
    manager, announcing = await follow(5, most_pending=2)
    assert announcing.chats_read == []  # all five came from one read of every chat
    assert sorted(chat.name for chat in manager.registry.chats.values()) == \
        [f"chat {index}" for index in range(5)]
