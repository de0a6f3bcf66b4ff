"""The frames between a page (or Python peer) and the host, over one WebSocket.

- A **binary** frame is one realtime item, in either direction, as raw bytes: no header,
  no JSON, no base64. The host forwards the exact bytes it received.
- A **text** frame is one control message: a JSON object with a string field `type`.

Client to host:
    {"type": "join", "epoch": N}    join the realtime channel (N: the client's counter)
    {"type": "leave"}               leave it
    {"type": "received", "bytes": N}    the binary frames this connection has read so
                                    far, N counted as their payloads plus framing (see
                                    `frame_bytes`); lets the host keep what is in flight
                                    to a slow reader within `receive_window_bytes`
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
    {"type": "error", "code": ..., "message": ...}   a request was refused (nothing else
                                    lost), or sending is slowed (`rate-limited`)

Each message has a frozen dataclass on both sides (`Join`, ..., `ChatMessagesRequest` from
the client; `Hello`, `Joined`, `Update`, `UpdateBacklogDone`, `Reply`, `ChatMessages`,
`ErrorMessage` from the host), an encoder, and a decoder that returns the dataclass, so the
host and the Python peer read and write each message with the same code. The `hello`
limits are `HelloLimits`: `max_payload_bytes`, `send_items_per_s`, `send_items_burst`,
`send_bytes_per_s`, `send_bytes_burst`, `receive_window_bytes`. A host message of a type
this version does not know decodes as `UnknownHostMessage` rather than failing, and fields it
does not know are ignored, so that a newer host can add both.

Decoding validates everything and raises `WireError` with a message that says what was
wrong, so that a bad frame gets a clear answer and costs nothing else. Every JSON text that
comes from a client (and, in the Python peer, from the host) goes through one strict decoder,
`decode_json`: what it accepts is JSON that every browser's `JSON.parse` reads the same way
and that re-encodes as UTF-8, so nothing it lets in can break a frame sent later. It refuses:

- text that is not JSON (`malformed`);
- `NaN`, `Infinity`, `-Infinity` and numbers beyond the range of a double, such as `1e999` or
  a 400-digit integer, which `JSON.parse` reads as `Infinity` (`bad-number`);
- strings or keys holding a lone surrogate, e.g. the escape `"\\ud800"` that
  `JSON.stringify` writes for a string cut in the middle of an emoji (`bad-text`); an escaped
  pair such as `"\\ud83d\\ude00"` is one character and welcome;
- arrays and objects nested deeper than `MAX_JSON_DEPTH` (`nesting-too-deep`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .errors import Refusal

__all__ = [
    "MAX_CONTROL_BYTES",
    "MAX_JSON_DEPTH",
    "WireError",
    "decode_json",
    "is_text",
    "as_text",
    "is_finite_number",
    "encode_client_message",
    "encode_send_to_chat",
    "Join",
    "Leave",
    "Received",
    "ClientMessage",
    "decode_client_message",
    "encode_join",
    "encode_leave",
    "encode_received",
    "frame_bytes",
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
    "HelloLimits",
    "Hello",
    "Joined",
    "Update",
    "UpdateBacklogDone",
    "Reply",
    "ChatMessages",
    "ErrorMessage",
    "UnknownHostMessage",
    "HostMessage",
    "encode_host_message",
    "decode_host_message",
]

MAX_CONTROL_BYTES = 1024 * 1024
"""Largest control message (text frame) the host accepts, in bytes."""

MAX_JSON_DEPTH = 128
"""Deepest nesting of arrays and objects in one control message, the message itself being
level 1: an update's `payload` may nest 126 levels. Generous for app state, and far below
where a recursive JSON parser or encoder (CPython's, a browser's) runs out of stack."""

MAX_EPOCH = 2**53 - 1  # the largest integer a JavaScript number holds exactly

_OVERFLOW: Final = 2**1024 - 2**970
"""The smallest integer a double rounds to infinity: `JSON.parse` reads it as Infinity."""
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
"""In decoded text every surrogate is lone: JSON decoding joins an escaped pair into one."""
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
"""Where JSON text can hide a surrogate from `is_text`: decoding makes it a character."""

BAD_TEXT_RULE: Final = ("text must be valid Unicode: a lone surrogate (U+D800 to U+DFFF "
                        "without its pair) is refused")
BAD_NUMBER_RULE: Final = ("numbers must be finite: NaN, Infinity and numbers beyond "
                          "±1.8e308 are refused")


class WireError(Refusal, ValueError):
    """A frame that does not follow the protocol. `code` is sent back to the client:
    `malformed`, `too-large`, `unknown-type`, `bad-text`, `bad-number`, `nesting-too-deep`."""

    code = "malformed"


def _nesting_error(max_depth: int) -> WireError:
    return WireError(f"JSON nested deeper than {max_depth} levels of arrays and objects",
                     "nesting-too-deep")


def _refuse_constant(name: str) -> Any:
    raise WireError(f"{BAD_NUMBER_RULE} (found {name})", "bad-number")


_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def is_text(value: str) -> bool:
    """Whether `value` is valid Unicode text, i.e. encodes as UTF-8 (no lone surrogate)."""
    if value.isascii():  # O(1): CPython keeps the flag
        return True
    try:
        value.encode()  # faster than a regular expression search, even with the copy
    except UnicodeEncodeError:
        return False
    return True


def is_finite_number(value: float) -> bool:
    """Whether `JSON.parse` reads `value` as a finite number (NaN, infinities and integers
    beyond the range of a double are not)."""
    return -_OVERFLOW < value < _OVERFLOW  # NaN compares false; infinities are beyond


def as_text(value: str) -> str:
    """`value` with every lone surrogate replaced by U+FFFD, the replacement character."""
    return value if is_text(value) else _LONE_SURROGATE.sub("\ufffd", value)


def decode_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON text strictly (see the module's docstring); raise `WireError` with the
    rule that was broken. Never raises anything else."""
    if not is_text(text):
        raise WireError(BAD_TEXT_RULE, "bad-text")
    return _decode_text(text, max_depth)


