"""Puts the guard first in every `srcdoc` document written in an HTML document's own markup.

A frame the HTML parser makes from the markup, sandboxed without allow-same-origin, starts
its srcdoc document as it is inserted, before the guard's hooks in the page can change the
attribute: so the host changes it in the bytes it serves. Every `srcdoc` attribute of every
start tag gets the guard element prepended to its value (and the value's own markup, a
document in its turn, gets the same treatment, so nested srcdoc is covered).

Finding the attributes follows the HTML tokenizer (data, RCDATA, RAWTEXT, script data,
PLAINTEXT, comments, bogus comments, doctype, CDATA sections and the attribute states), with
as much of tree construction as decides the tokenizer's state: which start tags switch it
(only in HTML content), and whether the current node is foreign (SVG or MathML, where
`<script>` and `<style>` hold markup and `<![CDATA[` opens a CDATA section). Text that only
mentions srcdoc (in a script, a comment, a title) is never changed.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.entities import html5 as _ENTITIES

__all__ = ["guard_srcdocs"]

_SPACE = "\t\n\x0c\r "
_RCDATA = frozenset({"title", "textarea"})
_RAWTEXT = frozenset({"style", "xmp", "iframe", "noembed", "noframes", "noscript"})
# Start tags that end foreign content (the "in foreign content" insertion mode).
_BREAKOUT = frozenset(
    "b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i "
    "img li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt "
    "u ul var".split())
_SVG_HTML_POINTS = frozenset({"foreignobject", "desc", "title"})
_MATHML_TEXT_POINTS = frozenset({"mi", "mo", "mn", "ms", "mtext"})
_NAMED_REF = re.compile(r"&([A-Za-z][A-Za-z0-9]*;?)")
_NUMERIC_REF = re.compile(r"&#(?:[xX][0-9A-Fa-f]+|[0-9]+);?")
_LONGEST_NAME = max(len(name) for name in _ENTITIES)


@dataclass(slots=True)
class _Tag:
    name: str = ""
    end: bool = False
    self_closing: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    srcdoc_span: tuple[int, int] | None = None
    """From the end of the first srcdoc attribute's name to the end of its value."""


def guard_srcdocs(text: str, guard: str) -> str:
    """`text` (an HTML document) with `guard` first in the value of every srcdoc attribute."""
    if "srcdoc" not in text.lower():
        return text
    out: list[str] = []
    done = 0
    for start, end, value in _srcdoc_values(text):
        guarded = guard + guard_srcdocs(value, guard)
        escaped = guarded.replace("&", "&amp;").replace('"', "&quot;")
        out += [text[done:start], '="', escaped, '"']
        done = end
    out.append(text[done:])
    return "".join(out)


def _srcdoc_values(text: str) -> list[tuple[int, int, str]]:
    """(start, end, decoded value) of the first srcdoc attribute of every start tag, from the
    end of its name to the end of its value (quotes included)."""
    found: list[tuple[int, int, str]] = []
    foreign: list[tuple[str, str]] = []  # open SVG/MathML elements, outermost first
    i, n = 0, len(text)
    while i < n:
        i = text.find("<", i)
        if i < 0:
            break
        if text.startswith("<!--", i):
            i = _comment_end(text, i + 4)
        elif text.startswith("<![CDATA[", i) and foreign and foreign[-1][0] != "html":
            i = _past(text, "]]>", i + 9)
        elif text.startswith("<!", i) or text.startswith("<?", i):
            i = _past(text, ">", i + 2)  # a doctype or a bogus comment
        elif text.startswith("</", i) and i + 2 < n and _ascii_alpha(text[i + 2]):
            tag, i = _read_tag(text, i + 2, end=True)
            if tag is not None:
                _close(foreign, tag.name)
        elif text.startswith("</", i):
            i = i + 3 if text.startswith("</>", i) else _past(text, ">", i + 2)
        elif i + 1 < n and _ascii_alpha(text[i + 1]):
            tag, i = _read_tag(text, i + 1, end=False)
            if tag is None:
                break  # a tag cut off by the end of the text is never made
            if tag.srcdoc_span is not None:
                found.append((*tag.srcdoc_span, tag.attributes["srcdoc"]))
            i = _open(foreign, tag, _in_html_content(foreign, tag.name), text, i)
        else:
            i += 1
    return found


