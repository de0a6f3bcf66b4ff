"""Puts the host's guard script first in every HTML document it serves, before any script of
the app can run (the guard takes WebRTC away; see `static/guard.js`).

The guard goes right after the doctype when there is one (before it, the doctype would be
ignored and the page would fall into quirks mode), else after the whitespace and comments
that open the document. Finding that point needs only the first tokens of the HTML
tokenizer's "initial" insertion mode, which this module follows to the letter: whitespace,
comments (with their abrupt and `--!>` endings), bogus comments (`<?...>`, `<!...>`,
`</...>`), and the doctype, which ends at the first `>`.

Encodings: a byte order mark decides, as it does in browsers (UTF-16 is decoded, guarded and
encoded again). Without one, a document that is valid UTF-8 is guarded and declared UTF-8,
so that moving a `<meta charset>` further from the start cannot change how browsers decode
it. Any other document is decoded by browsers with an ASCII-compatible encoding, in which
the guard (plain ASCII) can be found by its bytes; if the bytes before the insertion point
are not plain ASCII (ISO-2022-JP switches with ESC, so even `-->` could mean something else
there), the guard goes first of all: the page may then render in quirks mode, but no script
of the app runs before the guard.

The guard also goes first in every `srcdoc` document written in the markup (`srcdoc_guard`).

No I/O: the server reads the guard once and passes it in.
"""

from __future__ import annotations

from dataclasses import dataclass

from .srcdoc_guard import guard_srcdocs

__all__ = ["GuardedHtml", "guard_html", "inline_script", "insertion_point"]

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
_SPACE = "\t\n\x0c\r "
_ESC = 0x1B


@dataclass(frozen=True, slots=True)
class GuardedHtml:
    """An HTML document with the guard inserted, and how to declare its encoding."""

    body: bytes
    """The document's bytes with the guard in place."""
    charset: str | None
    """Charset for the Content-Type header, or None to leave it to the browser."""


def inline_script(source: str) -> str:
    """The guard's source as an inline `<script>` element, without its leading comment lines.

    Refuses a source holding `</script` (it would end the element early) or `<!--` (it
    changes how the rest of the element is tokenized), since either would leave a page
    unguarded.
    """
    lines = source.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("//")):
        lines.pop(0)
    body = "\n".join(lines).strip()
    lowered = body.lower()
    if not body or "</script" in lowered or "<!--" in body:
        raise ValueError("the guard script must be non-empty and hold no '</script' or '<!--'")
    return f"<script>{body}</script>"


def guard_html(document: bytes, script_element: str) -> GuardedHtml:
    """`document` with `script_element` (ASCII, from `inline_script`) as its first script,
    and as the first script of every srcdoc document written in it (`srcdoc_guard`)."""
    if document.startswith(UTF8_BOM):
        text = document[len(UTF8_BOM):].decode("utf-8", "surrogateescape")
        guarded = guard_srcdocs(text, script_element)
        return GuardedHtml(_insert(UTF8_BOM + guarded.encode("utf-8", "surrogateescape"),
                                   len(UTF8_BOM), script_element.encode("ascii")), None)
    for bom, codec in UTF16_BOMS.items():
        if document.startswith(bom):
            return GuardedHtml(_insert_utf16(document, bom, codec, script_element), None)
    try:
        text = document.decode("utf-8")
    except UnicodeDecodeError:
        # One character per byte: offsets are byte offsets, and bytes outside ASCII pass
        # through as they were (a character a reference decodes to goes back as one).
        legacy = guard_srcdocs(document.decode("latin-1"), script_element)
        document = legacy.encode("latin-1", "xmlcharrefreplace")
        point = insertion_point(document.decode("latin-1"))
        prefix = document[:point]
        if not prefix.isascii() or _ESC in prefix or 0 in prefix:
            point = 0
        return GuardedHtml(document[:point] + script_element.encode("ascii") + document[point:],
                           None)
    document = guard_srcdocs(text, script_element).encode("utf-8")
    point = insertion_point(document.decode("latin-1"))
    return GuardedHtml(document[:point] + script_element.encode("ascii") + document[point:],
                       "utf-8")


def insertion_point(text: str) -> int:
    """Index in `text` (a decoded document) where the first script of the page belongs: just
    after the doctype, or before the first token that is not whitespace or a comment (a
    comment or doctype that runs to the end of the text counts as such a token: anything
    after it would be part of it)."""
    i, end = 0, len(text)
    while i < end:
        if text[i] in _SPACE:
            i += 1
            continue
        if text.startswith("<!--", i):
            after = _comment_end(text, i + 4)
        elif _ascii_lower(text[i:i + 9]) == "<!doctype":
            after = _past(text, ">", i + 9)
            return i if after < 0 else after
        elif text.startswith("<!", i) or text.startswith("<?", i):
            after = _past(text, ">", i + 2)  # a bogus comment
        elif text.startswith("</>", i):
            after = i + 3  # dropped by the tokenizer
        elif text.startswith("</", i) and i + 2 < end and not _ascii_alpha(text[i + 2]):
            after = _past(text, ">", i + 2)  # a bogus comment; `</x` would be an end tag
        else:
            break
        if after < 0:
            break
        i = after
    return i


def _insert(document: bytes, point_after: int, inserted: bytes) -> bytes:
    rest = document[point_after:]
    point = point_after + insertion_point(rest.decode("latin-1"))
    return document[:point] + inserted + document[point:]


def _insert_utf16(document: bytes, bom: bytes, codec: str, script_element: str) -> bytes:
    body = document[len(bom):]
    odd = body[len(body) - len(body) % 2:]  # a truncated last code unit stays as it was
    text = guard_srcdocs(body[:len(body) - len(odd)].decode(codec, "surrogatepass"),
                         script_element)
    point = insertion_point(text)
    guarded = text[:point] + script_element + text[point:]
    return bom + guarded.encode(codec, "surrogatepass") + odd


def _comment_end(text: str, start: int) -> int:
    """Index after the comment whose `<!--` ends at `start`, or -1 if it never ends."""
    if text.startswith(">", start):
        return start + 1  # `<!-->`
    if text.startswith("->", start):
        return start + 2  # `<!--->`
    ends = [found + len(closer) for closer in ("-->", "--!>")
            if (found := text.find(closer, start)) >= 0]
    return min(ends) if ends else -1


def _past(text: str, char: str, start: int) -> int:
    """Index after the next `char` from `start`, or -1 if there is none."""
    found = text.find(char, start)
    return found + 1 if found >= 0 else -1


def _ascii_lower(chunk: str) -> str:
    return chunk.lower() if chunk.isascii() else chunk


def _ascii_alpha(char: str) -> bool:
    return char.isascii() and char.isalpha()
