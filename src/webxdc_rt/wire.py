"""The frames between a page (or Python peer) and the host, over one WebSocket.

- A **binary** frame is one realtime item, in either direction, as raw bytes: no header,
  no JSON, no base64. The host forwards the exact bytes it received.
- A **text** frame is one control message: a JSON object with a string field `type`.

Client to host:
    {"type": "join", "epoch": N}    join the realtime channel (N: the client's counter)
    {"type": "leave"}               leave it
    {"type": "update-send", "update": {...}}        webxdc.sendUpdate
    {"type": "update-listen", "listen": N, "serial": S}
                                    start (or restart) the update listener after serial S
    {"type": "send-to-chat", "id": N, "text": ..., "file": {"name": ..., "base64": ...}}
    {"type": "chat-messages", "id": N, "before": M}  what apps posted to the chat (the
                                    latest ones, or those older than message id M)

Host to client:
    {"type": "hello", "self_addr": ..., "self_name": ..., "limits": {...}}   first frame
    {"type": "joined", "epoch": N}  the join with epoch N took effect; binary frames that
                                    follow belong to that channel, until the next leave
    {"type": "update", "listen": N, "update": {..., "serial": S, "max_serial": M}}
    {"type": "update-backlog-done", "listen": N}    the backlog of listener N was sent
    {"type": "reply", "id": N, "ok": true}  or  {..., "ok": false, "code": ..., "message": ...}
    {"type": "chat-messages", "id": N, "messages": [...], "more": bool}
                                    oldest first; `more`: older ones remain
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
    "encode_update",
    "encode_update_send",
    "encode_update_listen",
    "encode_chat_messages_request",
    "encode_backlog_done",
    "encode_reply",
    "encode_chat_messages",
    "UpdateSend",
    "UpdateListen",
    "SendToChat",
    "ChatMessagesRequest",
    "encode_hello",
    "encode_joined",
    "encode_error",
    "decode_host_message",
]

MAX_CONTROL_BYTES = 1024 * 1024
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


@dataclass(frozen=True, slots=True)
class UpdateSend:
    """`webxdc.sendUpdate`: `update` is checked by the update rules, not here."""

    update: Any


@dataclass(frozen=True, slots=True)
class UpdateListen:
    """Start update listener number `listen`, replaying every update after `serial`."""

    listen: int
    serial: int


@dataclass(frozen=True, slots=True)
class SendToChat:
    """`webxdc.sendToChat`: a text, a file, or both; answered by a reply with `id`."""

    id: int
    text: str | None
    file_name: str | None
    file_base64: str | None


@dataclass(frozen=True, slots=True)
class ChatMessagesRequest:
    """Ask for the messages apps posted to the chat (older than message id `before`, if
    given); answered with `id`."""

    id: int
    before: int | None = None


ClientMessage = Join | Leave | UpdateSend | UpdateListen | SendToChat | ChatMessagesRequest


def decode_client_message(text: str) -> ClientMessage:
    """Parse and validate one control message from a client; raise `WireError` if bad."""
    if len(text) > MAX_CONTROL_BYTES:  # characters >= bytes/4; checked exactly below
        raise WireError(f"control message over {MAX_CONTROL_BYTES} bytes", "too-large")
    obj = _load_object(text)
    if len(text.encode()) > MAX_CONTROL_BYTES:
        raise WireError(f"control message over {MAX_CONTROL_BYTES} bytes", "too-large")
    kind = obj.get("type")
    if kind == "join":
        return Join(_counter(obj, "epoch", kind, default=0))
    if kind == "leave":
        return Leave()
    if kind == "update-send":
        if "update" not in obj:
            raise WireError("update-send: 'update' is missing")
        return UpdateSend(obj["update"])
    if kind == "update-listen":
        return UpdateListen(_counter(obj, "listen", kind), _counter(obj, "serial", kind))
    if kind == "send-to-chat":
        return _send_to_chat(obj)
    if kind == "chat-messages":
        before = None if obj.get("before") is None else _counter(obj, "before", kind)
        return ChatMessagesRequest(_counter(obj, "id", kind), before)
    raise WireError(f"unknown control message type {kind!r}", "unknown-type")


def _counter(obj: dict[str, Any], name: str, kind: str, default: int | None = None) -> int:
    value = obj.get(name, default)
    if type(value) is not int or not 0 <= value <= MAX_EPOCH:
        raise WireError(f"{kind}: {name!r} must be an integer from 0 to 2**53-1")
    return value


def _optional_text(obj: dict[str, Any], name: str, kind: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise WireError(f"{kind}: {name!r} must be a string")
    return value


def _send_to_chat(obj: dict[str, Any]) -> SendToChat:
    kind = "send-to-chat"
    text = _optional_text(obj, "text", kind)
    file = obj.get("file")
    if file is None:
        return SendToChat(_counter(obj, "id", kind), text, None, None)
    if not isinstance(file, dict):
        raise WireError(f"{kind}: 'file' must be an object")
    name = _optional_text(file, "name", kind)
    data = _optional_text(file, "base64", kind)
    if not name or data is None:
        raise WireError(f"{kind}: 'file' needs a non-empty 'name' and 'base64' data")
    return SendToChat(_counter(obj, "id", kind), text, name, data)


def encode_update(listen: int, update_json: str) -> str:
    """One update for listener `listen`; `update_json` is already JSON text."""
    return f'{{"type":"update","listen":{listen},"update":{update_json}}}'


def encode_backlog_done(listen: int) -> str:
    """Every update of listener `listen`'s backlog was sent."""
    return _dump({"type": "update-backlog-done", "listen": listen})


def encode_reply(request_id: int, error: tuple[str, str] | None = None) -> str:
    """The answer to a request with an `id`: ok, or the code and message of the refusal."""
    if error is None:
        return _dump({"type": "reply", "id": request_id, "ok": True})
    return _dump({"type": "reply", "id": request_id, "ok": False, "code": error[0],
                  "message": error[1]})


def encode_chat_messages(request_id: int, messages: list[dict[str, Any]],
                         more: bool = False) -> str:
    """The answer to a chat-messages request; `more`: older messages remain."""
    return _dump({"type": "chat-messages", "id": request_id, "messages": messages,
                  "more": more})


def encode_join(epoch: int) -> str:
    """A client's request to join the realtime channel."""
    return _dump({"type": "join", "epoch": epoch})


def encode_leave() -> str:
    """A client's request to leave the realtime channel."""
    return _dump({"type": "leave"})


def encode_update_send(update: dict[str, Any]) -> str:
    """A client's status update (`webxdc.sendUpdate`)."""
    return _dump({"type": "update-send", "update": update})


def encode_update_listen(listen: int, serial: int) -> str:
    """A client's request to (re)start update listener `listen` after `serial`."""
    return _dump({"type": "update-listen", "listen": listen, "serial": serial})


def encode_chat_messages_request(request_id: int, before: int | None = None) -> str:
    """A client's request for the messages apps posted to the chat (older than message
    id `before`, if given)."""
    message: dict[str, Any] = {"type": "chat-messages", "id": request_id}
    if before is not None:
        message["before"] = before
    return _dump(message)


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