def _in_html_content(foreign: list[tuple[str, str]], start_tag: str = "") -> bool:
    """Whether a token (the start tag `start_tag`, or an end tag) is handled as HTML: no
    foreign element open, or the current one is an HTML integration point (or a MathML text
    integration point, for start tags other than mglyph and malignmark)."""
    if not foreign:
        return True
    space, name = foreign[-1]
    return ((space == "svg" and name in _SVG_HTML_POINTS)
            or (space == "math" and name in _MATHML_TEXT_POINTS
                and start_tag not in ("", "mglyph", "malignmark"))
            or space == "html")


def _open(foreign: list[tuple[str, str]], tag: _Tag, html_content: bool, text: str,
          i: int) -> int:
    """Tracks the start tag `tag` read up to `i`; returns where tokenizing goes on."""
    name = tag.name
    if not html_content and (name in _BREAKOUT or (name == "font" and (
            {"color", "face", "size"} & tag.attributes.keys()))):
        foreign.clear()
        html_content = True
    if html_content:
        if name in ("svg", "math"):
            if not tag.self_closing:
                foreign.append((name, name))
            return i
        if foreign and not tag.self_closing and name not in _VOID:
            foreign.append(("html", name))  # inside an integration point
        return _skip_text(text, i, name)
    if not tag.self_closing:
        space = foreign[-1][0] if foreign[-1][0] != "html" else "svg"
        if space == "math" and name == "annotation-xml" and _ascii_lower(tag.attributes.get(
                "encoding", "")) in ("text/html", "application/xhtml+xml"):
            foreign.append(("svg", "foreignobject"))  # the same: an HTML integration point
        else:
            foreign.append((space, name))
    return i


_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


def _close(foreign: list[tuple[str, str]], name: str) -> None:
    """An end tag: closes the innermost open element of that name (and those in it)."""
    if name in ("br", "p") and foreign and not _in_html_content(foreign, ""):
        foreign.clear()
        return
    for depth in range(len(foreign) - 1, -1, -1):
        if foreign[depth][1] == name:
            del foreign[depth:]
            return


def _skip_text(text: str, i: int, name: str) -> int:
    """Past the text of an HTML element whose start tag switches the tokenizer's state."""
    if name == "plaintext":
        return len(text)
    if name in _RCDATA or name in _RAWTEXT:
        return _end_tag_at(text, i, name)
    if name == "script":
        return _script_end(text, i)
    return i


def _end_tag_at(text: str, i: int, name: str) -> int:
    """Where the appropriate end tag `</name` (followed by space, / or >) starts, or the end."""
    end_tag = re.compile(f"</{name}[\t\n\x0c\r />]", re.I | re.A)
    found = end_tag.search(text, i)
    return len(text) if found is None else found.start()


# re.A: the tokenizer folds ASCII letters only (re.I alone would match K to the Kelvin sign).
_SCRIPT_MARKS = re.compile(r"<!--(-*>)?|-->|</script[\t\n\x0c\r />]|<script[\t\n\x0c\r />]",
                           re.I | re.A)


def _script_end(text: str, i: int) -> int:
    """Where the script data starting at `i` ends: the script data states, escaped and
    double escaped (`<!--` then `<script` inside it hides a `</script>`)."""
    escaped = double = False
    for match in _SCRIPT_MARKS.finditer(text, i):
        mark = _ascii_lower(match.group())
        if mark.startswith("<!--") and match.group(1) is None:
            escaped = True
        elif mark.startswith("<!--") or mark == "-->":  # `<!-->` opens and closes at once
            escaped = double = False
        elif mark.startswith("<script"):
            double = double or escaped
        elif double:
            double = False  # `</script` ends the double escape, not the element
        else:
            return match.start()
    return len(text)


