"""The frames between a page (or Python peer) and the host, over one WebSocket.

- A **binary** frame is one realtime item, in either direction, as raw bytes: no header,
  no JSON, no base64. The host forwards the exact bytes it received.
- A **text** frame is one control message: a JSON object with a string field `type`.

Client to host:
    {"type": "join", "epoch": N}    join the realtime channel (N: the client's counter)
    {"type": "leave"}               leave it

Host to client:
    {"type": "hello", "self_addr": ..., "self_name": ..., "limits": {...}}   first frame
    {"type": "joined", "epoch": N}  the join with epoch N took effect; binary frames that
                                    follow belong to that channel, until the next leave
    {"type": "error", "code": ..., "message": ...}   a request was refused; nothing else lost

Decoding validates everything and raises `WireError` with a message that says what was
wrong, so that a bad frame gets a clear answer and costs nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_CONTROL_BYTES",
    "WireError",
    "Join",
    "Leave",
    "ClientMessage",
    "decode_client_message",
    "encode_join",
    "encode_leave",
    "encode_hello",
    "encode_joined",
    "encode_error",
    "decode_host_message",
]

MAX_CONTROL_BYTES = 4096
"""Largest control message (text frame) the host accepts, in bytes."""

MAX_EPOCH = 2**53 - 1  # the largest integer a JavaScript number holds exactly


class WireError(ValueError):
    """A frame that does not follow the protocol. `code` is sent back to the client."""

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Join:
    """Join the realtime channel; `epoch` is echoed back in the `joined` answer."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the realtime channel."""


ClientMessage = Join | Leave


def decode_client_message(text: str) -> ClientMessage:
    """Parse and validate one control message from a client; raise `WireError` if bad."""
    if len(text) > MAX_CONTROL_BYTES:  # characters >= bytes/4; checked exactly below
        raise WireError(f"control message over {MAX_CONTROL_BYTES} bytes", "too-large")
    obj = _load_object(text)
    if len(text.encode()) > MAX_CONTROL_BYTES:
        raise WireError(f"control message over {MAX_CONTROL_BYTES} bytes", "too-large")
    kind = obj.get("type")
    if kind == "join":
        epoch = obj.get("epoch", 0)
        if type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH:
            raise WireError("join: 'epoch' must be an integer from 0 to 2**53-1")
        return Join(epoch)
    if kind == "leave":
        return Leave()
    raise WireError(f"unknown control message type {kind!r}", "unknown-type")


def encode_join(epoch: int) -> str:
    """A client's request to join the realtime channel."""
    return _dump({"type": "join", "epoch": epoch})


def encode_leave() -> str:
    """A client's request to leave the realtime channel."""
    return _dump({"type": "leave"})


def encode_hello(self_addr: str, self_name: str, limits: dict[str, Any]) -> str:
    """The first frame the host sends on a new connection."""
    return _dump({"type": "hello", "self_addr": self_addr, "self_name": self_name,
                  "limits": limits})


def encode_joined(epoch: int) -> str:
    """The host's answer to a join that took effect."""
    return _dump({"type": "joined", "epoch": epoch})


def encode_error(code: str, message: str) -> str:
    """Tell a client that one of its requests was refused and why."""
    return _dump({"type": "error", "code": code, "message": message})


def decode_host_message(text: str) -> dict[str, Any]:
    """Parse one control message from the host (used by the Python peer)."""
    obj = _load_object(text)
    if not isinstance(obj.get("type"), str):
        raise WireError("control message without a string 'type'")
    return obj


def _load_object(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise WireError(f"control message is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise WireError("control message must be a JSON object")
    return obj


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
