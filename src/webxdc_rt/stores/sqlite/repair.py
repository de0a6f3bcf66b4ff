"""Reading what older versions, other programs or a damaged disk wrote into a SQLite store.

What is read back is sent to members as it is, so reading never trusts the file: rows written
by older versions (which stored `NaN`, escaped lone surrogates in `notify` and member names),
by other programs, or damaged on disk are repaired as they are read, never refused. Text that
is not UTF-8 and lone surrogates become U+FFFD, the replacement character; `NaN` and
infinities become `null`. The first repair is logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from ...core import wire
from ...model.chats import Member
from ..api import decode_members

__all__ = ["PAYLOAD_DEPTH", "Repair", "repaired_json"]

log = logging.getLogger(__name__)

PAYLOAD_DEPTH: Final = wire.MAX_JSON_DEPTH - 2
"""Nesting a stored payload may have: an update frame's own two objects hold the rest."""


class Repair:
    """Reads stored text and JSON leniently, logging the first repair it makes."""

    def __init__(self) -> None:
        self._logged = False

    def text(self, stored: bytes | None, where: str) -> str | None:
        """A text column read as bytes: UTF-8, with U+FFFD for what is not."""
        if stored is None:
            return None
        try:
            return stored.decode()
        except UnicodeDecodeError:
            self.repaired(where, "text that is not UTF-8")
            return stored.decode(errors="replace")

    def payload(self, payload: str, where: str) -> str | None:
        """None if the stored payload is strict JSON, else its repair. The full check, which
        costs as much as decoding, is made only when the text may hold what older versions
        let through: `NaN`, infinities, escaped surrogates. Integers beyond a double and
        nesting beyond the limit, which they also stored, and payloads damaged into text
        that is not JSON are sent as they are: they cost their readers that one update (the
        Python peer logs and skips it), never the replay."""
        if "NaN" not in payload and "Infinity" not in payload and "\\u" not in payload:
            return None
        try:
            wire.decode_json(payload, PAYLOAD_DEPTH)
        except wire.WireError as exc:
            self.repaired(where, exc.code)
            return json.dumps(repaired_json(payload, PAYLOAD_DEPTH), separators=(",", ":"),
                              ensure_ascii=False, allow_nan=False)
        return None

    def notify(self, stored: str, where: str) -> dict[str, str] | None:
        """A stored `notify`: address (or "*") to text, repaired and left out if bad."""
        try:
            notify = wire.decode_json(stored)
        except wire.WireError as exc:
            self.repaired(where, exc.code)
            notify = repaired_json(stored, 1)
        if not isinstance(notify, dict):
            return None
        return {key: text for key, text in notify.items() if isinstance(text, str)}

    def members(self, stored: str | None) -> list[Member]:
        """A chat's stored member list (JSON: a list of `{"id", "name"}`)."""
        try:
            members = wire.decode_json(stored or "[]")
        except wire.WireError as exc:
            self.repaired("a member list", exc.code)
            members = repaired_json(stored or "[]", 2)
        return decode_members(members)

    def repaired(self, where: str, problem: str) -> None:
        """Say once that stored data needed repair (`problem` in `where`)."""
        if not self._logged:
            self._logged = True
            log.warning("%s in %s: repaired as it is read (bad characters as U+FFFD, NaN and "
                        "infinities as null); further repairs are not logged", problem, where)


_LENIENT_DECODER: Final = json.JSONDecoder(parse_constant=lambda name: None)
"""Reads what older versions wrote: `NaN`, `Infinity` and `-Infinity` as null."""


def repaired_json(text: str, max_depth: int) -> Any:
    """The value of stored JSON text that the strict decoder refuses, with every string
    valid text, every number finite (else null) and nesting within `max_depth` (deeper
    arrays and objects become null); null if the text is not JSON at all."""
    try:
        value = _LENIENT_DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    holder = [value]
    level: list[Any] = [holder]  # the holder is level 0, the value level 1
    depth = 0
    while level:
        below: list[Any] = []
        for node in level:
            if type(node) is dict:
                items = [(wire.as_text(key), item) for key, item in node.items()]
                node.clear()
                node.update(items)
                keys: Any = list(node)
            else:
                keys = range(len(node))
            for key in keys:
                item = node[key]
                kind = type(item)
                if kind is str:
                    node[key] = wire.as_text(item)
                elif kind is dict or kind is list:
                    if depth + 1 > max_depth:
                        node[key] = None
                    else:
                        below.append(item)
                elif (kind is float or kind is int) and not wire.is_finite_number(item):
                    node[key] = None
        level = below
        depth += 1
    return holder[0]
