"""Chats, their members, the app copies shared into them, and each member's page of each copy.

A *page* is one member's view of one shared app copy: it has its own origin label (so the
browser isolates its storage), its own secret invite token (the only way in, R14) and its
own `selfAddr`. The realtime channel of a page is the one of its app copy, named by
`SharedApp.topic`, so members of one copy share a channel and nobody else can reach it.

No I/O here: the registry lives in memory; persistence is the store's job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

__all__ = ["MAX_NAME_LENGTH", "Member", "Chat", "SharedApp", "Page", "Registry", "parse_members"]

MAX_NAME_LENGTH = 64
"""Longest member display name accepted, in characters."""


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
class Page:
    """One member's page of one shared app copy."""

    label: str
    token: str
    app: SharedApp
    member: Member
    self_addr: str

    def token_matches(self, candidate: str) -> bool:
        """Compare a presented token with this page's in constant time. Any text may be
        presented: header bytes that were not UTF-8 arrive as lone surrogates, and
        `surrogatepass` turns every such string into bytes (that never match a token)."""
        return hmac.compare_digest(self.token.encode(),
                                   candidate.encode("utf-8", "surrogatepass"))


def parse_members(spec: str) -> list[str]:
    """Split a comma-separated member list, rejecting empty, duplicate or overlong names."""
    names = [part.strip() for part in spec.split(",")]
    if not spec.strip() or any(not name for name in names):
        raise ValueError("member names must be non-empty, separated by commas")
    for name in names:
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"member name {name[:20]!r}... is longer than {MAX_NAME_LENGTH}")
        if not name.isprintable():
            raise ValueError(f"member name {name!r} contains control characters")
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            raise ValueError(f"member {name!r} is listed twice")
        seen.add(name.casefold())
    return names


def _random_label() -> str:
    # 80 random bits as 16 lowercase base32 characters: a valid DNS label, hard to guess.
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


class Registry:
    """All chats, shared apps and pages of one host, looked up by page label."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or self.new_secret()
        self.chats: dict[str, Chat] = {}
        self.apps: dict[str, SharedApp] = {}
        self._pages: dict[str, Page] = {}

    def create_chat(self, name: str, member_names: list[str]) -> Chat:
        """Create a chat whose members are `member_names` (display names, in order)."""
        if not member_names:
            raise ValueError("a chat needs at least one member")
        chat = Chat(self._new_id("chat"), name)
        chat.members = [Member(f"m{index}", member) for index, member in
                        enumerate(member_names, 1)]
        self.chats[chat.id] = chat
        return chat

    @staticmethod
    def new_secret() -> bytes:
        """A fresh host secret (the key of every `selfAddr`)."""
        return secrets.token_bytes(32)

    def share_app(self, chat: Chat, app_name: str, key: str = "") -> list[Page]:
        """Share a new copy of an app into `chat`, by its first member; return one page per
        member."""
        app = SharedApp(self._new_id("app"), chat.id, app_name, key, chat.members[0].id)
        self.apps[app.id] = app
        pages = [self._new_page(app, member) for member in chat.members]
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

    # -- loading what a store kept -----------------------------------------------------

    def add_chat(self, chat: Chat) -> None:
        """Register a chat loaded from storage."""
        self.chats[chat.id] = chat

    def add_app(self, app: SharedApp) -> None:
        """Register an app copy loaded from storage."""
        self.apps[app.id] = app

    def add_page(self, label: str, token: str, app_id: str, member_id: str) -> None:
        """Register a page loaded from storage."""
        app = self.apps[app_id]
        member = next(m for m in self.chats[app.chat_id].members if m.id == member_id)
        self._pages[label] = Page(label, token, app, member, self.self_addr(app, member))

    def page(self, label: str) -> Page | None:
        """The page served under this origin label, if any."""
        return self._pages.get(label)

    def pages_of(self, app: SharedApp) -> list[Page]:
        """Every member's page of one app copy, in member order."""
        return [page for page in self._pages.values() if page.app == app]

    def self_addr(self, app: SharedApp, member: Member) -> str:
        """A member's address in one app copy: stable, unlinkable across copies, no e-mail."""
        digest = hmac.new(self._secret, f"{app.chat_id}/{app.id}/{member.id}".encode(),
                          hashlib.sha256).hexdigest()
        return digest[:32]

    def _new_page(self, app: SharedApp, member: Member) -> Page:
        label = _random_label()
        while label in self._pages:
            label = _random_label()
        page = Page(label, secrets.token_urlsafe(32), app, member, self.self_addr(app, member))
        self._pages[label] = page
        return page

    @staticmethod
    def _new_id(kind: str) -> str:
        # Random, not counted: topics must not collide between host processes that share
        # one broker.
        return f"{kind}-{secrets.token_hex(8)}"
