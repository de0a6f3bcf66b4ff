"""Changes to the chats of a running host: chats, members, app copies and links, made while
it serves them (for the admin listener, `admin.py`, and the home pages, `home.py`).

Every change is checked first, then kept by the store in one transaction, and only then
made in the registry and the host (which cannot fail): a change that fails leaves nothing
half-done. What a change takes away takes effect at once: the pages of a removed member or
app copy are unknown from then on and every socket of theirs is closed; a revoked link's
pages get new tokens, so the old links and cookies are refused, and their sockets are closed
too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import unicodedata
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..host.app import Host
from ..model.chats import Chat, Member, Registry, SharedApp, check_name, check_unlike
from ..model.names import lookalike_of, same_name
from ..model.sharing import quota_refusal
from ..model.xdc import AppSource, ContainerLimits, InvalidContainer, open_app, open_xdc_bytes
from ..stores.api import StoreApi, StoredApp, StoreError
from .uploads import UploadPolicy

__all__ = ["ManageError", "Manager", "CONTAINER_KEY_PREFIX", "open_container", "stored_sources",
           "read_stored_sources"]

log = logging.getLogger(__name__)

CONTAINER_KEY_PREFIX = "sha256:"
"""The `key` of an app copy served from a stored container, before the container's digest."""


class ManageError(Exception):
    """A change or a question the host cannot answer as asked: `code` is stable, the message
    one line for a person, `status` the HTTP status the admin listener answers with."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Manager:
    """Reads and changes the chats of one running host (see the module docstring)."""

    def __init__(self, host: Host, store: StoreApi,
                 container_limits: ContainerLimits | None = None,
                 uploads: UploadPolicy | None = None) -> None:
        self.host = host
        self.store = store
        self.uploads = uploads or UploadPolicy(None, bool(host.settings.home.member_uploads))
        """Whether members may upload apps, per chat."""
        self.registry: Registry = host.registry
        self.container_limits = container_limits
        self.port = 0
        """The port in links (the public one): set once the host listens."""
        self._uploads = 0

    # -- finding what a request names ----------------------------------------------------
    # A name is looked up among names and an id among ids, never one for the other: a
    # member may be named like another member's id ("m1"), and a command that deletes must
    # not guess which one was meant.

    def chat(self, name: str) -> Chat:
        """The one chat with this name."""
        named = self.registry.chats_named(_normal(name))
        if len(named) == 1:
            return named[0]
        if not named:
            raise ManageError("unknown-chat", f"no chat is named {name!r}", 404)
        raise ManageError("ambiguous-chat", f"{len(named)} chats are named {name!r}; name one "
                          f"by its id (--chat-id): {', '.join(chat.id for chat in named)}",
                          409)

    def chat_by_id(self, chat_id: str) -> Chat:
        """The chat with this id."""
        chat = self.registry.chats.get(chat_id)
        if chat is None:
            raise ManageError("unknown-chat", f"no chat has the id {chat_id!r}", 404)
        return chat

    def member(self, chat: Chat, name: str) -> Member:
        """The member of `chat` with this name, or else the one whose name is this one's but
        for letter case and form."""
        wanted = _normal(name)
        named = [member for member in chat.members if member.name == wanted] \
            or [member for member in chat.members if same_name(member.name, wanted)]
        if len(named) == 1:
            return named[0]
        if not named:
            raise ManageError("unknown-member", f"chat {chat.name!r} has no member {name!r}",
                              404)
        raise ManageError("ambiguous-member", f"{len(named)} members of chat {chat.name!r} "
                          f"are named {name!r}; name one by its id (--id): "
                          f"{', '.join(member.id for member in named)}", 409)

    def member_by_id(self, chat: Chat, member_id: str) -> Member:
        """The member of `chat` with this id."""
        for member in chat.members:
            if member.id == member_id:
                return member
        raise ManageError("unknown-member", f"chat {chat.name!r} has no member with the id "
                          f"{member_id!r}", 404)

    def app(self, chat: Chat, name: str) -> SharedApp:
        """The one app copy of `chat` with this name."""
        named = [app for app in self.registry.apps_of(chat) if app.name == _normal(name)]
        if len(named) == 1:
            return named[0]
        if not named:
            raise ManageError("unknown-app", f"chat {chat.name!r} has no app {name!r}", 404)
        raise ManageError("ambiguous-app", f"{len(named)} copies of {name!r} are shared in "
                          f"chat {chat.name!r}; name one by its id (--id): "
                          f"{', '.join(app.id for app in named)}", 409)

    def app_by_id(self, chat: Chat, app_id: str) -> SharedApp:
        """The app copy of `chat` with this id."""
        app = self.registry.apps.get(app_id)
        if app is None or app.chat_id != chat.id:
            raise ManageError("unknown-app", f"chat {chat.name!r} has no app with the id "
                              f"{app_id!r}", 404)
        return app

    # -- describing ----------------------------------------------------------------------

    def describe_chat(self, chat: Chat) -> dict[str, Any]:
        """A chat as the admin listener shows it."""
        return {"id": chat.id, "name": chat.name,
                "members": [member.name for member in chat.members],
                "member_ids": [member.id for member in chat.members],
                "apps": [self.describe_app(app) for app in self.registry.apps_of(chat)]}

    def describe_app(self, app: SharedApp) -> dict[str, Any]:
        """An app copy as the admin listener shows it; `served` is false when its files
        could not be found or read at start."""
        chat = self.registry.chats.get(app.chat_id)
        sender = next((m.name for m in chat.members if m.id == app.sender), None) \
            if chat is not None else None
        return {"id": app.id, "name": app.name, "shared_by": sender,
                "served": app.id in self.host.sources}

    def links(self, chat: Chat, member: Member) -> dict[str, Any]:
        """A member's links in a chat: the home page, and the page of each app copy."""
        home = self.registry.home_of(chat, member)
        apps = []
        for app in self.registry.apps_of(chat):
            page = self.registry.page_of(app, member)
            if page is not None:
                apps.append({"id": app.id, "name": app.name, "self_addr": page.self_addr,
                             "url": self.host.invite_url(page, self.port)})
        return {"chat": chat.name, "member": member.name, "member_id": member.id,
                "url": None if home is None else self.host.invite_url(home, self.port),
                "apps": apps}

    # -- changes -------------------------------------------------------------------------

    def create_chat(self, name: str, member_names: list[str]) -> Chat:
        """A new chat with these members, each with a home page."""
        name = _checked(name, "chat name")
        other = lookalike_of(name, [chat.name for chat in self.registry.chats.values()])
        if other is not None and same_name(name, other):
            raise ManageError("chat-exists", f"a chat named {other!r} exists already", 409)
        if other is not None:
            raise ManageError("confusable-name", f"chat name {name!r} looks like {other!r}, "
                              "the name of a chat already; choose another", 409)
        names = [_checked(member, "member name") for member in member_names]
        try:
            check_unlike(names)
        except ValueError as exc:
            raise ManageError("bad-name", str(exc)) from None
        chat = self.registry.new_chat(name, names)
        homes = self.registry.new_homes(chat, chat.members)
        with self._storing():
            self.store.create_chat(chat, homes)
        self.registry.add_chat(chat)
        self.registry.add_homes(homes)
        log.info("chat %r created (%s) with %d members", chat.name, chat.id, len(names))
        return chat

    async def delete_chat(self, chat: Chat) -> int:
        """Delete a chat and all in it; return how many sockets were closed."""
        with self._storing():
            self.store.delete_chat(chat.id)
        apps = self.registry.apps_of(chat)
        labels = self.registry.remove_chat(chat)
        for app in apps:
            self.host.sources.pop(app.id, None)
        with contextlib.suppress(OSError):  # a stale choice names no chat: harmless
            self.uploads.forget(chat.id)
        log.info("chat %r deleted (%s)", chat.name, chat.id)
        return await self.host.retire(labels, "the chat was deleted")

    def add_member(self, chat: Chat, name: str) -> Member:
        """A new member of `chat`, with a page of every app copy in it and a home page."""
        name = _checked(name, "member name")
        other = lookalike_of(name, [member.name for member in chat.members])
        if other is not None and same_name(name, other):
            raise ManageError("member-exists", f"chat {chat.name!r} has a member {other!r} "
                              "already", 409)
        if other is not None:
            raise ManageError("confusable-name", f"member name {name!r} looks like {other!r}, "
                              f"a member of chat {chat.name!r} already; choose another", 409)
        member = self.registry.new_member(name)
        pages = [page for app in self.registry.apps_of(chat)
                 for page in self.registry.new_pages(app, [member])]
        home = self.registry.new_homes(chat, [member])[0]
        with self._storing():
            self.store.add_member(chat, member, pages, home)
        chat.members = [*chat.members, member]
        self.registry.add_pages(pages)
        self.registry.add_homes([home])
        log.info("member %r added to chat %r", name, chat.name)
        return member

    async def remove_member(self, chat: Chat, member: Member) -> int:
        """Remove a member with their pages and links; return how many sockets of theirs
        were closed."""
        with self._storing():
            self.store.remove_member(chat, member)
        labels = self.registry.remove_member(chat, member)
        log.info("member %r (%s) removed from chat %r", member.name, member.id, chat.name)
        return await self.host.retire(labels, "removed from the chat")

    async def share(self, chat: Chat, file_name: str, data: bytes,
                    sender: Member | None) -> SharedApp:
        """Share a new copy of the `.xdc` in `data` into `chat`, checked as the command line
        checks one; `sender` shares it (`isAppSender`), by default the first member."""
        limit = self.host.settings.home.max_upload_bytes
        if len(data) > limit:
            raise ManageError("too-large", f"{file_name}: {len(data)} bytes, more than the "
                              f"{limit} allowed", 413)
        if sender is None:
            sender = chat.members[0] if chat.members else None
        self._check_quotas(chat, sender, len(data))  # before the work of checking the app
        digest, source = await asyncio.to_thread(open_container, file_name, data,
                                                  self.container_limits)
        app = self.registry.new_app(chat, source.name, source.key,
                                    sender.id if sender is not None else "")
        pages = self.registry.new_pages(app, chat.members)
        # Again, with nothing awaited until it is stored: another share may have been
        # stored while this one was checked.
        self._check_quotas(chat, sender, len(data))
        with self._storing():
            self.store.save_shared_app(app, pages, (digest, data))
        self.registry.add_app(app)
        self.registry.add_pages(pages)
        self.host.sources[app.id] = self._same_container(source)
        log.info("app %r shared into chat %r (%s)", app.name, chat.name, app.id)
        return app

    async def remove_app(self, chat: Chat, app: SharedApp) -> int:
        """Remove an app copy with its pages and status updates; return how many sockets of
        its pages were closed. Messages it posted to the chat stay."""
        with self._storing():
            self.store.remove_app(app.id)
        labels = self.registry.remove_app(app)
        self.host.sources.pop(app.id, None)
        log.info("app %r removed from chat %r (%s)", app.name, chat.name, app.id)
        return await self.host.retire(labels, "the app was removed from the chat")

    async def revoke_link(self, chat: Chat, member: Member) -> int:
        """New tokens for a member's home page and pages in `chat`: every old link and
        cookie of theirs is refused from now on and their sockets are closed; return how
        many were."""
        pages = [self.registry.with_new_token(page) for app in self.registry.apps_of(chat)
                 if (page := self.registry.page_of(app, member)) is not None]
        home = self.registry.home_of(chat, member)
        homes = [] if home is None else [self.registry.home_with_new_token(home)]
        with self._storing():
            self.store.replace_tokens(pages, homes)
        self.registry.add_pages(pages)
        self.registry.add_homes(homes)
        log.info("links of member %r in chat %r revoked", member.name, chat.name)
        closed = await asyncio.gather(*(self.host.disconnect(label, "link revoked")
                                        for label in [p.label for p in pages + homes]))
        return sum(closed)

    @contextlib.asynccontextmanager
    async def upload_slot(self) -> AsyncIterator[None]:
        """Hold one of the `max_uploads_at_once` slots while an upload is read and checked;
        ManageError (503) when all are taken."""
        if self._uploads >= self.host.settings.home.max_uploads_at_once:
            raise ManageError("busy", "other uploads are being checked; try again shortly",
                              503)
        self._uploads += 1
        try:
            yield
        finally:
            self._uploads -= 1

    # -- at start --------------------------------------------------------------------------

    def ensure_homes(self) -> None:
        """Give every member of every chat a home page (chats made by `serve` have none)."""
        homes = []
        for chat in self.registry.chats.values():
            lacking = [m for m in chat.members if self.registry.home_of(chat, m) is None]
            homes += self.registry.new_homes(chat, lacking)
        if homes:
            with self._storing():
                self.store.add_homes(homes)
            self.registry.add_homes(homes)

    def serve_stored_apps(self) -> list[str]:
        """Serve every stored app copy: from its stored container, or else from the path it
        was shared from. Return a line for each copy that cannot be served (its file gone
        or broken), which stays listed but unserved."""
        sources, problems = stored_sources(self.store, self.registry, self.container_limits)
        self.host.sources.update(sources)
        return problems

    # -- internals -----------------------------------------------------------------------

    def _check_quotas(self, chat: Chat, sender: Member | None, size: int) -> None:
        """Refuse (ManageError) a new app copy of `size` bytes that would take the stored
        apps of `sender`, of `chat` or of the host past their quotas."""
        with self._storing():
            usage = self.store.app_usage(chat.id, sender.id if sender is not None else "")
        refusal = quota_refusal(usage, self.host.settings.home, chat.name,
                                sender.name if sender is not None else None, size)
        if refusal is not None:
            raise ManageError(refusal.code, refusal.message, refusal.status)

    def _same_container(self, source: AppSource) -> AppSource:
        """An app already served from the same container, so that its archive is held in
        memory once however many copies are shared."""
        for served in self.host.sources.values():
            if served.key == source.key:
                return served
        return source

    @contextlib.contextmanager
    def _storing(self) -> Iterator[None]:
        """Turn a failure of the store (a full disk, a damaged database) into a ManageError;
        the store rolled the change back."""
        try:
            yield
        except (StoreError, OSError) as exc:
            log.error("the store failed: %s", exc)
            raise ManageError("storage-failed", f"the host could not store the change: {exc}",
                              500) from None


