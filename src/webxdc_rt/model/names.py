"""What a name of a member, a chat or an app may be, and how names are shown on a terminal.

Names are chosen by people and shown to other people, so two names must not look alike and
every name must show something. A name is kept in NFC, so that the same letters typed as
composed or decomposed characters are one name. `skeleton` folds a name to what it looks
like: NFKC (fullwidth and other compatibility forms become plain letters), the common
Cyrillic and Greek homoglyphs of Latin letters mapped to those letters, letter case folded,
and characters that show nothing dropped. Two names with the same skeleton are confusable.

The map of homoglyphs is deliberately small (the letters used to spoof Latin names); the
full Unicode confusables table (UTS #39) was not taken in: the PyPI packages that ship it
answer "is this one string mixed-script", not "do these two names look alike", and are no
longer kept up to date with Unicode.

Names from an app's manifest are not chosen by the operator: `app_name` removes control
characters from them and cuts them to a bound. Whatever was stored by older versions,
`shown` escapes control characters before a name reaches a terminal or a log line.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Final

__all__ = ["ZWJ", "name_problem", "shows_nothing", "skeleton", "fold", "same_name", "looks_alike",
           "lookalike_of", "shown", "app_name", "counted"]

ZWJ: Final = "\u200d"
"""The zero-width joiner that binds emoji into one (👩‍💻): kept between two characters."""
_ZWNJ: Final = "\u200c"
_JOINERS: Final = frozenset((ZWJ, _ZWNJ))
_BLACK_FLAG: Final = "\U0001f3f4"
"""Starts the emoji flags of regions, spelled with invisible tag characters after it."""
_TAGS: Final = range(0xE0020, 0xE0080)

_BLANK_LETTERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u17b4\u17b5")
"""Characters Unicode counts as letters or symbols that show nothing: the Hangul fillers
and the blank Braille pattern (names made of these look empty)."""
_SHOWS_NOTHING: Final = frozenset(("Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn", "Mn",
                                   "Me"))
"""Categories of characters that show nothing by themselves: spaces, controls and
formatting, and combining marks without a letter to sit on."""
_IGNORED_CATEGORIES: Final = _SHOWS_NOTHING - {"Mn", "Me"}
"""What the skeleton drops: combining marks stay (accents tell names apart)."""

_VARIANT_MARKS: Final = frozenset(
    ["\u034f", "\u180b", "\u180c", "\u180d", "\u180f"]
    + [chr(code) for code in (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0))])
"""The combining grapheme joiner and the variation selectors (text or emoji style)."""

_HOMOGLYPHS: Final = str.maketrans({
    # Cyrillic capitals, then small letters, that look like Latin ones.
    "А": "A", "В": "B", "Е": "E", "З": "3", "І": "l", "Ј": "J", "К": "K", "М": "M",
    "Н": "H", "О": "O", "Р": "P", "С": "C", "Ѕ": "S", "Т": "T", "У": "Y", "Х": "X",
    "Ү": "Y", "Ӏ": "l", "Ԛ": "Q", "Ԝ": "W",
    "а": "a", "в": "b", "г": "r", "е": "e", "ё": "ë", "і": "i", "ї": "ï", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "ь": "b", "һ": "h", "ӏ": "l", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ү": "y", "ҽ": "e",
    # Greek capitals, then small letters.
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "l", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    "α": "a", "γ": "y", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "σ": "o",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    # Latin letters that pass for others: dotless i, script a and g, capital I and l.
    "ı": "i", "ɑ": "a", "ɡ": "g", "I": "l", "ǀ": "l", "|": "l",
})
"""Homoglyphs of Latin letters, mapped before letter case is folded (capital I and small L
look alike, small i does not)."""


def name_problem(name: str) -> str | None:
    """Why `name` (in NFC, without surrounding blanks) cannot be a name, or None: control
    or formatting characters (a joiner only between two characters, tag characters only in
    an emoji flag), or nothing to show."""
    previous = ""
    for char in name:
        if char in _JOINERS:
            if previous in ("", *_JOINERS):
                return "contains a joiner that joins nothing"
        elif ord(char) in _TAGS:
            if previous != _BLACK_FLAG and ord(previous or "\0") not in _TAGS:
                return "contains control characters or is not text"
        elif not char.isprintable():  # lone surrogates are not printable either
            return "contains control characters or is not text"
        previous = char
    if previous in _JOINERS:
        return "contains a joiner that joins nothing"
    if shows_nothing(name):
        spelled = " ".join(f"U+{ord(char):04X}" for char in name[:8])
        return f"shows nothing (only blank or invisible characters: {spelled})"
    return None


def shows_nothing(text: str) -> bool:
    """True when no character of `text` shows anything by itself."""
    return all(_blank(char) for char in text)


def skeleton(name: str) -> str:
    """What `name` looks like: two names with the same skeleton are confusable (see the
    module docstring)."""
    folded = unicodedata.normalize("NFKC", name).translate(_HOMOGLYPHS).casefold()
    if not folded.isascii():  # only then can it hold characters that show nothing
        folded = "".join(char for char in folded if char.isspace() or not _ignorable(char))
    return " ".join(folded.split())


def fold(name: str) -> str:
    """`name` with letter case and form (NFKC) folded: two names with the same fold are the
    same name."""
    return unicodedata.normalize("NFKC", name).casefold()


def same_name(name: str, other: str) -> bool:
    """True when two names are the same but for letter case and form (NFKC)."""
    return fold(name) == fold(other)


def looks_alike(name: str, other: str) -> bool:
    """True when two names are the same but for letter case, form or homoglyphs, or for
    characters that show nothing."""
    return same_name(name, other) or skeleton(name) == skeleton(other)


def lookalike_of(name: str, taken: Iterable[str]) -> str | None:
    """The first of the `taken` names that `name` looks like, if any."""
    folded, shape = fold(name), skeleton(name)
    return next((other for other in taken
                 if fold(other) == folded or skeleton(other) == shape), None)


def shown(text: str) -> str:
    """`text` as it may be written to a terminal or a log line: each control or formatting
    character (escape sequences, newlines, bidirectional overrides) as a visible escape,
    `\\x1b`, `\\n`, `\\u202e`; joiners and emoji tags kept."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char in _JOINERS or ord(char) in _TAGS
                   else _escape(char) for char in text)


def app_name(raw: str, limit: int) -> str:
    """An app's name from its manifest as it may be kept and shown: control characters
    removed, blanks around it stripped, in NFC, at most `limit` characters (a longer one is
    cut and ends with an ellipsis). Empty when nothing is left of it."""
    spaced = " ".join(raw.split())  # newlines and tabs are spaces between words
    kept = "".join(char for char in spaced if char.isprintable() or char in _JOINERS)
    name = unicodedata.normalize("NFC", kept.strip())
    if shows_nothing(name):
        return ""
    if len(name) > limit:
        return name[:max(limit - 1, 0)].rstrip() + "…"
    return name


def _blank(char: str) -> bool:
    return char in _BLANK_LETTERS or unicodedata.category(char) in _SHOWS_NOTHING


def _ignorable(char: str) -> bool:
    """Characters the skeleton drops: those that show nothing but combining marks (accents
    tell names apart), and the marks that only choose a glyph's variant."""
    return char in _BLANK_LETTERS or char in _VARIANT_MARKS \
        or unicodedata.category(char) in _IGNORED_CATEGORIES


def _escape(char: str) -> str:
    code = ord(char)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named is not None:
        return named
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def counted(number: int, noun: str) -> str:
    """`number` and `noun`, plural but for one: "1 socket closed", "3 sockets"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
