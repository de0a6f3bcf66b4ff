"""sendToChat rules, with no I/O: what a message an app posts to its chat may hold.

`webxdc.sendToChat({file, text})` posts a message to the chat the app is shared in: a text,
a file, or both. The host checks it here, counts it against the page's rate and stored-bytes
quota (`budget.PageBudget`), and the shell stores it (`store.py`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .errors import Refusal
from .limits import ChatLimits

__all__ = ["MessageError", "ChatMessageDraft", "validate_message"]

class MessageError(Refusal):
    """A chat message that breaks a rule."""

    code = "bad-message"


@dataclass(frozen=True, slots=True)
class ChatMessageDraft:
    """A valid message, ready to store: the file is decoded."""

    text: str | None
    file_name: str | None
    file_data: bytes | None

    @property
    def size(self) -> int:
        """Bytes it takes from the page's quota: its text (UTF-8) and its file."""
        return len((self.text or "").encode()) + len(self.file_data or b"")


def validate_message(text: str | None, file_name: str | None, file_base64: str | None,
                     limits: ChatLimits) -> ChatMessageDraft:
    """Check a message as sent by an app; raise `MessageError` saying what is wrong."""
    if text is None and file_name is None:
        raise MessageError("sendToChat needs a file, a text, or both")
    if text is not None and len(text) > limits.max_text_chars:
        raise MessageError(f"text longer than {limits.max_text_chars} characters")
    data = None
    if file_base64 is not None:
        try:
            data = base64.b64decode(file_base64, validate=True)
        except (binascii.Error, ValueError):
            raise MessageError("file data is not valid base64") from None
        if len(data) > limits.max_file_bytes:
            raise MessageError(f"file of {len(data)} bytes is over the limit of "
                               f"{limits.max_file_bytes} bytes", "message-too-large")
    return ChatMessageDraft(text, file_name, data)
