"""Chats, their members, the app copies shared into them, and each member's page of each copy.

A *page* is one member's view of one shared app copy: it has its own origin label (so the
browser isolates its storage), its own secret invite token (the only way in, R14) and its
own `selfAddr`. The realtime channel of a page is the one of its app copy, named by
`SharedApp.topic`, so members of one copy share a channel and nobody else can reach it.
A *home page* is one member's view of one chat (the apps shared into it, its messages), on
an origin of its own with a token of its own, like a page.

No I/O here: the registry lives in memory; persistence is the store's job. Changes to a
running host are made in two steps so that a failed store leaves nothing half-done: the
`new_*` methods make objects without registering them, the store keeps them in one
transaction, and only then the `add_*`/`remove_*` methods change the registry (which cannot
fail).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import TypeVar

from .names import fold, name_problem, skeleton

__all__ = ["MAX_NAME_LENGTH", "Member", "Chat", "SharedApp", "Entrance", "Page", "HomePage",
           "Registry",
           "parse_members", "check_name", "check_unlike"]

MAX_NAME_LENGTH = 64
"""Longest member display name, chat name or app name given by hand, in characters."""


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a chat. `id` is unique within the chat; `name` is shown to others."""

    id: str
    name: str


@dataclass(slots=True)
class Chat:
    """A group of members into which apps are shared."""

    id: str
    name: str
    members: list[Member] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SharedApp:
    """One copy of an app shared into a chat; a second share of the same app is a new copy."""

    id: str
    chat_id: str
    name: str
    key: str = ""
    """What was shared (the app's path or file), to find this copy again after a restart."""
    sender: str = ""
    """The member id of who shared it (`isAppSender`)."""

    @property
    def topic(self) -> str:
        """The realtime channel of this copy: unique per chat and copy (R13)."""
        return f"rt/{self.chat_id}/{self.id}"


@dataclass(frozen=True, slots=True)
class Entrance:
    """What an origin of the host is entered by: its label (`<label>.<domain>`) and its
    secret token."""

    label: str
    token: str

    def token_matches(self, candidate: str) -> bool:
        """Compare a presented token with this one in constant time."""
        return _token_matches(self.token, candidate)


@dataclass(frozen=True, slots=True)
class Page(Entrance):
    """One member's page of one shared app copy."""

    app: SharedApp
    member: Member
    self_addr: str


@dataclass(frozen=True, slots=True)
class HomePage(Entrance):
    """One member's home page of one chat: what was shared into it and posted to it."""

    chat_id: str
    member: Member


def _token_matches(token: str, candidate: str) -> bool:
    """Compare a presented token with the real one in constant time. Any text may be
    presented: header bytes that were not UTF-8 arrive as lone surrogates, and
    `surrogatepass` turns every such string into bytes (that never match a token)."""
    return hmac.compare_digest(token.encode(), candidate.encode("utf-8", "surrogatepass"))


def check_name(name: str, what: str = "member name") -> str:
    """`name` in NFC without surrounding blanks, if it can name a member, chat or app: not
    empty, at most `MAX_NAME_LENGTH` characters, valid text (command-line arguments that are
    not UTF-8 arrive with lone surrogates) without control or formatting characters (but
    the joiners of emoji sequences), showing something (see `names.name_problem`).
    ValueError saying what is wrong."""
    stripped = unicodedata.normalize("NFC", name.strip())
    if not stripped:
        raise ValueError(f"a {what} must not be empty")
    if len(stripped) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} {stripped[:20]!r}... is longer than {MAX_NAME_LENGTH}")
    problem = name_problem(stripped)
    if problem is not None:
        raise ValueError(f"{what} {stripped!r} {problem}")
    return stripped


def parse_members(spec: str) -> list[str]:
    """Split a comma-separated member list into names (see `check_name`), rejecting empty
    ones and names that are the same as, or look like, another in the list."""
    parts = [part.strip() for part in spec.split(",")]
    if not spec.strip() or any(not part for part in parts):
        raise ValueError("member names must be non-empty, separated by commas")
    names = [check_name(part) for part in parts]
    check_unlike(names)
    return names


def check_unlike(names: list[str]) -> None:
    """ValueError when a name of the list is the same as, or looks like, one before it
    (each name is folded once: a list of thousands is checked in milliseconds)."""
    by_fold: dict[str, str] = {}
    by_skeleton: dict[str, str] = {}
    for name in names:
        folded, shape = fold(name), skeleton(name)
        if folded in by_fold:
            raise ValueError(f"member {name!r} is listed twice")
        if shape in by_skeleton:
            raise ValueError(f"member {name!r} looks like {by_skeleton[shape]!r}, listed "
                             "before it")
        by_fold[folded] = by_skeleton[shape] = name


_E = TypeVar("_E", bound=Entrance)


def _same(known: dict[str, Entrance], entrance: _E) -> _E:
    """`entrance`, or the equal one already known under its label."""
    old = known.get(entrance.label)
    if isinstance(old, type(entrance)) and old == entrance:
        return old
    return entrance