def _decode_text(text: str, max_depth: int) -> Any:
    """`decode_json` for text already known to hold no lone surrogate itself."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise _nesting_error(max_depth) from None
    except json.JSONDecodeError as exc:
        raise WireError(f"control message is not valid JSON: {exc}") from None
    except WireError:
        raise
    except ValueError:  # an integer longer than CPython converts (4300 digits by default)
        raise WireError(BAD_NUMBER_RULE, "bad-number") from None
    kind = type(value)
    _check_tree(value if kind is dict or kind is list else [value], text, max_depth)
    return value


def _check_tree(root: dict[str, Any] | list[Any], text: str, max_depth: int) -> None:
    """Walk the decoded containers level by level (no recursion): depth, numbers, and the
    strings, which can only hold a surrogate if `text` escapes one (searched for once, the
    first time a string is not ASCII). Tuned: it runs over every value of every message."""
    escapes: bool | None = None
    level: list[Any] = [root]
    depth = 1
    while level:
        below: list[Any] = []
        grow = below.append
        last = depth == max_depth  # a container found now would be one level too deep
        for node in level:
            if type(node) is dict:
                for key in node:
                    if not key.isascii():
                        if escapes is None:
                            escapes = _SURROGATE_ESCAPE.search(text) is not None
                        if escapes and not is_text(key):
                            raise WireError(BAD_TEXT_RULE, "bad-text")
                values = node.values()
            else:
                values = node
            for value in values:
                kind = type(value)
                if kind is float:
                    if value - value:  # inf - inf is NaN, which is true; finite gives 0.0
                        raise WireError(BAD_NUMBER_RULE, "bad-number")
                elif kind is str:
                    if not value.isascii():
                        if escapes is None:
                            escapes = _SURROGATE_ESCAPE.search(text) is not None
                        if escapes and not is_text(value):
                            raise WireError(BAD_TEXT_RULE, "bad-text")
                elif kind is list or kind is dict:
                    if last:
                        raise _nesting_error(max_depth)
                    if value:  # an empty one has nothing to check below it
                        grow(value)
                elif kind is int and not -_OVERFLOW < value < _OVERFLOW:
                    raise WireError(BAD_NUMBER_RULE, "bad-number")
        level = below
        depth += 1


@dataclass(frozen=True, slots=True)
class Join:
    """Join the realtime channel; `epoch` is echoed back in the `joined` answer."""

    epoch: int


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


ClientMessage = (Join | Leave | Received | UpdateSend | UpdateListen | SendToChat
                 | ChatMessagesRequest)


def frame_bytes(payload_size: int) -> int:
    """What one realtime item of `payload_size` bytes counts for in `received`: its payload
    and its frame header as the host sends it (2, 4 or 10 bytes, RFC 6455)."""
    if payload_size < 126:
        return payload_size + 2
    if payload_size < 65536:
        return payload_size + 4
    return payload_size + 10


def decode_client_message(text: str) -> ClientMessage:
    """Parse and validate one control message from a client; raise `WireError` if bad."""
    if len(text) > MAX_CONTROL_BYTES:  # characters >= bytes/4; checked exactly below
        raise WireError(f"control message over {MAX_CONTROL_BYTES} bytes", "too-large")
    if not text.isascii():
        try:
            size = len(text.encode())
        except UnicodeEncodeError:
            raise WireError(BAD_TEXT_RULE, "bad-text") from None
        if size > MAX_CONTROL_BYTES:
            raise WireError(f"control message over {MAX_CONTROL_BYTES} bytes", "too-large")
    obj = _as_object(_decode_text(text, MAX_JSON_DEPTH))
    kind = obj.get("type")
    if kind == "join":
        return Join(_counter(obj, "epoch", kind, default=0))
    if kind == "received":
        return Received(_counter(obj, "bytes", kind))
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
    raise WireError(f"unknown control message type {_shown(kind)}", "unknown-type")


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


def encode_received(total_bytes: int) -> str:
    """A client's count of the realtime bytes it has read (see `Received`)."""
    return _dump({"type": "received", "bytes": total_bytes})


