"""The control messages a client (a page's bridge or the Python peer) sends the host: one
frozen dataclass per message type, its encoder, and one table from the message's `type` to
its decoder, so that the host and the Python peer read and write each message with the
same code.

Its public names are exported by the package (`wire.Join`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .text import (
    BAD_TEXT_RULE,
    MAX_CONTROL_BYTES,
    MAX_EPOCH,
    MAX_JSON_DEPTH,
    WireError,
    decode_valid_text,
    dump,
    dump_app_data,
    read_counter,
    read_optional_string,
    shown,
)


@dataclass(frozen=True, slots=True)
class Join:
    """Join the realtime channel; `epoch` is echoed back in the `joined` answer.
    `stamped`: the items this connection sends and receives carry the stamp of `items`
    before their payload (a client that does not say so sends and gets bare payloads)."""

    epoch: int
    stamped: bool = False


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the realtime channel."""


@dataclass(frozen=True, slots=True)
class Received:
    """How many bytes of realtime items (binary frames) the client has read so far on this
    connection, counted by `frame_bytes`: the host sends a connection that tells it this
    at most `receive_window_bytes` beyond it."""

    bytes: int


@dataclass(frozen=True, slots=True)
class UpdateSend:
    """`webxdc.sendUpdate`: `update` is checked by the update rules, not here. `id`: the
    sender's name for this update (`UPDATE_ID_RULE`), so that a resend after a lost link
    is stored once and answered `update-stored`; None: stored each time it is sent."""

    update: Any
    id: str | None = None


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


ClientMessage = (Join | Leave | Received | UpdateSend | UpdateListen | SendToChat
                 | ChatMessagesRequest)


def update_id_of(message: ClientMessage | None) -> str | None:
    """The id of `message` if it is a named `update-send`: an `error` refusing it names it,
    so that its sender can tell which of its updates was refused."""
    return message.id if isinstance(message, UpdateSend) else None


def frame_bytes(payload_size: int) -> int:
    """What one realtime item of `payload_size` bytes counts for in `received`: its payload
    and its frame header as the host sends it (2, 4 or 10 bytes, RFC 6455)."""
    if payload_size < 126:
        return payload_size + 2
    if payload_size < 65536:
        return payload_size + 4
    return payload_size + 10


# -- decoding ----------------------------------------------------------------------------


UPDATE_ID_RULE: Final = "1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"
"""What an `update-send`'s `id` may be: short and plain, so that it can be stored, logged
and compared as it is."""

_UPDATE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


_RECEIVED_HEAD = '{"type":"received","bytes":'
_LONGEST_COUNTER = len(str(MAX_EPOCH))


def decode_client_message(text: str) -> ClientMessage:
    """Parse and validate one control message from a client; raise `WireError` if bad."""
    # A receiver reports what it read up to every 20 ms: the exact compact form the bridge
    # and the Python peer send is read without the JSON decoder. Anything else (spaces,
    # other key order, leading zeros, a sign) takes the general path below.
    if text.startswith(_RECEIVED_HEAD) and text[-1] == "}":
        digits = text[len(_RECEIVED_HEAD):-1]
        if (0 < len(digits) <= _LONGEST_COUNTER and digits.isascii() and digits.isdigit()
                and (digits[0] != "0" or len(digits) == 1)):
            count = int(digits)
            if count <= MAX_EPOCH:
                return Received(count)
    if len(text) > MAX_CONTROL_BYTES:  # characters >= bytes/4; checked exactly below
        raise WireError(f"control message over {MAX_CONTROL_BYTES} bytes", "too-large")
    if not text.isascii():
        try:
            size = len(text.encode())
        except UnicodeEncodeError:
            raise WireError(BAD_TEXT_RULE, "bad-text") from None
        if size > MAX_CONTROL_BYTES:
            raise WireError(f"control message over {MAX_CONTROL_BYTES} bytes", "too-large")
    obj = decode_valid_text(text, MAX_JSON_DEPTH)
    if type(obj) is not dict:  # `as_object`, inline: this runs for every control message
        raise WireError("control message must be a JSON object")
    try:
        decode = _DECODERS[obj["type"]]
    except (KeyError, TypeError):  # no `type`, another one, or a list or object as `type`
        raise WireError(f"unknown control message type {shown(obj.get('type'))}",
                        "unknown-type") from None
    return decode(obj)


def _decode_update_send(obj: dict[str, Any]) -> UpdateSend:
    if "update" not in obj:
        raise WireError("update-send: 'update' is missing")
    update_id = obj.get("id")
    if update_id is not None and (type(update_id) is not str
                                  or not _UPDATE_ID.fullmatch(update_id)):
        raise WireError(f"update-send: 'id' must be {UPDATE_ID_RULE}, not {shown(update_id)}")
    return UpdateSend(obj["update"], update_id)


