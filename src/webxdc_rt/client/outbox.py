"""The status updates a reconnecting peer keeps until the host confirms them stored, so that
it can send them again, with the same ids, on the next link."""

from __future__ import annotations

import itertools
import logging
import secrets
from typing import Any

from ..core import wire
from .errors import UnstoredUpdatesFull

__all__ = ["UnstoredUpdates"]

log = logging.getLogger(__name__.rpartition(".")[0])


class UnstoredUpdates:
    """Encoded `update-send` frames by id, in the order sent, up to `max_bytes` in all.

    Ids are a random prefix of this peer's (so that another process of the same member
    never reuses one: the host keeps ids per app copy and member) and a counter. An update
    leaves when the host answers `update-stored` for its id. A host that never answered one
    may not know ids at all: for it, what was written is not kept past the bound nor sent
    again, since it would store it twice."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._frames: dict[str, str] = {}
        self._written: set[str] = set()
        self._bytes = 0
        self._prefix = secrets.token_urlsafe(12)  # 16 characters of [A-Za-z0-9_-]
        self._counter = itertools.count(1)
        self.host_confirms = False
        """Whether the host ever answered `update-stored`."""

    def __len__(self) -> int:
        return len(self._frames)

    def keep(self, update: dict[str, Any]) -> tuple[str, str]:
        """Give `update` a fresh id and keep its frame until the host confirms that id
        stored; the id and the frame. UnstoredUpdatesFull past the bound, ValueError for
        what is not strict JSON."""
        update_id = f"{self._prefix}-{next(self._counter)}"
        frame = wire.encode_update_send(update, update_id)
        size = len(frame)
        if not self.host_confirms:
            self._forget_written(size)
        if self._bytes + size > self._max_bytes:
            raise UnstoredUpdatesFull(
                f"{len(self._frames)} status updates ({self._bytes} bytes) wait for the host "
                f"to store them, limit {self._max_bytes} bytes (max_unstored_update_bytes); "
                "wait until the link is up again")
        self._frames[update_id] = frame
        self._bytes += size
        return update_id, frame

    def drop(self, update_id: str) -> None:
        """Forget an update that could not even be queued."""
        frame = self._frames.pop(update_id, None)
        if frame is not None:
            self._bytes -= len(frame)
            self._written.discard(update_id)

    def written(self, update_id: str) -> None:
        """The update was queued on a link."""
        if update_id in self._frames:
            self._written.add(update_id)

    def stored(self, update_id: str) -> None:
        """The host confirmed the update stored. It answers in the order it was sent, so
        one written before it and not confirmed was refused (the host said why in an
        `error`): it is forgotten, since sending it again would be refused again."""
        self.host_confirms = True
        if update_id not in self._frames:
            return
        refused = list(itertools.takewhile(lambda kept: kept != update_id, self._frames))
        refused = [kept for kept in refused if kept in self._written]
        for kept in refused:
            self.drop(kept)
        if refused:
            log.warning("%d status updates were refused by the host, not stored (see "
                        "peer.errors)", len(refused))
        self.drop(update_id)

    def refused(self, update_id: str) -> None:
        """The host refused the update (an `error` naming it said why): it is forgotten,
        since sending it again would be refused again. Such an answer may come before
        those to updates sent earlier, which are still being stored."""
        self.drop(update_id)

    def link_lost(self) -> None:
        """The link is gone: a host that never confirmed an id would store a resend
        twice, so what was written to it is forgotten, not sent again."""
        if not self.host_confirms and self._written:
            log.warning("%d status updates written before the link was lost are not sent "
                        "again: the host never confirmed one stored", len(self._written))
            self._forget_written(self._max_bytes)

    def to_resend(self) -> list[tuple[str, str]]:
        """Every update kept, (id, frame), in the order sent."""
        return list(self._frames.items())

    def _forget_written(self, room: int) -> None:
        """Forget written updates, oldest first, until `room` more bytes fit."""
        for update_id in [i for i in self._frames if i in self._written]:
            if self._bytes + room <= self._max_bytes:
                return
            self.drop(update_id)
