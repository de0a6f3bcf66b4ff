"""A member's home page of a chat: the apps shared into it, the messages apps posted to it,
the notifications addressed to the member, and a form to share a `.xdc` into it.

Each home page is an origin of its own (`<label>.<domain>`), entered by its invite link like
an app page (a host-only cookie, or `Authorization: Bearer` for programs), with the same
security headers. The page itself is plain HTML, CSS and JavaScript from `static/`
(`home.html`, `home.css`, `home.js`); it reads what to show from `/.webxdc-rt/home/state`
(JSON), polling every `HomeLimits.poll_interval_s`. Each app opens on its own page origin
through the member's invite link of that page. An upload is read with a bound
(`HomeLimits.max_upload_bytes`, at most `max_uploads_at_once` at a time) and checked as the
command line checks an app (`manage.Manager.share`).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from aiohttp.typedefs import Handler

from ..host import http_guard
from ..host.routing import HOST_PREFIX, invite_response, same_origin
from ..model.chats import Chat, HomePage
from ..model.sharing import upload_name
from .manage import ManageError, Manager

__all__ = ["HomeSite", "STATE_PATH", "SHARE_PATH"]

STATE_PATH = HOST_PREFIX + "/home/state"
"""What the home page shows, as JSON."""
SHARE_PATH = HOST_PREFIX + "/home/share"
"""Where the home page uploads a `.xdc` to share (POST, the file as the body, its name
URL-encoded in `X-File-Name`)."""
_ICON_PREFIX = HOST_PREFIX + "/home/icon/"
_FILE_PREFIX = HOST_PREFIX + "/home/file/"
_INVITE_PREFIX = HOST_PREFIX + "/invite/"
_STATIC = {"/": ("home.html", "text/html"), "/home.js": ("home.js", "text/javascript"),
           "/home.css": ("home.css", "text/css")}
"""The page's own files, by path."""


