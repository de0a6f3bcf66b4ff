"""The Python peer's errors: each a `core.errors.Refusal` with a stable `code`, and also the
built-in error a program would catch for it (`PermissionError`, `BufferError`,
`ConnectionError`)."""

from __future__ import annotations

from ..core.errors import Refusal

__all__ = ["InviteRefused", "LinkLost", "UnstoredUpdatesFull"]


class InviteRefused(Refusal, PermissionError):
    """The host refused the invite link (wrong, revoked, or not a member): at connect, or
    when a reconnecting peer dialled again. The peer never tries that link again."""

    code = "invite-refused"


class LinkLost(Refusal, ConnectionError):
    """A reconnecting peer gave up: its `Reconnect.max_attempts` or `give_up_after_s` ran
    out before the host answered again."""

    code = "link-lost"


class UnstoredUpdatesFull(Refusal, BufferError):
    """`send_update` refused: the updates the host has not yet confirmed stored (sent while
    the link was down, or not yet acknowledged) already take `max_unstored_update_bytes`."""

    code = "unstored-updates-full"
