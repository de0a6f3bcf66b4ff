"""Who may add apps to a chat: whether members may upload `.xdc` files from their home
page, host-wide (`--limit home.member_uploads=0|1`) and per chat (`webxdc-rt chat uploads
CHAT on|off|host`). An operator's `webxdc-rt app share` is never refused by it.

The per-chat choices are kept in `DIR/uploads.json` in the data folder, beside the admin
socket, rather than in the store: they belong to the one host process that owns the admin
socket, and a restore of the database from a backup leaves them as the operator last set
them (an upload turned off stays off).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

__all__ = ["UPLOADS_FILE_NAME", "UploadSetting", "UploadPolicy"]

UPLOADS_FILE_NAME = "uploads.json"
"""The file in the data folder that holds the per-chat choices."""
UploadSetting = Literal["on", "off", "host"]
"""A chat's choice: members may upload (on), may not (off), or as the host decides."""


class UploadPolicy:
    """Whether members may upload apps into each chat; saved to `path` at each change
    (None: kept in memory only)."""

    def __init__(self, path: Path | None, host_allows: bool) -> None:
        self.path = path
        self.host_allows = host_allows
        self._chats: dict[str, bool] = {}
        if path is not None and path.exists():
            self._chats = _read(path)

    def allowed(self, chat_id: str) -> bool:
        """Whether members of the chat may upload apps now."""
        return self._chats.get(chat_id, self.host_allows)

    def setting(self, chat_id: str) -> UploadSetting:
        """The chat's own choice, or `host` when it has none."""
        if chat_id not in self._chats:
            return "host"
        return "on" if self._chats[chat_id] else "off"

    def describe(self, chat_id: str, chat_name: str) -> dict[str, Any]:
        """The chat's choice and whether members may upload now, as the admin API says it."""
        return {"chat": chat_name, "chat_id": chat_id, "uploads": self.setting(chat_id),
                "members_may_upload": self.allowed(chat_id)}

    def choose(self, chat_id: str, setting: UploadSetting) -> None:
        """Set the chat's choice and save it (OSError if it cannot be saved; then nothing
        changed)."""
        chats = dict(self._chats)
        if setting == "host":
            chats.pop(chat_id, None)
        else:
            chats[chat_id] = setting == "on"
        if self.path is not None:
            _write(self.path, chats)
        self._chats = chats

    def forget(self, chat_id: str) -> None:
        """Drop the choice of a deleted chat."""
        if chat_id in self._chats:
            self.choose(chat_id, "host")


def _read(path: Path) -> dict[str, bool]:
    """The choices in `path`; entries that are not a chat id and a boolean are left out."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {key: item for key, item in value.items()
            if isinstance(key, str) and isinstance(item, bool)}


def _write(path: Path, chats: dict[str, bool]) -> None:
    """Replace `path` at once (a new file renamed over it), readable by this user alone."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                         0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(chats, file, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