class HomeSite:
    """Serves the home pages of a host (mount `resolve` on the `Host`)."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        files = resources.files("webxdc_rt.service").joinpath("static")
        self._static = {path: (files.joinpath(name).read_bytes(), content_type)
                        for path, (name, content_type) in _STATIC.items()}

    def resolve(self, label: str) -> Handler | None:
        """The handler of the home page with this label, if there is one."""
        home = self.manager.registry.home(label)
        if home is None:
            return None
        return functools.partial(self._handle, home=home)

    async def _handle(self, request: web.Request, home: HomePage) -> web.StreamResponse:
        path = request.path
        if path.startswith(_INVITE_PREFIX):
            if not home.token_matches(path[len(_INVITE_PREFIX):]):
                return _refusal(403, "This invite link is not valid.")
            http_guard.admit(request, home.label)
            return invite_response(request, home.token,
                                   self.manager.host.settings.scheme == "https")
        if not self.manager.host.presents(request, home):
            return _refusal(403, "This page needs its invite link: open the link you were "
                                 "given.")
        http_guard.admit(request, home.label)
        chat = self.manager.registry.chats[home.chat_id]
        if request.method == "POST" and path == SHARE_PATH:
            return await self._share(request, home, chat)
        if request.method not in ("GET", "HEAD"):
            return _text(405, "Method not allowed.")
        if path in self._static:
            body, content_type = self._static[path]
            return web.Response(body=body, content_type=content_type,
                                headers={"Cache-Control": "no-cache"})
        if path == STATE_PATH:
            return web.json_response(await self._state(home, chat),
                                     headers={"Cache-Control": "no-store"})
        if path.startswith(_ICON_PREFIX):
            return self._icon(chat, path[len(_ICON_PREFIX):])
        if path.startswith(_FILE_PREFIX):
            return await self._file(chat, path[len(_FILE_PREFIX):])
        if path == "/favicon.ico":
            return web.Response(status=204)
        return _text(404, f"Not a file of this page: {path}")

    # -- what the page shows -------------------------------------------------------------

    async def _state(self, home: HomePage, chat: Chat) -> dict[str, Any]:
        manager = self.manager
        registry, settings = manager.registry, manager.host.settings
        members = {member.id: member.name for member in chat.members}
        apps, addresses, names = [], {}, {}
        for app in registry.apps_of(chat):
            names[app.id] = app.name
            page = registry.page_of(app, home.member)
            source = manager.host.sources.get(app.id)
            if page is None or source is None:
                continue
            addresses[app.id] = page.self_addr
            apps.append({"id": app.id, "name": app.name,
                         "shared_by": members.get(app.sender),
                         "icon": _ICON_PREFIX + app.id if source.icon else None,
                         "url": manager.host.invite_url(page, manager.port)})
        messages = await manager.store.read_message_summaries(
            chat.id, settings.chat.max_listed, settings.chat.max_listed_bytes)
        notifications = await manager.store.read_notifications(
            home.member.id, addresses, settings.home.max_listed_notifications)
        return {
            "chat": chat.name, "member": home.member.name,
            "poll_interval_ms": round(settings.home.poll_interval_s * 1000),
            "max_upload_bytes": settings.home.max_upload_bytes,
            "uploads": manager.uploads.allowed(chat.id),
            "apps": apps,
            "messages": [{
                "id": message.id, "app": names.get(message.app_id), "member": message.member,
                "text": message.text, "time": message.created,
                "file": None if message.file_size is None else {
                    "name": message.file_name or "file", "size": message.file_size,
                    "url": f"{_FILE_PREFIX}{message.id}"},
            } for message in messages],
            "notifications": [{
                "serial": note.serial, "app": names.get(note.app_id), "text": note.text,
                "from": members.get(note.member_id), "time": note.created,
            } for note in notifications],
        }

    def _icon(self, chat: Chat, app_id: str) -> web.StreamResponse:
        app = self.manager.registry.apps.get(app_id)
        source = self.manager.host.sources.get(app_id)
        if app is None or app.chat_id != chat.id or source is None or not source.icon:
            return _text(404, "No such icon.")
        data = source.read(source.icon)
        if data is None:
            return _text(404, "No such icon.")
        content_type = "image/png" if source.icon.endswith(".png") else "image/jpeg"
        return web.Response(body=data, content_type=content_type,
                            headers={"Cache-Control": "no-cache"})

    async def _file(self, chat: Chat, message_id: str) -> web.StreamResponse:
        found = (await self.manager.store.read_message_file(chat.id, int(message_id))
                 if message_id.isascii() and message_id.isdigit() and len(message_id) < 19
                 else None)
        if found is None:
            return _text(404, "No such file.")
        name, data = found
        # Always a download, never shown in the page's origin: whatever an app posted.
        return web.Response(body=data, content_type="application/octet-stream", headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(upload_name(name))}",
            "Cache-Control": "no-store"})

    # -- sharing an app ------------------------------------------------------------------

    async def _share(self, request: web.Request, home: HomePage,
                     chat: Chat) -> web.StreamResponse:
        manager = self.manager
        if request.headers.get("Origin") is None or not same_origin(request):
            return _error(ManageError("cross-origin", "uploads come from the home page "
                                      "itself", 403))
        limit = manager.host.settings.home.max_upload_bytes
        try:
            if not manager.uploads.allowed(chat.id):
                raise ManageError("uploads-off", "members may not share apps into this "
                                  "chat; an operator can (webxdc-rt app share)", 403)
            async with manager.upload_slot():
                data = await _read_body(request, limit)
                name = upload_name(unquote(request.headers.get("X-File-Name", ""),
                                           errors="replace"))
                if manager.registry.home(home.label) is not home:
                    raise ManageError("gone", "this home page no longer exists", 404)
                app = await manager.share(chat, name, data, home.member)
        except ManageError as exc:
            return _error(exc)
        return web.json_response({"app": manager.describe_app(app)}, status=201)


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request's body, refused (413) past `limit` bytes before more is read."""
    too_large = ManageError("too-large", f"the app is larger than the {limit} bytes allowed",
                            413)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    while chunk := await request.content.read(256 * 1024):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _error(exc: ManageError) -> web.Response:
    response = web.json_response({"error": {"code": exc.code, "message": str(exc)}},
                                 status=exc.status)
    if exc.status == 413:
        response.force_close()  # the rest of the body is not read
    return response


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


def _refusal(status: int, message: str) -> web.Response:
    response = _text(status, message)
    response.force_close()
    return response
