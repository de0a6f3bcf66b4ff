"""The host's errors: one hierarchy, each refusal with a stable `code` that clients see.

- `Refusal`: a request a client made was refused by a rule; the answer names the rule (its
  `code` and a message that says what the limit is) and nothing else is lost. Every rule
  module raises a subclass of its own (`wire.WireError`, `realtime.RealtimeError`,
  `updates.UpdateError`, `messages.MessageError`). The Python peer's own refusals are
  subclasses too (`client.InviteRefused`, `client.LinkLost`, `client.UnstoredUpdatesFull`),
  so a program catches one kind of error and reads one kind of `code`.
- `SessionStateError`: the host itself fed a session an event its lifecycle does not allow:
  a bug in the host, never the client's doing; it names the state and the event.
"""

from __future__ import annotations

__all__ = ["Refusal", "SessionStateError"]


class Refusal(Exception):
    """A client's request refused by a rule. `code` is stable and sent to the client."""

    code: str = "refused"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """What was wrong, for the client."""
        return str(self)


class SessionStateError(RuntimeError):
    """An event a session's lifecycle does not allow in its state (a bug in the host)."""

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"event {event!r} is not allowed in state {state!r}")
        self.state = state
        self.event = event
