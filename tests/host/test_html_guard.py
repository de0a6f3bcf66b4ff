"""The guard goes first in every HTML document: checked against html5lib, a parser that
follows the WHATWG HTML specification, so that the browser's view is the oracle."""

from __future__ import annotations

from importlib import resources

import html5lib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webxdc_rt.host.html_guard import guard_html, inline_script, insertion_point

GUARD = "<script>window.guarded = 1</script>"


def parse(text: str) -> html5lib.HTMLParser:
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    parser.parse(text)
    return parser


def first_script(text: str) -> tuple[str | None, str]:
    """The text of the first script element of the parsed document, and its quirks mode."""
    parser = parse(text)
    script = parser.tree.getDocument().find(".//script")
    return (None if script is None else script.text), parser.compatMode


def guarded_text(text: str) -> str:
    return guard_html(text.encode("utf-8"), GUARD).body.decode("utf-8")


@pytest.mark.parametrize("document", [
    "<!doctype html><html><head><script>app()</script></head></html>",
    "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"x>y\"><p>text",
    "  \n<!-- a > b --><!doctype html><script>app()</script>",
    "<!--><!doctype html><script>app()</script>",
    "<!---><!doctype html><script>app()</script>",
    "<!-- x --!><!doctype html><script>app()</script>",
    "<?xml version='1.0'?><!doctype html><script>app()</script>",
    "<!bogus><!doctype html><script>app()</script>",
    "</ bogus><!doctype html><script>app()</script>",
    "</><!doctype html>",
    "<script>app()</script>",
    "<html><body><script>app()</script>",
    "no markup at all",
    "",
    "<!-- never closed <script>app()</script>",
    "<!doctype html",
    "<svg><script>app()</script></svg>",
    "</p><!doctype html><script>app()</script>",
])
def test_the_guard_is_the_first_script_and_the_mode_is_kept(document: str):
    script, mode = first_script(guarded_text(document))
    assert script == "window.guarded = 1"
    assert mode == parse(document).compatMode


def test_the_guard_goes_right_after_the_doctype():
    assert guarded_text("<!DOCTYPE html>\n<html><head>") == \
        "<!DOCTYPE html>" + GUARD + "\n<html><head>"
    assert insertion_point("<!-- c --> <!doctype html><p>") == len("<!-- c --> <!doctype html>")
    assert insertion_point(" <p>") == 1


PIECES = st.sampled_from([
    " ", "\n", "\t", "\x0c", "<!--", "-->", "--!>", "-", "!", ">", "<", "<!", "<?", "</",
    "</>", "<!doctype html>", "<!DOCTYPE html PUBLIC '-//W3C//DTD HTML 4.01//EN'>",
    "<!doctype>", "<!DocType", "x", "é", "<p>", "<script>app()</script>", "<html>",
    "<head>", "<body>", "<title>t</title>", "<![CDATA[", "]]>", "&amp;", "\x00", '"', "'",
])


@settings(max_examples=1500, deadline=None)
@given(st.lists(PIECES, max_size=12).map("".join))
def test_any_document_gets_the_guard_first_in_the_same_mode(document: str):
    guarded = guarded_text(document)
    script, mode = first_script(guarded)
    assert script == "window.guarded = 1", guarded
    assert mode == parse(document).compatMode, guarded
    assert guarded.replace(GUARD, "", 1) == document


def test_valid_utf8_is_declared_utf8():
    guarded = guard_html("<!doctype html><p>héllo</p>".encode(), GUARD)
    assert guarded.charset == "utf-8"
    assert guarded.body == f"<!doctype html>{GUARD}<p>héllo</p>".encode()


def test_a_utf8_byte_order_mark_stays_first():
    guarded = guard_html(b"\xef\xbb\xbf<!DOCTYPE html><p>x", GUARD)
    assert guarded.body == b"\xef\xbb\xbf<!DOCTYPE html>" + GUARD.encode() + b"<p>x"
    assert guarded.charset is None  # the BOM decides


@pytest.mark.parametrize("codec, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")])
def test_utf16_with_a_byte_order_mark_is_guarded_in_utf16(codec: str, bom: bytes):
    document = bom + "<!doctype html><p>ünï</p>".encode(codec) + b"\x00"[:1]
    guarded = guard_html(document, GUARD)
    assert guarded.body.startswith(bom)
    assert guarded.body[len(bom):-1].decode(codec) == f"<!doctype html>{GUARD}<p>ünï</p>"
    assert guarded.body[-1:] == b"\x00"  # a truncated last code unit is kept as it was


def test_other_ascii_compatible_encodings_are_guarded_by_their_bytes():
    document = "<!doctype html><meta charset=windows-1252><p>café".encode("cp1252")
    guarded = guard_html(document, GUARD)
    assert guarded.charset is None
    assert guarded.body == b"<!doctype html>" + GUARD.encode() + document[15:]


def test_unclear_bytes_before_the_doctype_put_the_guard_first_of_all():
    # ISO-2022-JP switches to two-byte text with ESC: "-->" in there may not end the comment.
    document = b"<!-- \x1b$B%3%a%s%H\x1b(B --><!doctype html><p>\xff"
    assert guard_html(document, GUARD).body == GUARD.encode() + document
    latin1_comment = b"<!-- caf\xe9 --><!doctype html><p>"
    assert guard_html(latin1_comment, GUARD).body == GUARD.encode() + latin1_comment


def test_the_shipped_guard_is_a_safe_inline_script():
    source = resources.files("webxdc_rt.host").joinpath("static/guard.js").read_text("utf-8")
    element = inline_script(source)
    assert element.startswith("<script>(function webxdcGuard(")
    assert element.endswith("})(window)</script>")
    assert element.isascii()
    script, _ = first_script("<!doctype html>" + element + "<p>after</p>")
    assert script == element[len("<script>"):-len("</script>")]


@pytest.mark.parametrize("source", ["a = '</script>'", "a = '</SCRIPT '", "<!-- x", "// only"])
def test_a_script_that_could_end_early_is_refused(source: str):
    with pytest.raises(ValueError):
        inline_script(source)
