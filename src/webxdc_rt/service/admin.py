"""The admin listener: how `webxdc-rt chat|member|app|link ...` change a running host, and
where Prometheus reads `/metrics`.

It is never the public listener: an aiohttp application of its own on a Unix socket in the
data folder (`admin.sock`, mode 0600: only the user running the host may connect), so no
page, member or network client can reach it. Each command is `POST /v1/<noun>/<verb>` with
a JSON object and is answered with a JSON object; a refusal is `{"error": {"code",
"message"}}` with a 4xx or 5xx status. Requests are checked like any other input: bounded
in size, strict JSON (`wire.decode_json`), every field of the expected type and no other.
A chat, a member or an app copy is named either by its name (`chat`, `member`, `app`) or by
its id (`chat_id`, `member_id`, `app_id`): a name is never taken for an id.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from ..core import wire
from ..host import metrics
from ..model.chats import Chat, Member
from ..model.sharing import upload_name
from .manage import ManageError, Manager

__all__ = ["ADMIN_SOCKET_NAME", "MAX_SOCKET_PATH_BYTES", "AdminApi", "AdminSocketError",
           "admin_socket_path", "claim_socket_path", "bind_private"]

log = logging.getLogger(__name__)

ADMIN_SOCKET_NAME = "admin.sock"
"""The admin socket's name in the data folder."""
MAX_SOCKET_PATH_BYTES = 107
"""Longest path a Unix socket may have on Linux (`sun_path` holds 108 bytes with a NUL)."""
_MAX_COMMAND_BYTES = 64 * 1024
"""Largest request of any command but `app/share` (which carries an app)."""

Command = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class AdminSocketError(Exception):
    """The admin socket cannot be set up (the message says why, in one line)."""


def admin_socket_path(data_dir: str | Path) -> Path:
    """Where the admin socket of the host using this data folder is."""
    return Path(data_dir) / ADMIN_SOCKET_NAME


