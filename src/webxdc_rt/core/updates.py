"""Status-update rules, with no I/O: what a valid update is, and the size and rate limits.

A webxdc status update (`webxdc.sendUpdate(update, descr)`) is persistent app state shared
with every member, the sender included. Each stored update gets a `serial` that increases
per app copy (with gaps allowed); a listener that starts late gets every update after the
serial it names, then the live ones, each with `max_serial`, the highest serial when it was
delivered.

Updates arrive already checked by the wire's strict JSON decoder; the rules here hold for any
Python value all the same: an update that is not strict JSON text (a lone surrogate, NaN or
infinity, a value JSON cannot hold) is refused, and what `delivered_json` returns always
encodes as UTF-8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import Refusal
from .limits import UpdateLimits
from .wire import BAD_NUMBER_RULE, BAD_TEXT_RULE, as_text, is_text

__all__ = ["UpdateError", "Update", "validate_update", "delivered_json"]

TEXT_FIELDS = ("info", "href", "document", "summary")


class UpdateError(Refusal, ValueError):
    """An update that breaks a rule; `code` is sent to the client."""

    code = "bad-update"


@dataclass(frozen=True, slots=True)
class Update:
    """A valid update, ready to store: the payload is kept as JSON text."""

    payload_json: str
    info: str | None = None
    href: str | None = None
    document: str | None = None
    summary: str | None = None
    notify: dict[str, str] | None = None


def validate_update(update: Any, limits: UpdateLimits) -> Update:
    """Check an update as sent by an app; raise `UpdateError` saying what is wrong."""
    if not isinstance(update, dict):
        raise UpdateError("sendUpdate expects an object like {payload: ...}")
    if "payload" not in update:
        raise UpdateError("update.payload is missing (undefined is not allowed)")
    payload_json = _payload_json(update["payload"])
    try:
        size = len(payload_json.encode())
    except UnicodeEncodeError:
        raise UpdateError(f"update.payload: {BAD_TEXT_RULE}", "bad-text") from None
    if size > limits.max_payload_bytes:
        raise UpdateError(f"update payload of {size} bytes is over the limit of "
                          f"{limits.max_payload_bytes} bytes", "update-too-large")
    texts: dict[str, str | None] = {}
    for name in TEXT_FIELDS:
        value = update.get(name)
        if value is not None and not isinstance(value, str):
            raise UpdateError(f"update.{name} must be a string")
        if value is not None and len(value) > limits.max_text_chars:
            raise UpdateError(f"update.{name} is longer than {limits.max_text_chars} characters")
        if value is not None and not is_text(value):
            raise UpdateError(f"update.{name}: {BAD_TEXT_RULE}", "bad-text")
        texts[name] = value
    return Update(payload_json, notify=_check_notify(update.get("notify"), limits), **texts)


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""Compact strict JSON, made once: `json.dumps` with options makes an encoder per call,
which costs as much as encoding a small update."""


def _payload_json(payload: Any) -> str:
    """The payload as compact JSON text; `UpdateError` if JSON cannot hold it."""
    try:
        return _COMPACT_JSON.encode(payload)
    except ValueError:
        raise UpdateError(f"update.payload: {BAD_NUMBER_RULE}", "bad-number") from None
    except TypeError as exc:
        raise UpdateError(f"update.payload is not JSON: {exc}") from None
    except RecursionError:
        raise UpdateError("update.payload is nested too deep", "nesting-too-deep") from None


def _check_notify(notify: Any, limits: UpdateLimits) -> dict[str, str] | None:
    if notify is None:
        return None
    if not isinstance(notify, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in notify.items()):
        raise UpdateError("update.notify must map addresses (or \"*\") to texts")
    if len(notify) > limits.max_notify_entries:
        raise UpdateError(f"update.notify has more than {limits.max_notify_entries} entries")
    if not all(is_text(k) and is_text(v) for k, v in notify.items()):
        raise UpdateError(f"update.notify: {BAD_TEXT_RULE}", "bad-text")
    return dict(notify)


def delivered_json(update: Update, serial: int, max_serial: int) -> str:
    """The update as a listener receives it, as JSON text: the sent fields plus `serial`
    and `max_serial`. The stored payload text is spliced in, not decoded again.

    `validate_update` and the store only make updates of valid text; should an `Update`
    made otherwise hold a lone surrogate, it is sent as U+FFFD rather than making a text
    that cannot be encoded (which would fail every frame it is in)."""
    fields = {name: getattr(update, name) for name in TEXT_FIELDS
              if getattr(update, name) is not None}
    if update.notify is not None:
        fields["notify"] = update.notify
    if not fields:  # most updates: two integers need no encoder
        return as_text(f'{{"payload":{update.payload_json},"serial":{int(serial)},'
                       f'"max_serial":{int(max_serial)}}}')
    fields["serial"] = serial
    fields["max_serial"] = max_serial
    rest = _COMPACT_JSON.encode(fields)
    return as_text('{"payload":' + update.payload_json + "," + rest[1:])