def encode_update_send(update: dict[str, Any]) -> str:
    """A client's status update (`webxdc.sendUpdate`); ValueError if it is not strict JSON
    text (NaN, infinities, lone surrogates, nesting too deep to encode)."""
    return _dump_app_data({"type": "update-send", "update": update})


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


def encode_send_to_chat(request_id: int, text: str | None, file_name: str | None = None,
                        file_base64: str | None = None) -> str:
    """A client's message to the chat (`webxdc.sendToChat`): a text, a file, or both;
    ValueError if a text holds a lone surrogate."""
    message: dict[str, Any] = {"type": "send-to-chat", "id": request_id}
    if text is not None:
        message["text"] = text
    if file_name is not None or file_base64 is not None:
        message["file"] = {"name": file_name, "base64": file_base64}
    return _dump_app_data(message)


def encode_client_message(message: ClientMessage) -> str:
    """The control message a client sends for `message`: `decode_client_message` undone."""
    if isinstance(message, Join):
        return encode_join(message.epoch)
    if isinstance(message, Leave):
        return encode_leave()
    if isinstance(message, Received):
        return encode_received(message.bytes)
    if isinstance(message, UpdateSend):
        return encode_update_send(message.update)
    if isinstance(message, UpdateListen):
        return encode_update_listen(message.listen, message.serial)
    if isinstance(message, SendToChat):
        return encode_send_to_chat(message.id, message.text, message.file_name,
                                   message.file_base64)
    return encode_chat_messages_request(message.id, message.before)


def encode_hello(self_addr: str, self_name: str, limits: HelloLimits) -> str:
    """The first frame the host sends on a new connection."""
    return _dump({"type": "hello", "self_addr": self_addr, "self_name": self_name,
                  "limits": {"max_payload_bytes": limits.max_payload_bytes,
                             "send_items_per_s": limits.send_items_per_s,
                             "send_items_burst": limits.send_items_burst,
                             "send_bytes_per_s": limits.send_bytes_per_s,
                             "send_bytes_burst": limits.send_bytes_burst,
                             "receive_window_bytes": limits.receive_window_bytes}})


def encode_joined(epoch: int) -> str:
    """The host's answer to a join that took effect."""
    return _dump({"type": "joined", "epoch": epoch})


def encode_error(code: str, message: str) -> str:
    """Tell a client that one of its requests was refused, or that it is being slowed, and
    why."""
    return _dump({"type": "error", "code": code, "message": message})


# -- host to client, typed ---------------------------------------------------------------
#
# One dataclass per message type, with the fields the host writes; `decode_host_message`
# returns them and `encode_host_message` undoes it. The host writes with the `encode_*`
# functions above (an update's JSON text is encoded once for all its listeners), and the
# round-trip tests keep both sides of each message in step.


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


@dataclass(frozen=True, slots=True)
class Hello:
    """`hello`: the host's first frame on a connection: whose page it is, and its limits."""

    self_addr: str
    self_name: str
    limits: HelloLimits


@dataclass(frozen=True, slots=True)
class Joined:
    """`joined`: the join with this `epoch` took effect; the binary frames that follow
    belong to that channel, until the next leave."""

    epoch: int


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


@dataclass(frozen=True, slots=True)
class UnknownHostMessage:
    """A control message of a type this version does not know: a newer host may send new
    types, so it is not an error; a client ignores it. `fields`: the whole message as
    decoded (strict JSON, like every other), `type` included."""

    type: str
    fields: dict[str, Any]


HostMessage = (Hello | Joined | Update | UpdateBacklogDone | Reply | ChatMessages
               | ErrorMessage | UnknownHostMessage)


