"""Control messages as text: the one strict JSON decoder every text frame goes through,
the checks of message fields, and the one JSON encoding of every message the package writes.

What `decode_json` accepts is JSON that every browser's `JSON.parse` reads the same way and
that re-encodes as UTF-8, so nothing it lets in can break a frame sent later. It refuses:

- text that is not JSON (`malformed`);
- `NaN`, `Infinity`, `-Infinity` and numbers beyond the range of a double, such as `1e999` or
  a 400-digit integer, which `JSON.parse` reads as `Infinity` (`bad-number`);
- strings or keys holding a lone surrogate, e.g. the escape `"\\ud800"` that
  `JSON.stringify` writes for a string cut in the middle of an emoji (`bad-text`); an escaped
  pair such as `"\\ud83d\\ude00"` is one character and welcome;
- arrays and objects nested deeper than `MAX_JSON_DEPTH` (`nesting-too-deep`).

The field readers (`read_counter`, `read_string`, ...) and `dump` serve the message modules
of this package (`client`, `host`); the rest is exported by `wire` itself.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from ..errors import Refusal

MAX_CONTROL_BYTES = 1024 * 1024
"""Largest control message (text frame) the host accepts, in bytes."""

MAX_JSON_DEPTH = 128
"""Deepest nesting of arrays and objects in one control message, the message itself being
level 1: an update's `payload` may nest 126 levels. Generous for app state, and far below
where a recursive JSON parser or encoder (CPython's, a browser's) runs out of stack."""

MAX_EPOCH = 2**53 - 1
"""The largest integer a JavaScript number holds exactly: the bound of every counter."""

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
    return decode_valid_text(text, max_depth)


def decode_valid_text(text: str, max_depth: int) -> Any:
    """`decode_json` for text already known to hold no lone surrogate itself (a caller
    that has encoded it, say)."""
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


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object; `WireError` otherwise."""
    if type(value) is not dict:
        raise WireError("control message must be a JSON object")
    return value


def read_counter(obj: dict[str, Any], name: str, kind: str, default: int | None = None) -> int:
    """Field `name` of a `kind` message: an integer from 0 to `MAX_EPOCH` (`default` when
    absent, if given)."""
    value = obj.get(name, default)
    if type(value) is not int or not 0 <= value <= MAX_EPOCH:
        raise WireError(f"{kind}: {name!r} must be an integer from 0 to 2**53-1")
    return value


def read_string(obj: dict[str, Any], name: str, kind: str) -> str:
    """Field `name` of a `kind` message: a string."""
    value = obj.get(name)
    if type(value) is not str:
        raise WireError(f"{kind}: {name!r} must be a string")
    return value


def read_optional_string(obj: dict[str, Any], name: str, kind: str) -> str | None:
    """Field `name` of a `kind` message: a string, or absent or null (None)."""
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise WireError(f"{kind}: {name!r} must be a string")
    return value


def shown(value: Any, limit: int = 60) -> str:
    """A client's value, quoted for an error message and cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def dump(obj: dict[str, Any]) -> str:
    """A message as compact JSON text, the form every control message is sent in."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dump_app_data(obj: dict[str, Any]) -> str:
    """`dump` for a message that carries an app's data, which may be anything: what a
    host would refuse is refused here (ValueError), before it is queued (a text that cannot
    be encoded would otherwise fail only when written)."""
    try:
        text = dump(obj)
    except RecursionError:
        raise ValueError("nested too deep to encode as JSON") from None
    if not is_text(text):
        raise ValueError(BAD_TEXT_RULE)
    return text