def open_container(file_name: str, data: bytes,
                   limits: ContainerLimits | None) -> tuple[str, AppSource]:
    """The digest of a `.xdc` and the app in it, checked (run in a thread); ManageError
    (`bad-app`) saying what is wrong with it."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        source = open_xdc_bytes(data, file_name, CONTAINER_KEY_PREFIX + digest, limits)
    except InvalidContainer as exc:
        raise ManageError("bad-app", str(exc)) from None
    return digest, source


def stored_sources(store: StoreApi, registry: Registry, limits: ContainerLimits | None,
                   only: set[str] | None = None) -> tuple[dict[str, AppSource], list[str]]:
    """The app of every stored app copy by its id (one per stored container, however many
    copies share it), or of those whose id is in `only`, and a line for each copy that
    cannot be served. Read as the host starts, before it serves."""
    sources: dict[str, AppSource] = {}
    problems: list[str] = []
    by_digest: dict[str, AppSource] = {}
    for stored, app in _wanted(store.stored_apps(), registry, only):
        known = by_digest.get(stored.digest or "")
        data = store.container(stored.digest) if stored.digest and known is None else None
        _add_source(sources, problems, by_digest, stored, app, known, data, limits)
    return sources, problems


async def read_stored_sources(store: StoreApi, registry: Registry,
                              limits: ContainerLimits | None, only: set[str] | None = None
                              ) -> tuple[dict[str, AppSource], list[str]]:
    """`stored_sources` while the host serves: the store read off the event loop, one
    container at a time, and each app opened (unzipped, checked) on a thread."""
    sources: dict[str, AppSource] = {}
    problems: list[str] = []
    by_digest: dict[str, AppSource] = {}
    for stored, app in _wanted(await store.read_stored_apps(), registry, only):
        known = by_digest.get(stored.digest or "")
        data = (await store.read_container(stored.digest)
                if stored.digest and known is None else None)
        await asyncio.to_thread(_add_source, sources, problems, by_digest, stored, app, known,
                                data, limits)
    return sources, problems


def _wanted(stored_apps: list[StoredApp], registry: Registry,
            only: set[str] | None) -> Iterator[tuple[StoredApp, SharedApp]]:
    """The stored app copies the registry holds (those in `only`, if given), each with its
    app copy."""
    for stored in stored_apps:
        app = registry.apps.get(stored.app_id)
        if app is not None and (only is None or app.id in only):
            yield stored, app


def _add_source(sources: dict[str, AppSource], problems: list[str],
                by_digest: dict[str, AppSource], stored: StoredApp, app: SharedApp,
                known: AppSource | None, data: bytes | None,
                limits: ContainerLimits | None) -> None:
    """Add the app of one stored app copy to `sources` (from `known`, the same container
    opened already, else from `data`, its container's bytes, or else from the path it was
    shared from), or a line to `problems` saying why it cannot be served."""
    try:
        if known is not None:
            source = known
        elif stored.digest is not None:
            if data is None:
                raise InvalidContainer("its stored container is missing")
            source = by_digest[stored.digest] = open_xdc_bytes(
                data, f"{app.name}.xdc", stored.key, limits)
        else:
            source = open_app(stored.key, limits)
    except InvalidContainer as exc:
        problems.append(f"app {app.name!r} ({app.id}) is not served: {exc}")
        return
    sources[app.id] = source


def _normal(name: str) -> str:
    """A name as asked for, in the form names are kept in (NFC, no surrounding blanks)."""
    return unicodedata.normalize("NFC", name.strip())


def _checked(name: Any, what: str) -> str:
    """`name` as a valid name (see `chats.check_name`), else a ManageError."""
    if not isinstance(name, str):
        raise ManageError("bad-name", f"a {what} must be a string")
    try:
        return check_name(name, what)
    except ValueError as exc:
        raise ManageError("bad-name", str(exc)) from None
