"""The frames between a page (or Python peer) and the host, over one WebSocket.

- A **binary** frame is one realtime item, in either direction, as raw bytes: no JSON, no
  base64. On a connection whose `join` said `"stamped": true`, every item in both
  directions starts with an 8-byte stamp (`items`): when the sender sent it, by the host's
  clock, so that the receiver can drop an item older than `max_item_age_ms`; the 128000-byte
  limit is on the payload after it. The host forwards a stamped item's exact bytes to
  stamped receivers, strips the stamp for the others, and stamps the items of a connection
  that does not (with its own clock when the item arrived).
- A **text** frame is one control message: a JSON object with a string field `type`.

Client to host:
    {"type": "join", "epoch": N, "stamped": true}   join the realtime channel (N: the
                                    client's counter); `stamped` (default false): this
                                    connection's items carry the stamp
    {"type": "leave"}               leave it
    {"type": "received", "bytes": N}    the binary frames this connection has read so
                                    far, N counted as their payloads plus framing (see
                                    `frame_bytes`); lets the host keep what is in flight
                                    to a slow reader within `receive_window_bytes`
    {"type": "update-send", "update": {...}, "id": "..."}    webxdc.sendUpdate; `id`
                                    (optional, 1 to 64 of [A-Za-z0-9_-]) names the update
                                    for this member and app copy: a resend with an id
                                    already stored stores nothing, sends the update to no
                                    one again and is answered `update-stored` again
    {"type": "update-listen", "listen": N, "serial": S}
                                    start (or restart) the update listener after serial S
    {"type": "send-to-chat", "id": N, "text": ..., "file": {"name": ..., "base64": ...}}
    {"type": "chat-messages", "id": N, "before": M}  what apps posted to the chat (the
                                    latest ones, or those older than message id M)

Host to client:
    {"type": "hello", "self_addr": ..., "self_name": ..., "limits": {...}, "time_ms": T}
                                    first frame; T: the host's clock (ms since the Unix
                                    epoch), the reference for stamps
    {"type": "joined", "epoch": N, "time_ms": T}  the join with epoch N took effect;
                                    binary frames that follow belong to that channel,
                                    until the next leave; T: the host's clock again
    {"type": "update", "listen": N, "update": {..., "serial": S, "max_serial": M}}
    {"type": "update-backlog-done", "listen": N}    the backlog of listener N was sent
    {"type": "update-stored", "id": "...", "serial": S}    to the sender only: its update
                                    with that id is stored (now or before) under serial S
    {"type": "reply", "id": N, "ok": true}  or  {..., "ok": false, "code": ..., "message": ...}
    {"type": "chat-messages", "id": N, "messages": [...], "more": bool}
                                    oldest first; `more`: older ones remain
    {"type": "error", "code": ..., "message": ..., "id": "..."}   a request was refused
                                    (nothing else lost), or sending is slowed
                                    (`rate-limited`); `id`, only for a refused update
                                    that was sent with one: that update's

Each message has a frozen dataclass on both sides (`Join`, ..., `ChatMessagesRequest` from
the client, in `client`; `Hello`, `Joined`, `Update`, `UpdateBacklogDone`,
`UpdateStored`, `Reply`, `ChatMessages`, `ErrorMessage` from the host, in `host`), an
encoder, and a decoder that returns the dataclass, so the host and the Python peer read and
write each message with the same code. The `hello` limits are `HelloLimits`:
`max_payload_bytes`, `send_items_per_s`, `send_items_burst`, `send_bytes_per_s`,
`send_bytes_burst`, `receive_window_bytes`, `max_item_age_ms`. A host
message of a type this version does not know decodes as `UnknownHostMessage` rather than
failing, and fields it does not know are ignored, so that a newer host can add both.

Decoding validates everything and raises `WireError` with a message that says what was
wrong, so that a bad frame gets a clear answer and costs nothing else. Every JSON text that
comes from a client (and, in the Python peer, from the host) goes through one strict decoder,
`decode_json` (in `text`, with the rules it enforces).

This package exports every public name of its modules; import from it (`wire.Join`).
"""

from __future__ import annotations

from .client import (
    UPDATE_ID_RULE,
    ChatMessagesRequest,
    ClientMessage,
    Join,
    Leave,
    Received,
    SendToChat,
    UpdateListen,
    UpdateSend,
    decode_client_message,
    encode_chat_messages_request,
    encode_client_message,
    encode_join,
    encode_leave,
    encode_received,
    encode_send_to_chat,
    encode_update_listen,
    encode_update_send,
    frame_bytes,
    update_id_of,
)
from .host import (
    ChatMessages,
    ErrorMessage,
    Hello,
    HelloLimits,
    HostMessage,
    Joined,
    Reply,
    UnknownHostMessage,
    Update,
    UpdateBacklogDone,
    UpdateStored,
    decode_hello,
    decode_host_message,
    encode_backlog_done,
    encode_chat_messages,
    encode_error,
    encode_hello,
    encode_host_message,
    encode_joined,
    encode_reply,
    encode_update,
    encode_update_stored,
)
from .items import (
    ITEM_HEADER_BYTES,
    ItemClock,
    encode_stamp,
    pack_stamp,
    read_stamp,
    stamped_age_ms,
)
from .text import (
    BAD_NUMBER_RULE,
    BAD_TEXT_RULE,
    MAX_CONTROL_BYTES,
    MAX_EPOCH,
    MAX_JSON_DEPTH,
    WireError,
    as_text,
    decode_json,
    is_finite_number,
    is_text,
)

__all__ = [
    "ITEM_HEADER_BYTES",
    "ItemClock",
    "encode_stamp",
    "pack_stamp",
    "read_stamp",
    "stamped_age_ms",
    "MAX_CONTROL_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_EPOCH",
    "BAD_TEXT_RULE",
    "BAD_NUMBER_RULE",
    "WireError",
    "decode_json",
    "is_text",
    "as_text",
    "is_finite_number",
    "Join",
    "Leave",
    "Received",
    "UpdateSend",
    "UPDATE_ID_RULE",
    "UpdateListen",
    "SendToChat",
    "ChatMessagesRequest",
    "ClientMessage",
    "frame_bytes",
    "update_id_of",
    "decode_client_message",
    "encode_client_message",
    "encode_join",
    "encode_leave",
    "encode_received",
    "encode_update_send",
    "encode_update_listen",
    "encode_send_to_chat",
    "encode_chat_messages_request",
    "HelloLimits",
    "Hello",
    "Joined",
    "Update",
    "UpdateBacklogDone",
    "UpdateStored",
    "Reply",
    "ChatMessages",
    "ErrorMessage",
    "UnknownHostMessage",
    "HostMessage",
    "decode_host_message",
    "decode_hello",
    "encode_host_message",
    "encode_hello",
    "encode_joined",
    "encode_update",
    "encode_backlog_done",
    "encode_update_stored",
    "encode_reply",
    "encode_chat_messages",
    "encode_error",
]