def _random_label() -> str:
    # 80 random bits as 16 lowercase base32 characters: a valid DNS label, hard to guess.
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


class Registry:
    """All chats, shared apps, pages and home pages of one host, looked up by origin label."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or self.new_secret()
        self.chats: dict[str, Chat] = {}
        self.apps: dict[str, SharedApp] = {}
        self._pages: dict[str, Page] = {}
        self._pages_by_app: dict[str, dict[str, Page]] = {}
        """Per app copy id, its pages by member id (in the order they were added)."""
        self._homes: dict[str, HomePage] = {}
        self._homes_by_member: dict[tuple[str, str], HomePage] = {}

    def create_chat(self, name: str, member_names: list[str]) -> Chat:
        """Create and register a chat whose members are `member_names` (display names, in
        order)."""
        if not member_names:
            raise ValueError("a chat needs at least one member")
        chat = self.new_chat(name, member_names)
        self.chats[chat.id] = chat
        return chat

    @staticmethod
    def new_secret() -> bytes:
        """A fresh host secret (the key of every `selfAddr`)."""
        return secrets.token_bytes(32)

    def share_app(self, chat: Chat, app_name: str, key: str = "") -> list[Page]:
        """Share and register a new copy of an app into `chat`, by its first member; return
        one page per member."""
        app = self.new_app(chat, app_name, key, chat.members[0].id)
        self.add_app(app)
        pages = self.new_pages(app, chat.members)
        self.add_pages(pages)
        return pages

    def find_chat(self, name: str, member_names: list[str]) -> Chat | None:
        """The chat with this name and exactly these members, if one exists."""
        for chat in self.chats.values():
            if chat.name == name and [m.name for m in chat.members] == member_names:
                return chat
        return None

    def find_app(self, chat: Chat, key: str) -> SharedApp | None:
        """The copy of the app known by `key` shared into `chat`, if any."""
        for app in self.apps.values():
            if app.chat_id == chat.id and app.key == key:
                return app
        return None

    # -- new objects, not registered yet -----------------------------------------------

    def new_chat(self, name: str, member_names: list[str]) -> Chat:
        """A new chat with these members (display names, in order), not registered."""
        chat = Chat(self._new_id("chat"), name)
        chat.members = [Member(f"m{index}", member) for index, member in
                        enumerate(member_names, 1)]
        return chat

    @staticmethod
    def new_member(name: str) -> Member:
        """A new member with an id never used before (a removed member's id is never given
        to anyone else: `selfAddr`s and stored updates name members by id)."""
        return Member(f"m-{secrets.token_hex(6)}", name)

    def new_app(self, chat: Chat, app_name: str, key: str, sender: str) -> SharedApp:
        """A new copy of an app in `chat`, shared by the member `sender`, not registered."""
        return SharedApp(self._new_id("app"), chat.id, app_name, key, sender)

    def new_pages(self, app: SharedApp, members: list[Member]) -> list[Page]:
        """One new page of `app` per member, each with a fresh label and token, not
        registered."""
        taken: set[str] = set()
        return [Page(self._fresh_label(taken), secrets.token_urlsafe(32), app, member,
                     self.self_addr(app, member)) for member in members]

    def new_homes(self, chat: Chat, members: list[Member]) -> list[HomePage]:
        """One new home page of `chat` per member, not registered."""
        taken: set[str] = set()
        return [HomePage(self._fresh_label(taken), secrets.token_urlsafe(32), chat.id, member)
                for member in members]

    def with_new_token(self, page: Page) -> Page:
        """`page` with a fresh token (its old links stop working once it is registered)."""
        return Page(page.label, secrets.token_urlsafe(32), page.app, page.member,
                    page.self_addr)

    @staticmethod
    def home_with_new_token(home: HomePage) -> HomePage:
        """`home` with a fresh token."""
        return HomePage(home.label, secrets.token_urlsafe(32), home.chat_id, home.member)

    # -- registering and forgetting ------------------------------------------------------

    def add_chat(self, chat: Chat) -> None:
        """Register a chat (new, or loaded from storage)."""
        self.chats[chat.id] = chat

    def add_app(self, app: SharedApp) -> None:
        """Register an app copy (new, or loaded from storage)."""
        self.apps[app.id] = app

    def add_page(self, label: str, token: str, app_id: str, member_id: str) -> None:
        """Register a page loaded from storage."""
        app = self.apps[app_id]
        member = next(m for m in self.chats[app.chat_id].members if m.id == member_id)
        self.add_pages([Page(label, token, app, member, self.self_addr(app, member))])

    def add_pages(self, pages: list[Page]) -> None:
        """Register pages, replacing any of the same label (a page with a new token)."""
        for page in pages:
            self._pages[page.label] = page
            self._pages_by_app.setdefault(page.app.id, {})[page.member.id] = page

    def add_homes(self, homes: list[HomePage]) -> None:
        """Register home pages, replacing any of the same label."""
        for home in homes:
            self._homes[home.label] = home
            self._homes_by_member[(home.chat_id, home.member.id)] = home

    def remove_member(self, chat: Chat, member: Member) -> list[str]:
        """Forget a member of a chat with their pages and home page; return the labels
        they had."""
        chat.members = [m for m in chat.members if m.id != member.id]
        labels = []
        for app in self.apps_of(chat):
            page = self._pages_by_app.get(app.id, {}).pop(member.id, None)
            if page is not None:
                del self._pages[page.label]
                labels.append(page.label)
        home = self._homes_by_member.pop((chat.id, member.id), None)
        if home is not None:
            del self._homes[home.label]
            labels.append(home.label)
        return labels

    def remove_app(self, app: SharedApp) -> list[str]:
        """Forget an app copy and its pages; return the labels of its pages."""
        self.apps.pop(app.id, None)
        pages = self._pages_by_app.pop(app.id, {})
        for page in pages.values():
            del self._pages[page.label]
        return [page.label for page in pages.values()]

    def remove_chat(self, chat: Chat) -> list[str]:
        """Forget a chat, its app copies, pages and home pages; return all their labels."""
        labels = []
        for app in self.apps_of(chat):
            labels += self.remove_app(app)
        for member in list(chat.members):
            labels += self.remove_member(chat, member)
        del self.chats[chat.id]
        return labels

    def adopt_chat(self, stored: Registry, chat_id: str) -> list[str]:
        """Make the chat `chat_id` here what it is in `stored` (read from the store, which
        holds the truth; without that chat when it is gone): its name, members, app copies,
        pages and home pages. Return the labels of the pages and home pages that are gone or
        whose token changed: their sockets must be closed. What did not change stays the
        same object (the `Chat` always does), so that whoever holds one sees it current."""
        before = self._entrances_of(chat_id)
        chat = self.chats.get(chat_id)
        if chat is not None:
            self.remove_chat(chat)
        fresh = stored.chats.get(chat_id)
        if fresh is not None:
            if chat is None:
                chat = Chat(fresh.id, fresh.name)
            chat.name, chat.members = fresh.name, list(fresh.members)
            self.add_chat(chat)
            for app in stored.apps_of(fresh):
                self.add_app(app)
                self.add_pages([_same(before, page) for page in stored.pages_of(app)])
            self.add_homes([_same(before, home) for member in fresh.members
                            if (home := stored.home_of(fresh, member)) is not None])
        after = self._entrances_of(chat_id)
        return [label for label, entrance in before.items()
                if after.get(label) is not entrance]

    def _entrances_of(self, chat_id: str) -> dict[str, Entrance]:
        """Every page and home page of a chat, by label."""
        chat = self.chats.get(chat_id)
        if chat is None:
            return {}
        found: dict[str, Entrance] = {page.label: page for app in self.apps_of(chat)
                                      for page in self.pages_of(app)}
        found.update((home.label, home) for member in chat.members
                     if (home := self.home_of(chat, member)) is not None)
        return found

    # -- looking up ------------------------------------------------------------------------

    def page(self, label: str) -> Page | None:
        """The page served under this origin label, if any."""
        return self._pages.get(label)

    def home(self, label: str) -> HomePage | None:
        """The home page served under this origin label, if any."""
        return self._homes.get(label)

    def home_of(self, chat: Chat, member: Member) -> HomePage | None:
        """A member's home page of a chat, if it has one."""
        return self._homes_by_member.get((chat.id, member.id))

    def pages_of(self, app: SharedApp) -> list[Page]:
        """Every member's page of one app copy, in the order they were added."""
        return list(self._pages_by_app.get(app.id, {}).values())

    def page_of(self, app: SharedApp, member: Member) -> Page | None:
        """A member's page of one app copy, if they have one."""
        return self._pages_by_app.get(app.id, {}).get(member.id)

    def apps_of(self, chat: Chat) -> list[SharedApp]:
        """The app copies shared into a chat, oldest first."""
        return [app for app in self.apps.values() if app.chat_id == chat.id]

    def chats_named(self, name: str) -> list[Chat]:
        """The chats called `name` (names need not be unique: `serve` makes a chat per
        member list)."""
        return [chat for chat in self.chats.values() if chat.name == name]

    def self_addr(self, app: SharedApp, member: Member) -> str:
        """A member's address in one app copy: stable, unlinkable across copies, no e-mail."""
        digest = hmac.new(self._secret, f"{app.chat_id}/{app.id}/{member.id}".encode(),
                          hashlib.sha256).hexdigest()
        return digest[:32]

    def _fresh_label(self, taken: set[str]) -> str:
        """A label no page or home page has, nor any in `taken` (to which it is added)."""
        label = _random_label()
        while label in self._pages or label in self._homes or label in taken:
            label = _random_label()
        taken.add(label)
        return label

    @staticmethod
    def _new_id(kind: str) -> str:
        # Random, not counted: topics must not collide between host processes that share
        # one broker.
        return f"{kind}-{secrets.token_hex(8)}"
