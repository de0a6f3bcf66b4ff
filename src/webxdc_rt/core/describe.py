"""One log line about an exception, for the places where a traceback would flood the log
(an error that any client or any message from the network can cause again and again)."""

from __future__ import annotations

import os
import traceback

__all__ = ["describe_exception"]

MESSAGE_CHARS = 200
"""How much of an exception's message the line keeps."""


def describe_exception(exc: BaseException) -> str:
    """The exception's type, message (shortened) and innermost frame, in one line."""
    message = str(exc)
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + "..."
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"
    return f"{type(exc).__name__}: {message!r}{where}"
