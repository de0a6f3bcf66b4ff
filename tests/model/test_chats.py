"""Unit tests of chats, pages, invite tokens and selfAddr."""

from __future__ import annotations

import re

import pytest

from webxdc_rt.model.chats import Registry, parse_members


def test_parse_members_accepts_a_plain_list():
    assert parse_members("alice, bob,Carol Smith") == ["alice", "bob", "Carol Smith"]


@pytest.mark.parametrize("spec, fragment", [
    ("", "non-empty"), ("alice,,bob", "non-empty"), ("alice,Alice", "listed twice"),
    ("x" * 65, "longer than 64"), ("al\x00ice", "control characters"),
])
def test_parse_members_refuses_bad_lists(spec, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_members(spec)


def test_each_member_gets_own_page_label_token_and_addr():
    registry = Registry()
    chat = registry.create_chat("c", ["alice", "bob"])
    pages = registry.share_app(chat, "app")
    assert [p.member.name for p in pages] == ["alice", "bob"]
    assert len({p.label for p in pages}) == 2
    assert len({p.token for p in pages}) == 2
    assert len({p.self_addr for p in pages}) == 2
    for page in pages:
        assert re.fullmatch(r"[a-z2-7]{16}", page.label)  # a DNS label
        assert registry.page(page.label) is page
        assert page.app.topic == pages[0].app.topic
    assert registry.page("unknown") is None


def test_self_addr_is_stable_unlinkable_across_copies_and_not_an_email():
    registry = Registry(secret=b"k" * 32)
    chat = registry.create_chat("c", ["alice"])
    first = registry.share_app(chat, "app")[0]
    second = registry.share_app(chat, "app")[0]
    assert first.app.topic != second.app.topic  # a second copy is a separate channel
    assert first.self_addr != second.self_addr
    assert registry.self_addr(first.app, first.member) == first.self_addr
    assert "@" not in first.self_addr


def test_token_comparison():
    registry = Registry()
    page = registry.share_app(registry.create_chat("c", ["a"]), "app")[0]
    assert page.token_matches(page.token)
    assert not page.token_matches(page.token[:-1])
    assert not page.token_matches("")
    assert registry.pages_of(page.app) == [page]


def test_any_text_may_be_presented_as_a_token():
    registry = Registry()
    page = registry.share_app(registry.create_chat("c", ["a"]), "app")[0]
    # Header bytes that are not UTF-8 arrive surrogate-escaped; lone surrogates in general.
    for candidate in ("\udcff\udcfe", "\ud800", page.token + "\udc80", "\u00ff" * 100, "\x00"):
        assert not page.token_matches(candidate)


def test_chat_needs_members():
    with pytest.raises(ValueError):
        Registry().create_chat("c", [])
