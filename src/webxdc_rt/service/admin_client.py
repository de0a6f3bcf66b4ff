"""The management commands, `webxdc-rt chat|member|app|link ...`: each asks the host running
on a data folder to make a change or tell something, over its admin socket (`admin.py`),
and prints the answer (one JSON object with `--json`). Any refusal is one line on stderr and
exit status 2.

    webxdc-rt chat create NAME [--members alice,bob]    webxdc-rt chat list|show|delete ...
    webxdc-rt member add|remove CHAT NAME
    webxdc-rt app share CHAT FILE [--from MEMBER]       webxdc-rt app list|remove ...
    webxdc-rt link show|revoke CHAT MEMBER

Chats, members and apps are named by their names; `--id` says that what a command acts on is
given by its id instead (as `chat show` prints them), `--chat-id` the same of the CHAT a
member or an app is in. A name is never taken for an id: `member remove family m1` removes
the member named "m1", whoever has the id m1. Names from the host are printed with control
characters escaped (`names.shown`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from ..model.chats import parse_members
from ..model.names import counted, shown
from ..model.xdc import DEFAULT_LIMITS, InvalidContainer, pack_folder
from .admin import admin_socket_path

__all__ = ["COMMANDS", "CommandError", "add_commands", "run", "call"]

COMMANDS = ("chat", "member", "app", "link")
"""The management commands, each with its own verbs."""

_MAX_APP_FILE_BYTES = DEFAULT_LIMITS.max_total_bytes
"""A file larger than any app may expand to is not read (the host's own bound is lower)."""
_TIMEOUT_S = 120.0
"""How long a command waits for the host (an upload is checked before it is answered)."""


class CommandError(Exception):
    """What went wrong, for one line on stderr (exit status 2)."""


def add_commands(commands: Any, data_dir_default: str) -> None:
    """Add the management commands to the `webxdc-rt` parser's subcommands."""
    verbs = _verbs()
    helps = {"chat": "create, list, show or delete chats of the running host",
             "member": "add or remove members of a chat",
             "app": "share, list or remove apps in a chat",
             "link": "show or revoke a member's links"}
    for noun, entries in verbs.items():
        parser = commands.add_parser(noun, help=helps[noun])
        sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
        for verb, help_text, arguments in entries:
            verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
            for names, options in arguments:
                verb_parser.add_argument(*names, **options)
            verb_parser.add_argument("--data-dir", default=data_dir_default, metavar="DIR",
                                     help="the data folder of the running host "
                                          "(default: %(default)s)")
            verb_parser.add_argument("--json", action="store_true",
                                     help="print the host's answer as one JSON object")


_Argument = tuple[tuple[str, ...], dict[str, Any]]
"""The names and options of one `add_argument` call."""


def _verbs() -> dict[str, list[tuple[str, str, list[_Argument]]]]:
    """The management commands: for each noun, its verbs with their help and arguments."""
    chat_id = (("--chat-id",), {"action": "store_true", "dest": "chat_by_id",
                                "help": "CHAT is the chat's id, not its name"})
    in_chat = (("chat",), {"metavar": "CHAT", "help": "the chat's name (its id with --chat-id)"})
    the_chat = (("chat",), {"metavar": "CHAT", "help": "the chat's name (its id with --id)"})
    member = (("member",), {"metavar": "MEMBER",
                            "help": "the member's name (their id with --id)"})
    return {
        "chat": [
            ("create", "create a chat (and its members)", [
                (("name",), {"metavar": "NAME"}),
                (("--members",), {"metavar": "NAMES", "default": "",
                                  "help": "comma-separated member names"})]),
            ("list", "list the chats", []),
            ("show", "show a chat's members and apps, with their ids",
             [the_chat, _by_id("CHAT", "chat")]),
            ("delete", "delete a chat with all its apps, updates and messages",
             [the_chat, _by_id("CHAT", "chat")]),
            ("uploads", "show, or set, whether members may share apps into a chat from "
                        "their home page (host: as --limit home.member_uploads says)",
             [the_chat, (("setting",), {"metavar": "on|off|host", "nargs": "?",
                                        "choices": ("on", "off", "host")}),
              _by_id("CHAT", "chat")]),
        ],
        "member": [
            ("add", "add a member to a chat and print their link",
             [in_chat, (("member",), {"metavar": "NAME", "help": "the new member's name"}),
              chat_id]),
            ("remove", "remove a member (their sockets are closed, their links refused)",
             [in_chat, member, _by_id("MEMBER", "member"), chat_id]),
        ],
        "app": [
            ("share", "share a .xdc (or an app folder) into a chat", [
                in_chat,
                (("file",), {"metavar": "FILE", "help": "a .xdc file or an app folder"}),
                (("--from",), {"metavar": "MEMBER", "dest": "sender",
                               "help": "the name of who shares it (isAppSender); default: "
                                       "the first member"}), chat_id]),
            ("list", "list the apps shared into a chat", [in_chat, chat_id]),
            ("remove", "remove an app copy with its updates",
             [in_chat, (("app",), {"metavar": "APP",
                                   "help": "the app's name (the copy's id with --id)"}),
              _by_id("APP", "app copy"), chat_id]),
        ],
        "link": [
            ("show", "print a member's link (their home page of the chat)",
             [in_chat, member, _by_id("MEMBER", "member"), chat_id]),
            ("revoke", "give a member new links; the old ones are refused from now on",
             [in_chat, member, _by_id("MEMBER", "member"), chat_id]),
        ],
    }


def _by_id(metavar: str, what: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The `--id` option: the argument `metavar` is the id of the `what`, not its name."""
    return (("--id",), {"action": "store_true", "dest": "by_id",
                        "help": f"{metavar} is the {what}'s id (as `chat show` prints it), "
                                "not its name"})


def run(args: argparse.Namespace) -> int:
    """Carry out a management command; return the exit status."""
    try:
        body = _request_body(args)
        answer = asyncio.run(call(Path(args.data_dir), f"{args.command}/{args.verb}", body))
    except CommandError as exc:
        print(f"webxdc-rt: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer, ensure_ascii=False), flush=True)
    else:
        for line in _PRINTERS[f"{args.command}/{args.verb}"](answer):
            print(line, flush=True)
    return 0


async def call(data_dir: Path, command: str, body: dict[str, Any]) -> dict[str, Any]:
    """Send one command to the host running on `data_dir`; its answer, or CommandError."""
    path = admin_socket_path(data_dir)
    if not path.exists():
        raise CommandError(f"no webxdc-rt host is running on the data folder {data_dir} "
                           f"(no {path.name} there): start one with `webxdc-rt host`")
    timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path)),
                                         timeout=timeout) as session:
            async with session.post(f"http://webxdc-rt/v1/{command}", json=body) as response:
                answer = await response.json(content_type=None)
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise CommandError(f"cannot reach the host on {path}: {exc}; is `webxdc-rt host` "
                           "running?") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise CommandError(f"unreadable answer from the host: {exc}") from None
    except TimeoutError:
        raise CommandError(f"the host did not answer within {_TIMEOUT_S:g} s") from None
    if not isinstance(answer, dict):
        raise CommandError("unreadable answer from the host")
    error = answer.get("error")
    if isinstance(error, dict):
        raise CommandError(str(error.get("message")))
    return answer


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The admin request for the parsed command line."""
    command = f"{args.command}/{args.verb}"
    if command == "chat/create":
        try:
            members = parse_members(args.members) if args.members.strip() else []
        except ValueError as exc:
            raise CommandError(f"--members: {exc}") from None
        return {"name": args.name, "members": members}
    body: dict[str, Any] = {}
    for name in ("chat", "member", "app"):
        value = getattr(args, name, None)
        if value is None:
            continue
        # `--id` is about what the command acts on, `--chat-id` about the chat it is in.
        by_id = getattr(args, "by_id" if name == _TARGETS[args.command] else "chat_by_id",
                        False)
        body[f"{name}_id" if by_id else name] = value
    if command == "chat/uploads" and args.setting is not None:
        body["uploads"] = args.setting
    if command == "app/share":
        body.update(file_name=_file_name(args.file),
                    data_base64=base64.b64encode(_read_app(args.file)).decode())
        if args.sender is not None:
            body["from"] = args.sender
    return body


_TARGETS = {"chat": "chat", "member": "member", "app": "app", "link": "member"}
"""What the commands of each noun act on: what `--id` gives by its id."""


def _file_name(path: str) -> str:
    """The name the host is told: the file's, or for a folder the folder's with `.xdc`."""
    name = os.path.basename(os.path.normpath(path))
    return name + ".xdc" if os.path.isdir(path) else name


def _read_app(path: str) -> bytes:
    """The bytes of a `.xdc`, or of an app folder packed as one."""
    location = Path(path)
    try:
        if location.is_dir():
            return pack_folder(location)
        if not location.exists():
            raise CommandError(f"app not found: {path}")
        if location.stat().st_size > _MAX_APP_FILE_BYTES:
            raise CommandError(f"{path} is larger than any app may be "
                               f"({_MAX_APP_FILE_BYTES} bytes)")
        return location.read_bytes()
    except InvalidContainer as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot read the app {path}: {exc.strerror or exc}") from None


# -- printing answers for people ---------------------------------------------------------
# Every name is the host's answer, which may hold what an app's manifest or an older version
# put there: control characters are escaped before they reach the terminal.

def _chat_lines(answer: dict[str, Any]) -> list[str]:
    members = [f"{shown(name)} ({shown(member_id)})"
               for name, member_id in zip(answer["members"], answer["member_ids"], strict=True)]
    lines = [f"{shown(answer['name'])} ({shown(answer['id'])})",
             f"  members: {', '.join(members) or '(none)'}"]
    lines += _app_lines({"apps": answer["apps"]}) or ["  no apps"]
    return lines


def _app_lines(answer: dict[str, Any]) -> list[str]:
    return [f"  {shown(app['name'])} ({shown(app['id'])})"
            + (f", shared by {shown(app['shared_by'])}" if app["shared_by"] else "")
            + ("" if app["served"] else ", not served: its file is missing")
            for app in answer["apps"]]


def _link_lines(answer: dict[str, Any]) -> list[str]:
    return [f"{shown(answer['member'])}: {shown(str(answer['url']))}"]


def _created_lines(answer: dict[str, Any]) -> list[str]:
    return [line for links in answer["links"] for line in _link_lines(links)] \
        or [f"chat {answer['name']!r} created ({shown(answer['id'])}); add members "
            "with `webxdc-rt member add`"]


def _chat_list_lines(answer: dict[str, Any]) -> list[str]:
    return [f"{shown(chat['name'])} ({shown(chat['id'])}): {len(chat['members'])} members, "
            f"{len(chat['apps'])} apps" for chat in answer["chats"]] or ["no chats"]


_PRINTERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "chat/create": _created_lines,
    "chat/list": _chat_list_lines,
    "chat/show": _chat_lines,
    "chat/delete": lambda a: [f"chat {a['deleted']['name']!r} ({shown(a['deleted']['id'])}) "
                              "deleted "
                              f"({counted(a['sockets_closed'], 'socket')} closed)"],
    "member/add": _link_lines,
    "member/remove": lambda a: [f"{shown(a['removed'])} ({shown(a['member_id'])}) removed "
                                f"from chat {a['chat']!r} "
                                f"({counted(a['sockets_closed'], 'socket')} closed)"],
    "app/share": lambda a: [f"{shown(a['name'])} shared into chat {a['chat']!r} "
                            f"as {shown(a['id'])}"],
    "app/list": lambda a: _app_lines(a) or [f"no apps in chat {a['chat']!r}"],
    "app/remove": lambda a: [f"{shown(a['removed']['name'])} ({shown(a['removed']['id'])}) "
                             f"removed from chat {a['chat']!r} "
                             f"({counted(a['sockets_closed'], 'socket')} closed)"],
    "chat/uploads": lambda a: [f"chat {a['chat']!r}: member uploads {a['uploads']} ("
                               f"{'allowed' if a['members_may_upload'] else 'refused'})"],
    "link/show": _link_lines,
    "link/revoke": _link_lines,
}
"""How each command's answer is printed without `--json`."""
