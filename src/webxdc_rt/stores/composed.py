"""What a store made of parts does the same whatever its database: it hands status updates
and chat messages to its group commit, and reads them through its updates and messages
parts (`ComposedStore`). Each store adds what differs: how a group is committed, the
registry, the reads made off the event loop, and what is done before an update is handed
over (`_before_update`)."""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..core.updates import Update
from .api import (
    Committed,
    MessageWrite,
    UpdateWrite,
)
from .commits import GroupCommit

__all__ = ["ComposedStore", "UpdateRows", "MessageRows"]


class UpdateRows(Protocol):
    """A store's part that keeps status updates."""

    def append(self, app_id: str, member_id: str, update: Update, /) -> int:
        """Store an update at once; its serial."""

    def max_serial(self, app_id: str, /) -> int:
        """The highest serial of an app copy's updates (0 when it has none)."""


class MessageRows(Protocol):
    """A store's part that keeps chat messages."""

    def add(self, chat_id: str, app_id: str, member: str, text: str | None,
            file_name: str | None, file_data: bytes | None, /) -> int:
        """Record a message at once; its id."""


class ComposedStore:
    """The status update and chat message methods of a store (see `StoreApi` for what
    each does) over its parts, which the store sets up."""

    _updates: UpdateRows
    _messages: MessageRows
    commits: GroupCommit
    """The writes pages send, committed in groups."""

    def _before_update(self, app_id: str, update_id: str | None) -> str | None:
        """Run before an update of `app_id` is handed to the group commit; the name it is
        committed under. Here: nothing, the name it was sent with."""
        return update_id

    # -- status updates ----------------------------------------------------------------

    def append_update(self, app_id: str, member_id: str, update: Update) -> int:
        """Store an update (committed before this returns); return its serial."""
        return self._updates.append(app_id, member_id, update)

    async def commit_update(self, app_id: str, member_id: str, update: Update,
                            committed: Committed, update_id: str | None = None) -> int:
        """Store an update with the others of its group, once per `update_id`;
        `committed(serial)` once durable (see `StoreApi.commit_update`)."""
        return await self.hand_over_update(app_id, member_id, update, committed, update_id)

    def hand_over_update(self, app_id: str, member_id: str, update: Update,
                         committed: Committed,
                         update_id: str | None = None) -> asyncio.Future[int]:
        """`commit_update`'s future of the serial (see `StoreApi.hand_over_update`)."""
        update_id = self._before_update(app_id, update_id)
        return self.commits.enqueue(UpdateWrite(app_id, member_id, update, update_id),
                                    committed)

    def max_serial(self, app_id: str) -> int:
        """The highest serial of an app copy's updates (0 when it has none)."""
        return self._updates.max_serial(app_id)

    # -- chat messages -----------------------------------------------------------------

    async def commit_chat_message(self, chat_id: str, app_id: str, member: str,
                                  text: str | None, file_name: str | None,
                                  file_data: bytes | None) -> int:
        """Record a chat message with the writes of its group; return its id."""
        return await self.commits.submit(
            MessageWrite(chat_id, app_id, member, text, file_name, file_data))

    def add_chat_message(self, chat_id: str, app_id: str, member: str, text: str | None,
                         file_name: str | None, file_data: bytes | None) -> int:
        """Record a message an app posted to its chat; return its id."""
        return self._messages.add(chat_id, app_id, member, text, file_name, file_data)
