"""The control messages the host sends a client (a page's bridge or the Python peer): one
frozen dataclass per message type, its encoder, and one table from the message's `type` to
its decoder. The host writes with the `encode_*` functions (an update's JSON text is encoded
once for all its listeners); the Python peer reads with `decode_host_message`, and the
round-trip tests keep both sides of each message in step.

A message of a type this version does not know decodes as `UnknownHostMessage` rather than
failing, and fields it does not know are ignored, so that a newer host can add both.

Its public names are exported by the package (`wire.Hello`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .text import (
    MAX_EPOCH,
    WireError,
    as_object,
    decode_json,
    dump,
    read_counter,
    read_optional_string,
    read_string,
)


@dataclass(frozen=True, slots=True)
class HelloLimits:
    """The realtime limits the host enforces on this connection, told in its hello so that
    a client can keep within them (the Python peer checks `max_payload_bytes` at send)."""

    max_payload_bytes: int
    """Largest realtime item the host accepts, in bytes."""
    send_items_per_s: float
    """Items this member page may send per second, sustained, before it is slowed."""
    send_items_burst: int
    """Items this member page may send at once before the rate applies."""
    send_bytes_per_s: float
    """Payload bytes this member page may send per second, sustained."""
    send_bytes_burst: int
    """Payload bytes this member page may send at once before the rate applies."""
    receive_window_bytes: int = 0
    """Realtime bytes (counted by `frame_bytes`) the host sends this connection beyond what
    it last reported `received`, once it reports; a client should report well before that
    (every quarter of it). 0 from a host that does not read `received`."""
    max_item_age_ms: float = 0.0
    """The age bound of realtime items: a client on a stamped connection drops an item
    older than this (by its stamp) instead of handing it to the app. 0 from a host that
    does not stamp items."""


@dataclass(frozen=True, slots=True)
class Hello:
    """`hello`: the host's first frame on a connection: whose page it is, and its limits."""

    self_addr: str
    self_name: str
    limits: HelloLimits
    time_ms: float | None = None
    """The host's clock when it wrote the hello, in milliseconds since the Unix epoch: a
    client's reference for the stamps of its items (`wire.items`). None from a host that
    does not stamp items."""


@dataclass(frozen=True, slots=True)
class Joined:
    """`joined`: the join with this `epoch` took effect; the binary frames that follow
    belong to that channel, until the next leave."""

    epoch: int
    time_ms: float | None = None
    """The host's clock when it took the join, in ms (absent from older hosts): read after
    the client sent the join and before the client reads this, it narrows the client's
    estimate of that clock (`ItemClock.narrow`)."""


@dataclass(frozen=True, slots=True)
class Update:
    """`update`: one status update for update listener `listen`, as the app's listener
    receives it (the app's fields plus `serial` and `max_serial`, both integers)."""

    listen: int
    update: dict[str, Any]

    @property
    def serial(self) -> int:
        """The update's place in the app's sequence of updates."""
        serial: int = self.update["serial"]
        return serial


@dataclass(frozen=True, slots=True)
class UpdateBacklogDone:
    """`update-backlog-done`: every stored update listener `listen` asked for was sent."""

    listen: int


@dataclass(frozen=True, slots=True)
class UpdateStored:
    """`update-stored`: the update the client sent with this `id` is stored under `serial`
    (just now, or already before: a resend is stored once). Sent to the sender only."""

    id: str
    serial: int


@dataclass(frozen=True, slots=True)
class Reply:
    """`reply`: the answer to the request with this `id` (a `send-to-chat`): `ok`, or
    refused with a `code` and a `message` (both empty when `ok`)."""

    id: int
    ok: bool
    code: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class ChatMessages:
    """`chat-messages`: the answer to the request with this `id`: messages apps posted to
    the chat, oldest first, each an object (`id`, `member`, `text`, `file_name`,
    `file_base64`); `more`: older ones remain."""

    id: int
    messages: list[dict[str, Any]]
    more: bool


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """`error`: one request of this client was refused (nothing else was lost), or its
    sending is being slowed (`rate-limited`); `code` is stable, `message` says why."""

    code: str
    message: str
    id: str | None = None
    """The `id` of the `update-send` this refuses (for an update its sender named)."""


@dataclass(frozen=True, slots=True)
class UnknownHostMessage:
    """A control message of a type this version does not know: a newer host may send new
    types, so it is not an error; a client ignores it. `fields`: the whole message as
    decoded (strict JSON, like every other), `type` included."""

    type: str
    fields: dict[str, Any]