def encode_host_message(message: HostMessage) -> str:
    """The control message the host sends for `message`: `decode_host_message` undone."""
    if isinstance(message, Hello):
        return encode_hello(message.self_addr, message.self_name, message.limits)
    if isinstance(message, Joined):
        return encode_joined(message.epoch)
    if isinstance(message, Update):
        return encode_update(message.listen, _dump(message.update))
    if isinstance(message, UpdateBacklogDone):
        return encode_backlog_done(message.listen)
    if isinstance(message, Reply):
        return encode_reply(message.id, None if message.ok else (message.code, message.message))
    if isinstance(message, ChatMessages):
        return encode_chat_messages(message.id, message.messages, message.more)
    if isinstance(message, ErrorMessage):
        return encode_error(message.code, message.message)
    return _dump(message.fields)


def decode_host_message(text: str) -> HostMessage:
    """Parse and validate one control message from the host (the Python peer's side of
    `decode_client_message`): strict JSON, a string `type`, and every field of a known
    type present and typed; fields it does not know are ignored, and a message of a type it
    does not know is an `UnknownHostMessage` (a newer host may send either). Raises
    `WireError` for anything else."""
    obj = _as_object(decode_json(text))
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise WireError("control message without a string 'type'")
    decode = _HOST_DECODERS.get(kind)
    if decode is None:
        return UnknownHostMessage(kind, obj)
    return decode(obj)


def _decode_hello(obj: dict[str, Any]) -> Hello:
    limits = obj.get("limits")
    if type(limits) is not dict:
        raise WireError("hello: 'limits' must be an object")
    return Hello(_string(obj, "self_addr", "hello"), _string(obj, "self_name", "hello"),
                 HelloLimits(
                     max_payload_bytes=_positive(limits, "max_payload_bytes"),
                     send_items_per_s=_rate(limits, "send_items_per_s"),
                     send_items_burst=_positive(limits, "send_items_burst"),
                     send_bytes_per_s=_rate(limits, "send_bytes_per_s"),
                     send_bytes_burst=_positive(limits, "send_bytes_burst"),
                     receive_window_bytes=_counter(limits, "receive_window_bytes",
                                                   "hello.limits", default=0)))


def _decode_update(obj: dict[str, Any]) -> Update:
    update = obj.get("update")
    if type(update) is not dict:
        raise WireError("update: 'update' must be an object")
    _counter(update, "serial", "update.update")
    _counter(update, "max_serial", "update.update")
    return Update(_counter(obj, "listen", "update"), update)


def _decode_reply(obj: dict[str, Any]) -> Reply:
    request_id = _counter(obj, "id", "reply")
    ok = obj.get("ok")
    if type(ok) is not bool:
        raise WireError("reply: 'ok' must be true or false")
    if ok:
        return Reply(request_id, True)
    return Reply(request_id, False, _string(obj, "code", "reply"),
                 _string(obj, "message", "reply"))


def _decode_chat_messages(obj: dict[str, Any]) -> ChatMessages:
    messages = obj.get("messages")
    if type(messages) is not list or any(type(m) is not dict for m in messages):
        raise WireError("chat-messages: 'messages' must be a list of objects")
    more = obj.get("more")
    if type(more) is not bool:
        raise WireError("chat-messages: 'more' must be true or false")
    return ChatMessages(_counter(obj, "id", "chat-messages"), messages, more)


_HOST_DECODERS: Final[dict[str, Callable[[dict[str, Any]], HostMessage]]] = {
    "hello": _decode_hello,
    "joined": lambda obj: Joined(_counter(obj, "epoch", "joined")),
    "update": _decode_update,
    "update-backlog-done": lambda obj: UpdateBacklogDone(
        _counter(obj, "listen", "update-backlog-done")),
    "reply": _decode_reply,
    "chat-messages": _decode_chat_messages,
    "error": lambda obj: ErrorMessage(_string(obj, "code", "error"),
                                      _string(obj, "message", "error")),
}
"""How each type of host message is checked and typed; other types are unknown."""


def _string(obj: dict[str, Any], name: str, kind: str) -> str:
    value = obj.get(name)
    if type(value) is not str:
        raise WireError(f"{kind}: {name!r} must be a string")
    return value


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


def _as_object(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise WireError("control message must be a JSON object")
    return value


def _shown(value: Any, limit: int = 60) -> str:
    """A client's value, quoted for an error message and cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _dump_app_data(obj: dict[str, Any]) -> str:
    """`_dump` for a message that carries an app's data, which may be anything: what a
    host would refuse is refused here, before it is queued (a text that cannot be encoded
    would otherwise fail only when written)."""
    try:
        text = _dump(obj)
    except RecursionError:
        raise ValueError("nested too deep to encode as JSON") from None
    if not is_text(text):
        raise ValueError(BAD_TEXT_RULE)
    return text
