"""Unit tests of chats, pages, invite tokens and selfAddr."""

from __future__ import annotations

import re

import pytest

from webxdc_rt.model.chats import Chat, HomePage, Registry, parse_members


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


def _copy_of(registry: Registry, secret: bytes) -> Registry:
    """What a store holding `registry` would read back: equal objects, not the same ones."""
    stored = Registry(secret)
    for chat in registry.chats.values():
        stored.add_chat(Chat(chat.id, chat.name, list(chat.members)))
        for member in chat.members:
            home = registry.home_of(chat, member)
            if home is not None:
                stored.add_homes([HomePage(home.label, home.token, home.chat_id, member)])
    for app in registry.apps.values():
        stored.add_app(app)
        for page in registry.pages_of(app):
            stored.add_page(page.label, page.token, app.id, page.member.id)
    return stored


def test_adopting_a_stored_chat_reports_the_pages_gone_or_revoked_and_keeps_the_rest():
    secret = Registry.new_secret()
    here = Registry(secret)
    chat = here.create_chat("team", ["alice", "bob", "carol"])
    pages = here.share_app(chat, "app")
    here.add_homes(here.new_homes(chat, chat.members))
    alice, bob, carol = chat.members
    # Another process revoked bob's links, removed carol and shared a second app.
    stored = _copy_of(here, secret)
    stored_chat = stored.chats[chat.id]
    stored.add_pages([stored.with_new_token(stored.page_of(stored.apps[pages[0].app.id],
                                                           bob))])
    gone = stored.remove_member(stored_chat, carol)
    second = stored.share_app(stored_chat, "second")
    untouched = here.page_of(pages[0].app, alice)

    stale = here.adopt_chat(stored, chat.id)

    assert sorted(stale) == sorted([pages[1].label, *gone])
    assert here.chats[chat.id] is chat and [m.name for m in chat.members] == ["alice", "bob"]
    assert here.page_of(pages[0].app, alice) is untouched  # the same object: unchanged
    assert here.page(pages[1].label).token != pages[1].token
    assert here.page(pages[2].label) is None and here.home_of(chat, carol) is None
    assert [page.label for page in here.pages_of(second[0].app)] == \
        [page.label for page in second]
    assert here.adopt_chat(stored, chat.id) == []  # read back again: nothing changes


def test_adopting_a_chat_the_store_no_longer_holds_forgets_it_and_all_its_pages():
    here = Registry()
    chat = here.create_chat("team", ["alice"])
    pages = here.share_app(chat, "app")
    homes = here.new_homes(chat, chat.members)
    here.add_homes(homes)
    stale = here.adopt_chat(Registry(), chat.id)
    assert sorted(stale) == sorted([pages[0].label, homes[0].label])
    assert chat.id not in here.chats and here.page(pages[0].label) is None
    assert here.adopt_chat(Registry(), "chat-unknown") == []