HostMessage = (Hello | Joined | Update | UpdateBacklogDone | UpdateStored | Reply
               | ChatMessages | ErrorMessage | UnknownHostMessage)


# -- decoding ---------------------------------------------------------------------------


def decode_host_message(text: str) -> HostMessage:
    """Parse and validate one control message from the host (the Python peer's side of
    `decode_client_message`): strict JSON, a string `type`, and every field of a known
    type present and typed; fields it does not know are ignored, and a message of a type it
    does not know is an `UnknownHostMessage` (a newer host may send either). Raises
    `WireError` for anything else."""
    obj = as_object(decode_json(text))
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise WireError("control message without a string 'type'")
    decode = _DECODERS.get(kind)
    if decode is None:
        return UnknownHostMessage(kind, obj)
    return decode(obj)


def decode_hello(text: str) -> Hello:
    """The host's first frame, which must be its `hello`; raises `WireError` if it is not
    one, or a malformed one."""
    message = decode_host_message(text)
    if not isinstance(message, Hello):
        raise WireError(f"expected the host's hello, got {type(message).__name__}")
    return message


def _decode_hello(obj: dict[str, Any]) -> Hello:
    limits = obj.get("limits")
    if type(limits) is not dict:
        raise WireError("hello: 'limits' must be an object")
    return Hello(read_string(obj, "self_addr", "hello"), read_string(obj, "self_name", "hello"),
                 HelloLimits(
                     max_payload_bytes=_positive(limits, "max_payload_bytes"),
                     send_items_per_s=_rate(limits, "send_items_per_s"),
                     send_items_burst=_positive(limits, "send_items_burst"),
                     send_bytes_per_s=_rate(limits, "send_bytes_per_s"),
                     send_bytes_burst=_positive(limits, "send_bytes_burst"),
                     receive_window_bytes=read_counter(limits, "receive_window_bytes",
                                                       "hello.limits", default=0),
                     max_item_age_ms=_optional_rate(limits, "max_item_age_ms")),
                 _host_time(obj, "hello"))


def _host_time(obj: dict[str, Any], what: str) -> float | None:
    value = obj.get("time_ms")
    if value is None:
        return None
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value)):
        raise WireError(f"{what}: 'time_ms' must be a finite number")
    return float(value)


def _decode_update(obj: dict[str, Any]) -> Update:
    update = obj.get("update")
    if type(update) is not dict:
        raise WireError("update: 'update' must be an object")
    read_counter(update, "serial", "update.update")
    read_counter(update, "max_serial", "update.update")
    return Update(read_counter(obj, "listen", "update"), update)


def _decode_reply(obj: dict[str, Any]) -> Reply:
    request_id = read_counter(obj, "id", "reply")
    ok = obj.get("ok")
    if type(ok) is not bool:
        raise WireError("reply: 'ok' must be true or false")
    if ok:
        return Reply(request_id, True)
    return Reply(request_id, False, read_string(obj, "code", "reply"),
                 read_string(obj, "message", "reply"))


def _decode_chat_messages(obj: dict[str, Any]) -> ChatMessages:
    messages = obj.get("messages")
    if type(messages) is not list or any(type(m) is not dict for m in messages):
        raise WireError("chat-messages: 'messages' must be a list of objects")
    more = obj.get("more")
    if type(more) is not bool:
        raise WireError("chat-messages: 'more' must be true or false")
    return ChatMessages(read_counter(obj, "id", "chat-messages"), messages, more)


_DECODERS: Final[dict[str, Callable[[dict[str, Any]], HostMessage]]] = {
    "hello": _decode_hello,
    "joined": lambda obj: Joined(read_counter(obj, "epoch", "joined"),
                                 _host_time(obj, "joined")),
    "update": _decode_update,
    "update-backlog-done": lambda obj: UpdateBacklogDone(
        read_counter(obj, "listen", "update-backlog-done")),
    "update-stored": lambda obj: UpdateStored(read_string(obj, "id", "update-stored"),
                                              read_counter(obj, "serial", "update-stored")),
    "reply": _decode_reply,
    "chat-messages": _decode_chat_messages,
    "error": lambda obj: ErrorMessage(read_string(obj, "code", "error"),
                                      read_string(obj, "message", "error"),
                                      read_optional_string(obj, "id", "error")),
}
"""How each type of host message is checked and typed; other types are unknown."""


def _positive(limits: dict[str, Any], name: str) -> int:
    value = limits.get(name)
    if type(value) is not int or not 1 <= value <= MAX_EPOCH:
        raise WireError(f"hello: 'limits.{name}' must be an integer from 1 to 2**53-1")
    return value


