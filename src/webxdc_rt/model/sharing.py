"""What members may do on their home page and what it shows, with no I/O: the limits of
sharing an app from it, and the checks of an uploaded file's name.

A home page is a member's view of one chat (see `home.py`): the apps shared into it, the
messages apps posted to it, the notifications addressed to the member, and a way to share
a `.xdc` into the chat, checked as the command line checks one (`xdc.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.limits import require_positive
from .names import counted

__all__ = ["HomeLimits", "AppUsage", "QuotaRefusal", "quota_refusal", "MAX_FILE_NAME_CHARS",
           "upload_name"]

MiB = 1024 * 1024
MAX_FILE_NAME_CHARS = 255
"""Longest name of an uploaded file kept (longer ones are cut)."""


@dataclass(frozen=True, slots=True)
class HomeLimits:
    """Limits of the home pages and of sharing apps into a running host, with defaults."""

    max_upload_bytes: int = 32 * MiB
    """Largest `.xdc` a member may upload from a home page, or an operator share with
    `webxdc-rt app share` (what it may expand to is `xdc.ContainerLimits`)."""
    max_uploads_at_once: int = 2
    """Uploads read and checked at the same time in all; more are refused with 503 until
    one is done (each holds up to `max_upload_bytes`, and a file of it at a time
    while it is checked)."""
    max_apps_per_member: int = 20
    """App copies one member of a chat may have shared that the host keeps the `.xdc` of
    (from a home page, or named the sender of `webxdc-rt app share`, by default the chat's
    first member); another is refused (`member-app-quota`). Apps `serve` shares from a path
    are not counted. Counted by the store, so it holds across restarts and processes."""
    max_app_bytes_per_member: int = 64 * MiB
    """Bytes of `.xdc` (as uploaded, compressed) of the app copies one member has shared,
    the new one included; more is refused (`member-app-quota`)."""
    max_apps_per_chat: int = 100
    """App copies with a kept `.xdc` in one chat (`chat-app-quota`)."""
    max_app_bytes_per_chat: int = 256 * MiB
    """Bytes of `.xdc` of the app copies in one chat, the new one included
    (`chat-app-quota`)."""
    max_stored_apps: int = 1000
    """App copies with a kept `.xdc` on the whole host (`host-app-quota`)."""
    max_stored_app_bytes: int = 512 * MiB
    """Bytes of `.xdc` of the app copies on the whole host, the new one included
    (`host-app-quota`). A served app holds its `.xdc` in memory, compressed, once however
    many copies share it (and an index of about 150 bytes a file), so this also bounds the
    memory that served apps take, at start as later."""
    max_listed_notifications: int = 50
    """Latest notifications one home page shows."""
    poll_interval_s: float = 3.0
    """How often an open home page asks for new apps, messages and notifications."""
    max_pending_chat_reloads: int = 1000
    """Chats that other processes announced as changed, waiting to be read again from the
    store (`--store postgresql://`); past that, every chat is read again instead."""
    chat_reload_retry_s: float = 1.0
    """Wait before reading changed chats again after the store failed to answer."""
    member_uploads: int = 1
    """1: members may share apps into their chats from their home page; 0: they may not,
    and only an operator's `webxdc-rt app share` adds apps. A chat's own choice (`webxdc-rt
    chat uploads CHAT on|off`) comes first."""

    def __post_init__(self) -> None:
        require_positive(self, *(name for name in self.__dataclass_fields__
                                 if name != "member_uploads"))
        if self.member_uploads not in (0, 1):
            raise ValueError(f"member_uploads must be 0 or 1, got {self.member_uploads!r}")


@dataclass(frozen=True, slots=True)
class AppUsage:
    """The app copies served from stored containers (uploaded, or shared with `webxdc-rt app
    share`) and their containers' bytes, each copy counting its container's size: on the
    whole host, in one chat, and shared by one member."""

    host_apps: int
    host_bytes: int
    chat_apps: int
    chat_bytes: int
    member_apps: int
    member_bytes: int


@dataclass(frozen=True, slots=True)
class QuotaRefusal:
    """Why a new app copy may not be stored: a stable `code`, a line for a person, and the
    HTTP status to answer with."""

    code: str
    message: str
    status: int


def quota_refusal(usage: AppUsage, limits: HomeLimits, chat_name: str,
                  sender_name: str | None, size: int) -> QuotaRefusal | None:
    """What refuses a new app copy of `size` bytes that would take the stored apps of its
    sender, of its chat or of the host past their `HomeLimits` quotas; None if none does."""
    checks = [("host-app-quota", 507, "the host", usage.host_apps, usage.host_bytes,
               "max_stored_apps", "max_stored_app_bytes"),
              ("chat-app-quota", 403, f"chat {chat_name!r}", usage.chat_apps,
               usage.chat_bytes, "max_apps_per_chat", "max_app_bytes_per_chat")]
    if sender_name is not None:
        checks.append(("member-app-quota", 403, f"member {sender_name!r}",
                       usage.member_apps, usage.member_bytes, "max_apps_per_member",
                       "max_app_bytes_per_member"))
    for code, status, who, apps, stored, count_limit, bytes_limit in checks:
        most, most_bytes = getattr(limits, count_limit), getattr(limits, bytes_limit)
        if apps >= most:
            return QuotaRefusal(code, f"{who} has {counted(apps, 'app')} stored, the most allowed "
                                f"(home.{count_limit} = {most})", status)
        if stored + size > most_bytes:
            return QuotaRefusal(code, f"{who} has {stored} bytes of apps stored; with these "
                                f"{size} it would pass the {most_bytes} allowed "
                                f"(home.{bytes_limit})", status)
    return None


def upload_name(raw: str | None) -> str:
    """The name of an uploaded file as it may be shown and kept: its last path component,
    printable, at most `MAX_FILE_NAME_CHARS`; `app.xdc` when nothing is left of it."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip()
    return name[:MAX_FILE_NAME_CHARS] or "app.xdc"