def _decode_send_to_chat(obj: dict[str, Any]) -> SendToChat:
    kind = "send-to-chat"
    text = read_optional_string(obj, "text", kind)
    file = obj.get("file")
    if file is None:
        return SendToChat(read_counter(obj, "id", kind), text, None, None)
    if not isinstance(file, dict):
        raise WireError(f"{kind}: 'file' must be an object")
    name = read_optional_string(file, "name", kind)
    data = read_optional_string(file, "base64", kind)
    if not name or data is None:
        raise WireError(f"{kind}: 'file' needs a non-empty 'name' and 'base64' data")
    return SendToChat(read_counter(obj, "id", kind), text, name, data)


def _decode_chat_messages(obj: dict[str, Any]) -> ChatMessagesRequest:
    kind = "chat-messages"
    before = None if obj.get("before") is None else read_counter(obj, "before", kind)
    return ChatMessagesRequest(read_counter(obj, "id", kind), before)


def _read_stamped(obj: dict[str, Any]) -> bool:
    stamped = obj.get("stamped", False)
    if type(stamped) is not bool:
        raise WireError("join: 'stamped' must be true or false")
    return stamped


_DECODERS: Final[dict[str, Callable[[dict[str, Any]], ClientMessage]]] = {
    "join": lambda obj: Join(read_counter(obj, "epoch", "join", 0), _read_stamped(obj)),
    "received": lambda obj: Received(read_counter(obj, "bytes", "received")),
    "leave": lambda obj: Leave(),
    "update-send": _decode_update_send,
    "update-listen": lambda obj: UpdateListen(read_counter(obj, "listen", "update-listen"),
                                              read_counter(obj, "serial", "update-listen")),
    "send-to-chat": _decode_send_to_chat,
    "chat-messages": _decode_chat_messages,
}
"""How each type of client message is checked and typed; other types are refused."""


# -- encoding ----------------------------------------------------------------------------


def encode_join(epoch: int, stamped: bool = False) -> str:
    """A client's request to join the realtime channel (its items stamped, if `stamped`)."""
    if not stamped:
        return dump({"type": "join", "epoch": epoch})
    return dump({"type": "join", "epoch": epoch, "stamped": True})


def encode_leave() -> str:
    """A client's request to leave the realtime channel."""
    return dump({"type": "leave"})


def encode_received(total_bytes: int) -> str:
    """A client's count of the realtime bytes it has read (see `Received`)."""
    return dump({"type": "received", "bytes": total_bytes})


def encode_update_send(update: dict[str, Any], update_id: str | None = None) -> str:
    """A client's status update (`webxdc.sendUpdate`), named `update_id` if given (see
    `UpdateSend`); ValueError if it is not strict JSON text (NaN, infinities, lone
    surrogates, nesting too deep to encode)."""
    if update_id is None:
        return dump_app_data({"type": "update-send", "update": update})
    return dump_app_data({"type": "update-send", "update": update, "id": update_id})


def encode_update_listen(listen: int, serial: int) -> str:
    """A client's request to (re)start update listener `listen` after `serial`."""
    return dump({"type": "update-listen", "listen": listen, "serial": serial})


def encode_chat_messages_request(request_id: int, before: int | None = None) -> str:
    """A client's request for the messages apps posted to the chat (older than message
    id `before`, if given)."""
    message: dict[str, Any] = {"type": "chat-messages", "id": request_id}
    if before is not None:
        message["before"] = before
    return dump(message)


def encode_send_to_chat(request_id: int, text: str | None, file_name: str | None = None,
                        file_base64: str | None = None) -> str:
    """A client's message to the chat (`webxdc.sendToChat`): a text, a file, or both;
    ValueError if a text holds a lone surrogate."""
    message: dict[str, Any] = {"type": "send-to-chat", "id": request_id}
    if text is not None:
        message["text"] = text
    if file_name is not None or file_base64 is not None:
        message["file"] = {"name": file_name, "base64": file_base64}
    return dump_app_data(message)


def encode_client_message(message: ClientMessage) -> str:
    """The control message a client sends for `message`: `decode_client_message` undone."""
    return _ENCODERS[type(message)](message)


_ENCODERS: Final[dict[type[Any], Callable[[Any], str]]] = {
    Join: lambda message: encode_join(message.epoch, message.stamped),
    Leave: lambda message: encode_leave(),
    Received: lambda message: encode_received(message.bytes),
    UpdateSend: lambda message: encode_update_send(message.update, message.id),
    UpdateListen: lambda message: encode_update_listen(message.listen, message.serial),
    SendToChat: lambda message: encode_send_to_chat(message.id, message.text,
                                                    message.file_name, message.file_base64),
    ChatMessagesRequest: lambda message: encode_chat_messages_request(message.id,
                                                                      message.before),
}
"""How each type of client message is written: by the encoder of its fields."""