def _rate(limits: dict[str, Any], name: str) -> float:
    value = limits.get(name)
    # A bool is an int to isinstance; finiteness was checked by `decode_json`.
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise WireError(f"hello: 'limits.{name}' must be a positive number")
    return float(value)


def _optional_rate(limits: dict[str, Any], name: str) -> float:
    return 0.0 if limits.get(name) is None else _rate(limits, name)


# -- encoding ---------------------------------------------------------------------------


def encode_hello(self_addr: str, self_name: str, limits: HelloLimits,
                 time_ms: float | None = None) -> str:
    """The first frame the host sends on a new connection; `time_ms`: the host's clock."""
    hello: dict[str, Any] = {"type": "hello", "self_addr": self_addr, "self_name": self_name,
                 "limits": {"max_payload_bytes": limits.max_payload_bytes,
                            "send_items_per_s": limits.send_items_per_s,
                            "send_items_burst": limits.send_items_burst,
                            "send_bytes_per_s": limits.send_bytes_per_s,
                            "send_bytes_burst": limits.send_bytes_burst,
                            "receive_window_bytes": limits.receive_window_bytes}}
    if limits.max_item_age_ms:
        hello["limits"]["max_item_age_ms"] = limits.max_item_age_ms
    if time_ms is not None:
        hello["time_ms"] = time_ms
    return dump(hello)


def encode_joined(epoch: int, time_ms: float | None = None) -> str:
    """The host's answer to a join that took effect; `time_ms`: the host's clock."""
    if time_ms is None:
        return dump({"type": "joined", "epoch": epoch})
    return dump({"type": "joined", "epoch": epoch, "time_ms": time_ms})


def encode_error(code: str, message: str, update_id: str | None = None) -> str:
    """Tell a client that one of its requests was refused, or that it is being slowed, and
    why; `update_id`: the id of the named update it refuses (an update's refusal may come
    before the answers to updates sent earlier, still being stored)."""
    if update_id is None:
        return dump({"type": "error", "code": code, "message": message})
    return dump({"type": "error", "code": code, "message": message, "id": update_id})


def encode_update(listen: int, update_json: str) -> str:
    """One update for listener `listen`; `update_json` is already JSON text (strict, as
    `dump` writes it): spliced in, not decoded and dumped again, since one update goes to
    every listener of the app."""
    return f'{{"type":"update","listen":{listen},"update":{update_json}}}'


def encode_backlog_done(listen: int) -> str:
    """Every update of listener `listen`'s backlog was sent."""
    return dump({"type": "update-backlog-done", "listen": listen})


def encode_update_stored(update_id: str, serial: int) -> str:
    """The update the client sent as `update_id` is stored under `serial`."""
    return dump({"type": "update-stored", "id": update_id, "serial": serial})


def encode_reply(request_id: int, error: tuple[str, str] | None = None) -> str:
    """The answer to a request with an `id`: ok, or the code and message of the refusal."""
    if error is None:
        return dump({"type": "reply", "id": request_id, "ok": True})
    return dump({"type": "reply", "id": request_id, "ok": False, "code": error[0],
                 "message": error[1]})


def encode_chat_messages(request_id: int, messages: list[dict[str, Any]],
                         more: bool = False) -> str:
    """The answer to a chat-messages request; `more`: older messages remain."""
    return dump({"type": "chat-messages", "id": request_id, "messages": messages,
                 "more": more})


def encode_host_message(message: HostMessage) -> str:
    """The control message the host sends for `message`: `decode_host_message` undone."""
    return _ENCODERS[type(message)](message)


_ENCODERS: Final[dict[type[Any], Callable[[Any], str]]] = {
    Hello: lambda message: encode_hello(message.self_addr, message.self_name, message.limits,
                                        message.time_ms),
    Joined: lambda message: encode_joined(message.epoch, message.time_ms),
    Update: lambda message: encode_update(message.listen, dump(message.update)),
    UpdateBacklogDone: lambda message: encode_backlog_done(message.listen),
    UpdateStored: lambda message: encode_update_stored(message.id, message.serial),
    Reply: lambda message: encode_reply(
        message.id, None if message.ok else (message.code, message.message)),
    ChatMessages: lambda message: encode_chat_messages(message.id, message.messages,
                                                       message.more),
    ErrorMessage: lambda message: encode_error(message.code, message.message, message.id),
    UnknownHostMessage: lambda message: dump(message.fields),
}
"""How each type of host message is written: by the encoder of its fields."""
