"""What the commands share about their options: the error for a mistake the user can fix,
and `--limit NAME=VALUE`, which names every numeric setting of `HostSettings` by a dotted
name (`realtime.max_payload_bytes`) and checks values as the settings themselves do.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from dataclasses import dataclass
from typing import Any, get_type_hints

from ..host.app import HostSettings

__all__ = ["UsageError", "Limit", "settable_limits", "limits_help", "apply_limits"]


class UsageError(Exception):
    """A problem the user can fix (what they asked for, or the state of the machine it
    needs, such as the app or the data directory), reported as one line."""


@dataclass(frozen=True, slots=True)
class Limit:
    """One numeric setting that `--limit NAME=VALUE` can change."""

    name: str
    """The name `--limit` accepts: `group.field` for a field of a group of settings
    (`realtime`, `updates`, `chat`), the bare field name for `HostSettings`' own."""
    group: str | None
    """The `HostSettings` field holding the group, or None for `HostSettings`' own."""
    field: str
    """The field's name in its dataclass."""
    kind: type[int] | type[float]
    """What the field holds: a whole number, or any finite number."""
    default: int | float
    """The field's default value."""


def settable_limits() -> dict[str, Limit]:
    """Every numeric setting of `HostSettings` and of its groups, by the name `--limit`
    accepts, in the order the dataclasses declare them."""
    defaults = HostSettings()
    limits: dict[str, Limit] = {}
    for name, kind in get_type_hints(HostSettings).items():
        if dataclasses.is_dataclass(kind):
            group = getattr(defaults, name)
            for field_name, field_kind in get_type_hints(kind).items():
                if field_kind in (int, float):
                    limits[f"{name}.{field_name}"] = Limit(
                        f"{name}.{field_name}", name, field_name, field_kind,
                        getattr(group, field_name))
        elif kind in (int, float):
            limits[name] = Limit(name, None, name, kind, getattr(defaults, name))
    return limits


def limits_help() -> str:
    """The `--help` text that lists every setting `--limit` accepts, with its default."""
    lines = ["limits, set with --limit NAME=VALUE (repeatable), and their defaults;",
             "docs/limits.md says what each one bounds:"]
    by_group: dict[str | None, list[str]] = {}
    for limit in settable_limits().values():
        by_group.setdefault(limit.group, []).append(f"{limit.name}={_number(limit.default)}")
    for entries in by_group.values():
        lines.append(textwrap.fill("  ".join(entries), width=79, initial_indent="  ",
                                   subsequent_indent="  ", break_on_hyphens=False))
    return "\n".join(lines)


def apply_limits(settings: HostSettings, assignments: list[str]) -> HostSettings:
    """`settings` with every `NAME=VALUE` applied (the last one wins for a name given twice),
    checked together by the settings themselves; UsageError for an unknown name, a value
    that is not a number of the field's kind, or one the settings refuse."""
    limits = settable_limits()
    own: dict[str, Any] = {}  # each value of its field's kind, by `_parse_value`
    grouped: dict[str, dict[str, int | float]] = {}
    given: dict[str, list[str]] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep:
            raise UsageError(f"--limit expects NAME=VALUE, got {assignment!r}")
        limit = limits.get(name.strip())
        if limit is None:
            raise UsageError(_unknown_limit(name.strip(), limits))
        value = _parse_value(limit, text.strip())
        if limit.group is None:
            own[limit.field] = value
        else:
            grouped.setdefault(limit.group, {})[limit.field] = value
            given.setdefault(limit.group, []).append(assignment.strip())
    groups: dict[str, Any] = {}
    for group, changes in grouped.items():
        try:
            groups[group] = dataclasses.replace(getattr(settings, group), **changes)
        except ValueError as exc:
            # The group's message names the field alone; say which assignments it was.
            raise UsageError(f"--limit {' '.join(given[group])}: {exc}") from None
    try:
        return dataclasses.replace(settings, **own, **groups)
    except ValueError as exc:
        raise UsageError(f"--limit: {exc}") from None


def _parse_value(limit: Limit, text: str) -> int | float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise UsageError(f"--limit {limit.name}: expects a number, got {text!r}")
    if limit.kind is float:
        return number
    try:
        return int(text)  # exact, however large
    except ValueError:
        if not number.is_integer():
            raise UsageError(f"--limit {limit.name}: expects a whole number, "
                             f"got {text!r}") from None
        return int(number)  # written as 1e6 or 5000.0


def _unknown_limit(name: str, limits: dict[str, Limit]) -> str:
    similar = [limit.name for limit in limits.values()
               if limit.group is not None and limit.field == name]
    hint = f" (did you mean {' or '.join(similar)}?)" if similar else ""
    return f"--limit: no setting named {name!r}{hint}; the settings are: {', '.join(limits)}"


def _number(value: int | float) -> str:
    """A default as one would type it: whole numbers without a fraction or an exponent."""
    return str(int(value)) if float(value).is_integer() else repr(value)