def _read_tag(text: str, i: int, *, end: bool) -> tuple[_Tag | None, int]:
    """The tag whose name starts at `i` and the index after its `>`; None at the end."""
    tag = _Tag(end=end)
    n = len(text)
    j = i
    while j < n and text[j] not in _SPACE and text[j] not in "/>":
        j += 1
    tag.name = _ascii_lower(text[i:j]).replace("\0", "\ufffd")
    while True:
        while j < n and text[j] in _SPACE:
            j += 1
        if j >= n:
            return None, n
        if text[j] == ">":
            return tag, j + 1
        if text[j] == "/":
            if j + 1 < n and text[j + 1] == ">":
                tag.self_closing = True
                return tag, j + 2
            j += 1
            continue
        j = _read_attribute(text, j, tag)


def _read_attribute(text: str, j: int, tag: _Tag) -> int:
    """Reads the attribute starting at `j` (its name may begin with `=`) into `tag`."""
    n = len(text)
    start = j
    j += 1  # a first `=` is part of the name
    while j < n and text[j] not in _SPACE and text[j] not in "/>=":
        j += 1
    name = _ascii_lower(text[start:j]).replace("\0", "\ufffd")
    name_end = k = j
    while k < n and text[k] in _SPACE:
        k += 1
    value, span = "", None
    if k < n and text[k] == "=":
        k += 1
        while k < n and text[k] in _SPACE:
            k += 1
        if k < n and text[k] in "\"'":
            close = text.find(text[k], k + 1)
            stop = n if close < 0 else close + 1
            value, span, j = text[k + 1:close if close >= 0 else n], (name_end, stop), stop
        elif k < n and text[k] != ">":
            stop = k
            while stop < n and text[stop] not in _SPACE and text[stop] != ">":
                stop += 1
            value, span, j = text[k:stop], (name_end, stop), stop
        else:
            j = k
    if name not in tag.attributes:  # a repeated attribute is dropped
        tag.attributes[name] = _decode_attribute(value)
        if name == "srcdoc" and not tag.end:
            tag.srcdoc_span = span if span is not None else (name_end, name_end)
    return j


def _decode_attribute(value: str) -> str:
    """An attribute value as the tokenizer makes it: newlines normalized, NUL replaced,
    character references decoded (a legacy one without `;` stays when `=` or an
    alphanumeric follows, as in attribute values)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    if "&" not in value:
        return value
    out: list[str] = []
    i = 0
    while (amp := value.find("&", i)) >= 0:
        out.append(value[i:amp])
        numeric = _NUMERIC_REF.match(value, amp)
        if numeric:
            out.append(html.unescape(numeric.group()))
            i = numeric.end()
            continue
        named = _NAMED_REF.match(value, amp)
        decoded, length = _named_reference(value, amp, named.group(1) if named else "")
        out.append(decoded)
        i = amp + length
    out.append(value[i:])
    return "".join(out)


def _named_reference(value: str, amp: int, candidate: str) -> tuple[str, int]:
    """The text a named reference at `amp` decodes to, and how many characters it spans."""
    for size in range(min(len(candidate), _LONGEST_NAME), 0, -1):
        name = candidate[:size]
        if name in _ENTITIES:
            after = amp + 1 + size
            if not name.endswith(";") and after < len(value) and (
                    value[after] == "=" or value[after].isascii() and value[after].isalnum()):
                return "&", 1
            return _ENTITIES[name], 1 + size
    return "&", 1


def _comment_end(text: str, start: int) -> int:
    """Index after the comment whose `<!--` ends at `start` (the end of the text if none)."""
    if text.startswith(">", start):
        return start + 1
    if text.startswith("->", start):
        return start + 2
    ends = [found + len(closer) for closer in ("-->", "--!>")
            if (found := text.find(closer, start)) >= 0]
    return min(ends) if ends else len(text)


def _past(text: str, closer: str, start: int) -> int:
    found = text.find(closer, start)
    return len(text) if found < 0 else found + len(closer)


def _ascii_lower(text: str) -> str:
    """Lower case as the tokenizer has it: ASCII letters only."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_alpha(char: str) -> bool:
    return char.isascii() and char.isalpha()
