"""A peer's requests that the host answers (the chat's messages), kept until answered so
that a reconnecting peer asks again on a new link."""

from __future__ import annotations

import asyncio

from ..core import wire

__all__ = ["PendingAnswers"]


class PendingAnswers:
    """Chat-messages requests in flight, by id, with the frame that asked."""

    def __init__(self) -> None:
        self._counter = 0
        self._pending: dict[int, tuple[str, asyncio.Future[wire.ChatMessages]]] = {}

    def ask(self, before: int | None) -> tuple[int, str, asyncio.Future[wire.ChatMessages]]:
        """A new request: its id, the frame to send, and the future its answer sets."""
        self._counter += 1
        frame = wire.encode_chat_messages_request(self._counter, before)
        answer: asyncio.Future[wire.ChatMessages] = asyncio.get_running_loop().create_future()
        self._pending[self._counter] = (frame, answer)
        return self._counter, frame, answer

    def answer(self, message: wire.ChatMessages) -> None:
        """The host's answer: to the request it names, if it is still waiting."""
        _, answer = self._pending.pop(message.id, (None, None))
        if answer is not None and not answer.done():
            answer.set_result(message)

    def forget(self, request_id: int) -> None:
        """The request is no longer waited for."""
        self._pending.pop(request_id, None)

    def frames(self) -> list[str]:
        """The frames of the requests still waiting, in the order asked."""
        return [frame for frame, _ in self._pending.values()]
