"""Group commit: the writes pages ask for (status updates, chat messages) are committed off
the event loop, many to one commit.

A write waits in a bounded queue while a commit is in flight; when that commit ends, every
write that waits (up to `StoreLimits.max_group_writes`) goes into the next one, in the order
they were asked for. So however slow the fsync, the store makes as many writes durable per
second as arrive, up to `max_group_writes` per fsync, and the event loop only hands writes
over and takes results back. When a commit fails, every write of its group is refused with
the same error and nothing of the group was kept.

What a backend does is `commit(writes) -> ids` (one transaction; the serial or id of each
write, in order, `AlreadyStored` for an update whose name was stored already), awaited: the
SQLite store runs it on its writer thread, the PostgreSQL store on an asynchronous
connection. Once a group is durable, the committed callbacks of its updates are called on
the event loop in serial order, each before its sender resumes, so the order in which
listeners are told is the serial order. They are called `StoreLimits.told_per_turn` at a
time, one turn of the event loop each: telling a group of a thousand writes at once would
hold every socket's realtime items up for as long. That count runs across groups: a commit
may end without the loop taking a turn (psycopg finishes a round trip whose answer is
already there without yielding), so the next group's tellings count on with the last ones.
An update found already stored is not told again (nor counted among those told): its
sender is given the stored serial.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .api import AlreadyStored, Committed, StoreError, StoreLimits, StoreOverloaded, Write

__all__ = ["GroupCommit", "CommitGroup"]

log = logging.getLogger(__name__)

CommitGroup = Callable[[list[Write]], Awaitable[list[int]]]
"""Commit writes in one transaction; the serial (update) or id (message) of each, in order.
Raises `StoreError` when nothing of them was kept."""


@dataclass(slots=True, eq=False)
class _Waiting:
    write: Write
    committed: Committed | None
    future: asyncio.Future[int]


class GroupCommit:
    """A store's queue of writes and the task that commits them in groups."""

    def __init__(self, commit: CommitGroup, limits: StoreLimits,
                 reported: Callable[[Write, int], None] | None = None) -> None:
        """`commit` is the backend's; `reported(write, id)` is told of every durable write
        on the event loop before its committed callback (the store's own bookkeeping)."""
        self._commit = commit
        self._limits = limits
        self._reported = reported
        self._queue: deque[_Waiting] = deque()
        self._task: asyncio.Task[None] | None = None
        self.committing = 0
        """Writes in the commit in flight (0: none is)."""
        self.groups = 0
        """Commits made so far (with `writes`, the average group size)."""
        self.writes = 0
        """Writes committed so far."""
        self._told_in_turn = 0
        """Writes told since the event loop last took a turn (as far as is known: reset by
        a callback the loop runs at its next turn)."""

    @property
    def waiting(self) -> int:
        """Writes waiting for a commit (not yet in one)."""
        return len(self._queue)

    async def submit(self, write: Write, committed: Committed | None = None) -> int:
        """Commit `write` with the next group; once durable, call `committed(id)` and return
        the id. `StoreOverloaded` at once when `max_waiting_writes` wait already."""
        return await self.enqueue(write, committed)

    def enqueue(self, write: Write, committed: Committed | None = None) -> asyncio.Future[int]:
        """`submit` without a coroutine of its own (a host hands over an update per future,
        not per task): the future of the id. Raises `StoreOverloaded` at once when
        `max_waiting_writes` wait already."""
        limit = self._limits.max_waiting_writes
        if len(self._queue) >= limit:
            raise StoreOverloaded(
                f"{limit} writes are waiting for the store already (the limit is "
                f"store.max_waiting_writes = {limit}): this one was refused")
        loop = asyncio.get_running_loop()
        waiting = _Waiting(write, committed, loop.create_future())
        self._queue.append(waiting)
        if self._task is None:
            self._task = loop.create_task(self._run(), name="webxdc-rt group commit")
        return waiting.future

    async def _run(self) -> None:
        """Commit what waits, group after group, until nothing does."""
        try:
            while self._queue:
                group = [self._queue.popleft()
                         for _ in range(min(len(self._queue), self._limits.max_group_writes))]
                await self._commit_group(group)
        finally:
            self._task = None
            for waiting in self._queue:  # cancelled (the loop stops): nobody commits these
                waiting.future.cancel()
            self._queue.clear()

    async def _commit_group(self, group: list[_Waiting]) -> None:
        self.committing = len(group)
        try:
            ids = await self._commit([waiting.write for waiting in group])
        except asyncio.CancelledError:
            for waiting in group:
                waiting.future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every sender of the group is told
            error = exc if isinstance(exc, StoreError) else StoreError(
                f"the commit failed: {type(exc).__name__}: {exc}")
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
            return
        finally:
            self.committing = 0
        self.groups += 1
        self.writes += len(group)
        loop = asyncio.get_running_loop()
        for index, (waiting, written) in enumerate(zip(group, ids, strict=True)):
            if isinstance(written, AlreadyStored):
                if not waiting.future.done():
                    waiting.future.set_result(written)  # still AlreadyStored: the
                    # sender's allowance is given back (`core.session.update_stored`)
                continue
            if self._told_in_turn >= self._limits.told_per_turn:
                try:
                    await asyncio.sleep(0)  # what else waits for the loop goes first
                except asyncio.CancelledError:
                    for rest in group[index:]:  # stored, but nobody is left to tell
                        rest.future.cancel()
                    raise
                self._told_in_turn = 0
            if self._told_in_turn == 0:
                loop.call_soon(self._turned)
            self._told_in_turn += 1
            if self._reported is not None:
                self._reported(waiting.write, written)
            if waiting.committed is not None:
                # Told here, in serial order, not when each sender's task resumes: the order
                # in which tasks resume is the loop's, not the store's.
                try:
                    waiting.committed(written)
                except Exception:  # a bug in the listener: the write is stored all the same
                    log.exception("telling of a stored update failed")
            if not waiting.future.done():
                waiting.future.set_result(written)

    def _turned(self) -> None:
        """The event loop took a turn since the first telling of the count."""
        self._told_in_turn = 0

    async def close(self) -> None:
        """Let the writes already waiting be committed (their senders are answered)."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)