def claim_socket_path(path: Path) -> None:
    """Make sure a new admin socket can be bound at `path`: refuse if another host listens
    there (one host per data folder) or the path is too long or not a socket; remove a
    socket left behind by a host that stopped without cleaning up."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise AdminSocketError(f"the admin socket path {path} is longer than "
                               f"{MAX_SOCKET_PATH_BYTES} bytes; choose a shorter --data-dir")
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise AdminSocketError(f"{path} exists and is not a socket; move it away")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise AdminSocketError(f"cannot check the admin socket {path}: "
                                       f"{exc.strerror or exc}") from None
        else:
            raise AdminSocketError(f"another webxdc-rt host is using the data folder "
                                   f"{path.parent} (its admin socket answers)")
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def bind_private(path: Path) -> Iterator[None]:
    """Create files (the socket being bound) readable and writable by this user alone, so
    that there is no moment at which another user could connect; then make sure of it."""
    previous = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(previous)
    if path.exists():
        os.chmod(path, 0o600)


class AdminApi:
    """The admin application: the management commands and `/metrics`."""

    def __init__(self, manager: Manager, registry: CollectorRegistry | None = None) -> None:
        self.manager = manager
        self.metrics = registry or metrics.metrics_registry(manager.host)
        self._commands: dict[str, Command] = {
            "chat/create": self._chat_create, "chat/list": self._chat_list,
            "chat/show": self._chat_show, "chat/delete": self._chat_delete,
            "member/add": self._member_add, "member/remove": self._member_remove,
            "app/share": self._app_share, "app/list": self._app_list,
            "app/remove": self._app_remove,
            "link/show": self._link_show, "link/revoke": self._link_revoke,
            "chat/uploads": self._chat_uploads,
        }

    def application(self) -> web.Application:
        """The aiohttp application of the admin listener."""
        app = web.Application(client_max_size=self.max_request_bytes)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/v1/{noun}/{verb}", self._command)
        return app

    @property
    def max_request_bytes(self) -> int:
        """Largest request: an app of `max_upload_bytes` in base64, with room to spare."""
        return (self.manager.host.settings.home.max_upload_bytes + 2) // 3 * 4 \
            + _MAX_COMMAND_BYTES

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=metrics.render(self.metrics),
                            headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _command(self, request: web.Request) -> web.StreamResponse:
        name = f"{request.match_info['noun']}/{request.match_info['verb']}"
        command = self._commands.get(name)
        try:
            if command is None:
                raise ManageError("unknown-command", f"no admin command {name!r}", 404)
            limit = self.max_request_bytes if name == "app/share" else _MAX_COMMAND_BYTES
            body = await _read_object(request, limit)
            if name == "app/share":
                async with self.manager.upload_slot():
                    answer = await command(body)
            else:
                answer = await command(body)
        except ManageError as exc:
            return web.json_response({"error": {"code": exc.code, "message": str(exc)}},
                                     status=exc.status)
        return web.json_response(answer)

    # -- the commands --------------------------------------------------------------------

    async def _chat_create(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(body, {"name": str}, {"members": list})
        members = fields.get("members", [])
        if not all(isinstance(member, str) for member in members):
            raise ManageError("bad-request", "members must be a list of names")
        manager = self.manager
        chat = manager.create_chat(fields["name"], members)
        return {**manager.describe_chat(chat),
                "links": [manager.links(chat, member) for member in chat.members]}

    async def _chat_list(self, body: dict[str, Any]) -> dict[str, Any]:
        _fields(body, {}, {})
        manager = self.manager
        return {"chats": [manager.describe_chat(chat)
                          for chat in manager.registry.chats.values()]}

    async def _chat_show(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(body, {}, _CHAT)
        return self.manager.describe_chat(self._chat(fields))

    async def _chat_delete(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(body, {}, _CHAT)
        manager = self.manager
        chat = self._chat(fields)
        described = manager.describe_chat(chat)
        closed = await manager.delete_chat(chat)
        return {"deleted": described, "sockets_closed": closed}

    async def _member_add(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(body, {"member": str}, _CHAT)
        manager = self.manager
        chat = self._chat(fields)
        member = manager.add_member(chat, fields["member"])
        return manager.links(chat, member)

    async def _member_remove(self, body: dict[str, Any]) -> dict[str, Any]:
        chat, member = self._chat_and_member(body)
        closed = await self.manager.remove_member(chat, member)
        return {"chat": chat.name, "removed": member.name, "member_id": member.id,
                "sockets_closed": closed}

    async def _app_share(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(body, {"file_name": str, "data_base64": str},
                         {**_CHAT, "from": str})
        manager = self.manager
        chat = self._chat(fields)
        sender = manager.member(chat, fields["from"]) if "from" in fields else None
        try:
            data = base64.b64decode(fields["data_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ManageError("bad-request", "data_base64 is not valid base64") from None
        app = await manager.share(chat, upload_name(fields["file_name"]), data, sender)
        return {**manager.describe_app(app), "chat": chat.name,
                "links": [{"member": page.member.name, "self_addr": page.self_addr,
                           "url": manager.host.invite_url(page, manager.port)}
                          for page in manager.registry.pages_of(app)]}

    async def _app_list(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(body, {}, _CHAT)
        manager = self.manager
        chat = self._chat(fields)
        return {"chat": chat.name,
                "apps": [manager.describe_app(app) for app in manager.registry.apps_of(chat)]}

    async def _app_remove(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(body, {}, {**_CHAT, "app": str, "app_id": str})
        manager = self.manager
        chat = self._chat(fields)
        app = manager.app_by_id(chat, fields["app_id"]) if _by_id(fields, "app") \
            else manager.app(chat, fields["app"])
        described = manager.describe_app(app)
        closed = await manager.remove_app(chat, app)
        return {"chat": chat.name, "removed": described, "sockets_closed": closed}

    async def _chat_uploads(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(body, {}, {**_CHAT, "uploads": str})
        chat = self._chat(fields)
        setting, uploads = fields.get("uploads"), self.manager.uploads
        if setting is not None:
            if setting not in ("on", "off", "host"):
                raise ManageError("bad-request", "uploads must be on, off or host")
            try:
                uploads.choose(chat.id, setting)
            except OSError as exc:
                raise ManageError("storage-failed", "cannot save the choice: "
                                  f"{exc.strerror or exc}", 500) from None
            log.info("member uploads in chat %r: %s", chat.name, setting)
        return uploads.describe(chat.id, chat.name)

    async def _link_show(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.manager.links(*self._chat_and_member(body))

    async def _link_revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        chat, member = self._chat_and_member(body)
        closed = await self.manager.revoke_link(chat, member)
        return {**self.manager.links(chat, member), "sockets_closed": closed}

    def _chat(self, fields: dict[str, Any]) -> Chat:
        """The chat a request names: by `chat` (its name) or `chat_id`, one of the two."""
        if _by_id(fields, "chat"):
            return self.manager.chat_by_id(fields["chat_id"])
        return self.manager.chat(fields["chat"])

    def _chat_and_member(self, body: dict[str, Any]) -> tuple[Chat, Member]:
        """The chat and the member a request names (each by name, or by id in `chat_id`,
        `member_id`)."""
        fields = _fields(body, {}, {**_CHAT, "member": str, "member_id": str})
        chat = self._chat(fields)
        if _by_id(fields, "member"):
            return chat, self.manager.member_by_id(chat, fields["member_id"])
        return chat, self.manager.member(chat, fields["member"])


_CHAT: dict[str, type] = {"chat": str, "chat_id": str}
"""The fields that name a chat: its name, or its id."""


def _by_id(fields: dict[str, Any], what: str) -> bool:
    """Whether a request names `what` by its id (`<what>_id`) or by its name (`<what>`);
    it must give exactly one of the two: a name is never taken for an id nor the other way
    round."""
    given = [name for name in (what, f"{what}_id") if name in fields]
    if len(given) != 1:
        raise ManageError("bad-request", f"give either {what!r} (a name) or {what}_id "
                          f"(an id), {'not both' if given else 'one of them'}")
    return given[0] != what


async def _read_object(request: web.Request, limit: int) -> dict[str, Any]:
    """The request's body as a JSON object, checked: at most `limit` bytes, UTF-8, strict
    JSON (`wire.decode_json`)."""
    if request.content_length is not None and request.content_length > limit:
        raise ManageError("too-large", f"request of {request.content_length} bytes is over "
                          f"the limit of {limit} bytes", 413)
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise ManageError("too-large", f"request is over the limit of {limit} bytes", 413)
    try:
        value = wire.decode_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ManageError("bad-request", "the request is not UTF-8") from None
    except wire.WireError as exc:
        raise ManageError("bad-request", f"the request is not valid: {exc}") from None
    if not isinstance(value, dict):
        raise ManageError("bad-request", "the request must be a JSON object")
    return value


def _fields(body: dict[str, Any], required: dict[str, type],
            optional: dict[str, type]) -> dict[str, Any]:
    """`body`, checked to hold the `required` fields and maybe the `optional` ones, each of
    its type, and nothing else."""
    for name in body:
        if name not in required and name not in optional:
            raise ManageError("bad-request", f"unknown field {name!r}")
    for name, kind in {**required, **optional}.items():
        if name not in body:
            if name in required:
                raise ManageError("bad-request", f"missing field {name!r}")
        elif not isinstance(body[name], kind):
            raise ManageError("bad-request", f"field {name!r} must be a {kind.__name__}")
    return body
