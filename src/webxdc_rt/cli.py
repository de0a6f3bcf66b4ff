"""The `webxdc-rt` command: share an app into a chat and serve it to the chat's members, or
host every chat of a data folder as a service that is managed while it runs.

    webxdc-rt serve APP --members alice,bob [--host 127.0.0.1] [--port 8080] [--json]
                    [--limit NAME=VALUE ...]   # names and defaults: webxdc-rt serve --help
                    [--broker redis://HOST:PORT/DB]   # share channels with other processes
                    [--store postgresql://...]  # share chats and updates with them
                    [--workers N]               # N processes on one port (needs both)
    webxdc-rt demo [--port 8080]        # the bundled sketch pad, for alice, bob and carol
    webxdc-rt dev APP [--peers N] [--port P] [--no-open] [--json]   # the simulator
    webxdc-rt host [--data-dir DIR] [--port 8080] [--log-format json]
    webxdc-rt chat|member|app|link ...  # manage a running host (see admin_client.py)

State (chats, invite links, status updates) lives in the data directory, so serving the same
app to the same chat again keeps its links, `selfAddr`s and updates.

Errors the user can fix (a missing or broken app, a taken port, bad options, a data
directory that cannot be opened or written, e.g. on a full disk) are answered with one line
on stderr and exit status 2 before anything is served, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import resource
import signal
import socket
import sys
import textwrap
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from aiohttp import web

from .brokers.redis import RedisAddress, RedisBroker, parse_redis_url
from .core.wire import is_text
from .dev import command as dev
from .host.app import Host, HostSettings
from .model.chats import Page, Registry, parse_members
from .model.xdc import AppSource, InvalidContainer, open_app
from .service import admin_client, logs
from .service.admin import (
    AdminApi,
    AdminSocketError,
    admin_socket_path,
    bind_private,
    claim_socket_path,
)
from .service.home import HomeSite
from .service.manage import ManageError, Manager
from .stores.api import StoreApi, StoreError, StoreLimits
from .stores.sqlite import SqliteStore

__all__ = ["main", "build_parser", "example_path", "apply_limits", "settable_limits",
           "limits_help", "Limit", "UsageError", "DEFAULT_PORT"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
DEMO_MEMBERS = "alice,bob,carol"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Keeps the generated list of limits in the epilog as it is laid out.
RAW = argparse.RawDescriptionHelpFormatter


class UsageError(Exception):
    """A problem the user can fix (what they asked for, or the state of the machine it
    needs, such as the app or the data directory), reported as one line."""


def example_path(name: str = "sketch") -> Path:
    """The folder of a bundled example app."""
    return Path(str(resources.files("webxdc_rt").joinpath("examples", name)))


def default_data_dir() -> str:
    """`$XDG_DATA_HOME/webxdc-rt`, or `~/.local/share/webxdc-rt`."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return os.path.join(base, "webxdc-rt")


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar of `webxdc-rt`."""
    parser = argparse.ArgumentParser(
        prog="webxdc-rt", description="Host webxdc apps with realtime channels for a chat.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    limits = limits_help()
    serve = commands.add_parser("serve", help="share an app into a new chat and serve it",
                                epilog=limits, formatter_class=RAW)
    serve.add_argument("app", metavar="APP",
                       help="a .xdc file, or a folder with index.html at its root")
    serve.add_argument("--members", required=True, metavar="NAMES",
                       help="comma-separated member names, e.g. alice,bob")
    serve.add_argument("--broker", metavar="URL", default=None,
                       help="share realtime channels with other webxdc-rt processes through "
                            "Redis 7 or later: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]; "
                            "if Redis is unreachable the host starts anyway, warns once and "
                            "keeps trying (default: this process alone)")
    serve.add_argument("--store", metavar="URL", default=None,
                       help="keep chats, pages and updates in PostgreSQL, shared with other "
                            "webxdc-rt processes: postgresql://USER[:PASSWORD]@HOST[:PORT]/DB; "
                            "a fresh database is set up (default: SQLite in --data-dir)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="serve from N processes on one port (SO_REUSEPORT), using every "
                            "core; above 1 needs --broker and --store (default: 1)")
    _add_network_options(serve)

    demo = commands.add_parser("demo", help=f"serve the bundled sketch pad to {DEMO_MEMBERS}",
                               epilog=limits, formatter_class=RAW)
    _add_network_options(demo)

    host = commands.add_parser(
        "host", help="serve every chat of a data folder, managed while it runs "
                     "(webxdc-rt chat|member|app|link)", epilog=limits, formatter_class=RAW)
    host.add_argument("--store", metavar="URL", default=None,
                      help="keep chats, pages, updates and uploaded apps in PostgreSQL: "
                           "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (default: SQLite in "
                           "--data-dir, which keeps the admin socket either way)")
    _add_listen_options(host)
    host.add_argument("--json", action="store_true",
                      help="print one JSON object (address, port, admin socket) once serving")
    admin_client.add_commands(commands, default_data_dir())
    dev.add_command(commands)
    return parser


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    _add_listen_options(parser)
    parser.add_argument("--chat", default="chat", metavar="NAME", help="name of the chat")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per member (member, url, self_addr)")


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on; 0 picks a free one (default: {DEFAULT_PORT})")
    parser.add_argument("--domain", default="localhost",
                        help="pages are served at <label>.DOMAIN (default: localhost)")
    parser.add_argument("--scheme", choices=("http", "https"), default="http",
                        help="scheme of the printed links (https behind a TLS proxy)")
    parser.add_argument("--public-port", type=int, default=None, metavar="N",
                        help="port in the printed links when a proxy listens elsewhere")
    parser.add_argument("--data-dir", default=default_data_dir(), metavar="DIR",
                        help="where chats and updates are kept (default: %(default)s)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log lines for people (text) or one JSON object each (json)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="change one numeric setting, named as listed below, e.g. "
                             "realtime.send_items_per_s=5000; repeatable")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="event loop: uvloop when installed (auto), or asyncio's own")


_DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_PATTERN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
"""What `--domain` accepts: DNS labels of letters, digits and hyphens, separated by dots."""


def _check_chat_name(name: str) -> None:
    # Arguments that are not UTF-8 arrive with lone surrogates, which nothing can store or
    # print: refused here, with the other mistakes a person can fix.
    if not is_text(name) or not name.strip() or not name.isprintable():
        raise UsageError(f"--chat must be a printable name in UTF-8, got {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = build_parser().parse_args(argv)
    if args.command in admin_client.COMMANDS:
        return admin_client.run(args)
    if args.command == "dev":
        return _dev(args)
    try:
        if not 0 <= args.port <= 65535:
            raise UsageError(f"--port must be from 0 to 65535, got {args.port}")
        settings = _settings(args)
        logs.configure(args.log_format)
        if args.command == "host":
            _run(_host(args, settings), args.loop)
            return 0
        if args.command == "demo":
            app_path, members = str(example_path()), DEMO_MEMBERS
        else:
            app_path, members = args.app, args.members
        try:
            member_names = parse_members(members)
        except ValueError as exc:
            raise UsageError(f"--members: {exc}") from None
        try:
            source = open_app(app_path)
        except InvalidContainer as exc:
            raise UsageError(str(exc)) from None
        _check_chat_name(args.chat)
        broker = _broker_address(getattr(args, "broker", None))
        _check_store_url(getattr(args, "store", None))
        workers = getattr(args, "workers", 1)
        if workers != 1:
            _check_workers(workers, broker, args.store)
            return _run_workers(workers, source, member_names, args, settings, broker)
        _run(_serve(source, member_names, args, settings, broker), args.loop)
    except UsageError as exc:
        print(f"webxdc-rt: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _dev(args: argparse.Namespace) -> int:
    """`webxdc-rt dev`: mistakes the user can fix are one line and exit status 2."""
    try:
        if not 0 <= args.port <= 65535:
            raise UsageError(f"--port must be from 0 to 65535, got {args.port}")
        if args.host not in ("127.0.0.1", "::1", "localhost"):
            raise UsageError("--host must be a loopback address (127.0.0.1, ::1, localhost): "
                             "the simulator and its pages are for this machine")
        logs.configure("text")
        try:
            _run(dev.run(args), "auto")
        except InvalidContainer as exc:
            raise UsageError(str(exc)) from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: "
                             f"{exc.strerror or exc}") from None
    except UsageError as exc:
        print(f"webxdc-rt: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _settings(args: argparse.Namespace) -> HostSettings:
    """The host's settings from the listening options and `--limit`s."""
    if args.public_port is not None and not 1 <= args.public_port <= 65535:
        raise UsageError(f"--public-port must be from 1 to 65535, got {args.public_port}")
    domain = args.domain.strip(".").lower()
    if not DOMAIN_PATTERN.fullmatch(domain):
        raise UsageError(f"--domain must be a DNS name such as apps.example.org, got "
                         f"{args.domain!r}")
    return apply_limits(HostSettings(domain=domain, scheme=args.scheme,
                                     public_port=args.public_port), args.limit)


@dataclass(frozen=True, slots=True)
class Limit:
    """One numeric setting that `--limit NAME=VALUE` can change."""

    name: str
    """The name `--limit` accepts: `group.field` for a field of a group of settings
    (`realtime`, `updates`, `chat`), the bare field name for `HostSettings`' own."""
    group: str | None
    """The `HostSettings` field holding the group, or None for `HostSettings`' own."""
    field: str
    """The field's name in its dataclass."""
    kind: type[int] | type[float]
    """What the field holds: a whole number, or any finite number."""
    default: int | float
    """The field's default value."""


def settable_limits() -> dict[str, Limit]:
    """Every numeric setting of `HostSettings` and of its groups, by the name `--limit`
    accepts, in the order the dataclasses declare them."""
    defaults = HostSettings()
    limits: dict[str, Limit] = {}
    for name, kind in get_type_hints(HostSettings).items():
        if dataclasses.is_dataclass(kind):
            group = getattr(defaults, name)
            for field_name, field_kind in get_type_hints(kind).items():
                if field_kind in (int, float):
                    limits[f"{name}.{field_name}"] = Limit(
                        f"{name}.{field_name}", name, field_name, field_kind,
                        getattr(group, field_name))
        elif kind in (int, float):
            limits[name] = Limit(name, None, name, kind, getattr(defaults, name))
    return limits


def limits_help() -> str:
    """The `--help` text that lists every setting `--limit` accepts, with its default."""
    lines = ["limits, set with --limit NAME=VALUE (repeatable), and their defaults;",
             "the README's Limits table says what each one bounds:"]
    by_group: dict[str | None, list[str]] = {}
    for limit in settable_limits().values():
        by_group.setdefault(limit.group, []).append(f"{limit.name}={_number(limit.default)}")
    for entries in by_group.values():
        lines.append(textwrap.fill("  ".join(entries), width=79, initial_indent="  ",
                                   subsequent_indent="  ", break_on_hyphens=False))
    return "\n".join(lines)


def apply_limits(settings: HostSettings, assignments: list[str]) -> HostSettings:
    """`settings` with every `NAME=VALUE` applied (the last one wins for a name given twice),
    checked together by the settings themselves; UsageError for an unknown name, a value
    that is not a number of the field's kind, or one the settings refuse."""
    limits = settable_limits()
    own: dict[str, Any] = {}  # each value of its field's kind, by `_parse_value`
    grouped: dict[str, dict[str, int | float]] = {}
    given: dict[str, list[str]] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep:
            raise UsageError(f"--limit expects NAME=VALUE, got {assignment!r}")
        limit = limits.get(name.strip())
        if limit is None:
            raise UsageError(_unknown_limit(name.strip(), limits))
        value = _parse_value(limit, text.strip())
        if limit.group is None:
            own[limit.field] = value
        else:
            grouped.setdefault(limit.group, {})[limit.field] = value
            given.setdefault(limit.group, []).append(assignment.strip())
    groups: dict[str, Any] = {}
    for group, changes in grouped.items():
        try:
            groups[group] = dataclasses.replace(getattr(settings, group), **changes)
        except ValueError as exc:
            # The group's message names the field alone; say which assignments it was.
            raise UsageError(f"--limit {' '.join(given[group])}: {exc}") from None
    try:
        return dataclasses.replace(settings, **own, **groups)
    except ValueError as exc:
        raise UsageError(f"--limit: {exc}") from None


def _parse_value(limit: Limit, text: str) -> int | float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise UsageError(f"--limit {limit.name}: expects a number, got {text!r}")
    if limit.kind is float:
        return number
    try:
        return int(text)  # exact, however large
    except ValueError:
        if not number.is_integer():
            raise UsageError(f"--limit {limit.name}: expects a whole number, "
                             f"got {text!r}") from None
        return int(number)  # written as 1e6 or 5000.0


def _unknown_limit(name: str, limits: dict[str, Limit]) -> str:
    similar = [limit.name for limit in limits.values()
               if limit.group is not None and limit.field == name]
    hint = f" (did you mean {' or '.join(similar)}?)" if similar else ""
    return f"--limit: no setting named {name!r}{hint}; the settings are: {', '.join(limits)}"


def _number(value: int | float) -> str:
    """A default as one would type it: whole numbers without a fraction or an exponent."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _run(main_coroutine: Coroutine[Any, Any, None], loop: str) -> None:
    """Run the host on uvloop when asked or, for `auto`, when it is installed."""
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                main_coroutine.close()
                raise UsageError("--loop uvloop: uvloop is not installed") from None
        else:
            uvloop.run(main_coroutine)
            return
    asyncio.run(main_coroutine)


def _broker_address(url: str | None) -> RedisAddress | None:
    """The Redis of `--broker`, checked; None without one."""
    if url is None:
        return None
    if not is_text(url):
        raise UsageError("--broker must be a redis:// URL in UTF-8")
    try:
        return parse_redis_url(url)
    except ValueError as exc:
        raise UsageError(f"--broker {exc}") from None


def _check_store_url(url: str | None) -> None:
    if url is not None and not (is_text(url) and url.startswith(("postgresql://",
                                                                  "postgres://"))):
        raise UsageError("--store must be a postgresql:// URL in UTF-8")


def _check_workers(workers: int, broker: RedisAddress | None, store: str | None) -> None:
    if not 1 <= workers <= 1024:
        raise UsageError(f"--workers must be from 1 to 1024, got {workers}")
    if broker is None or store is None:
        raise UsageError(f"--workers {workers} needs --broker redis://... and --store "
                         "postgresql://...: the processes share realtime channels through "
                         "Redis and chats and updates through PostgreSQL")


WORKER_RESPAWN_INTERVAL_S = 1.0
"""Least time between two replacements of workers that died, so that a worker that dies at
once again and again costs one fork a second, not a busy loop."""


def _run_workers(workers: int, source: AppSource, member_names: list[str],
                 args: argparse.Namespace, settings: HostSettings,
                 broker: RedisAddress | None) -> int:
    """Fork `workers` processes that each serve on the same port (SO_REUSEPORT, the kernel
    spreads connections over them); the first prints the links. Stop signals are passed on.
    A worker that dies (killed, or a failure it did not expect) is replaced, and the others
    serve on meanwhile; one that ends with a usage error (exit status 2: it cannot listen,
    the store is unreachable) is not. Returns once every worker has ended: 0 if the last
    ones ended cleanly, else the first status of a worker that was not replaced."""
    probe = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        probe.bind((args.host, args.port))  # holds the port (0: picks one) for the workers
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: "
                         f"{exc.strerror or exc}") from None
    port = probe.getsockname()[1]
    worker_args = argparse.Namespace(**{**vars(args), "port": port})

    def fork(index: int, links: bool) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        probe.close()
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        status = 0
        try:
            _run(_serve(source, member_names, worker_args, settings, broker, worker=index,
                        links=links), args.loop)
        except UsageError as exc:
            print(f"webxdc-rt: error: {exc}", file=sys.stderr, flush=True)
            status = 2
        except BaseException:  # a worker must never return into the parent's code
            logging.exception("worker %d failed", index)
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    children = {fork(index, index == 0): index for index in range(workers)}
    stopping = False

    def pass_on(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, pass_on)
    result = 0
    last_respawn = -math.inf
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if index is None or code == 0 or stopping:
            continue
        if code == 2:
            result = result or code
            continue
        wait = last_respawn + WORKER_RESPAWN_INTERVAL_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if stopping:
            continue
        last_respawn = time.monotonic()
        print(f"webxdc-rt: worker {index} (pid {pid}) ended ({code}); starting another, "
              f"{len(children)} still serving", file=sys.stderr, flush=True)
        children[fork(index, False)] = index
    probe.close()
    return result


def _open_store(url: str | None, data_dir: str, limits: StoreLimits) -> StoreApi:
    """The store `--store` names, else SQLite in the data directory; UsageError if it
    cannot be opened."""
    if url is None:
        try:
            return SqliteStore.in_directory(data_dir)
        except (OSError, StoreError) as exc:
            raise UsageError(f"cannot open the data directory {data_dir}: {exc}") from None
    try:
        from .stores.postgres import PostgresStore
    except ImportError:
        raise UsageError("--store postgresql:// needs psycopg: "
                         "pip install 'webxdc-rt[postgres]'") from None
    try:
        return PostgresStore(url, limits)
    except StoreError as exc:
        raise UsageError(f"--store: {exc}") from None


async def _serve(source: AppSource, member_names: list[str], args: argparse.Namespace,
                 settings: HostSettings, broker_address: RedisAddress | None,
                 worker: int | None = None, links: bool = True) -> None:
    _raise_open_file_limit()
    store, registry, pages = _open_data(args.data_dir, args.chat, member_names, source,
                                        getattr(args, "store", None), settings.store)
    chat = registry.chats[pages[0].app.chat_id]
    broker = None
    if broker_address is not None:
        # Unreachable is not fatal: it is warned about once and retried in the background,
        # and meanwhile this process's pages reach one another.
        broker = RedisBroker(broker_address, settings.broker,
                             settings.realtime.max_payload_bytes)
        await broker.start()
    host = Host(registry, {pages[0].app.id: source}, settings, broker=broker, store=store)
    follow = None
    if store.shared:
        follow = asyncio.create_task(store.follow(host.feed.appended, host.feed.resync))
    runner = host.runner()
    # Installed before the links are printed: whoever reads them may stop us at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port, reuse_port=worker is not None)
        try:
            await site.start()
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: "
                             f"{exc.strerror or exc}") from None
        port = runner.addresses[0][1]
        for page in pages if links else ():
            url = host.invite_url(page, port)
            if args.json:
                print(json.dumps({"member": page.member.name, "url": url,
                                  "self_addr": page.self_addr, "app": source.name,
                                  "chat": chat.name}), flush=True)
            else:
                print(f"{page.member.name}: {url}", flush=True)
        through = f", realtime shared through {broker.address}" if broker else ""
        if worker is not None:
            through += f", worker {worker} (pid {os.getpid()})"
        print(f"webxdc-rt: serving {source.name!r} to chat {chat.name!r} on "
              f"{args.host}:{port}{through}; Ctrl-C stops", file=sys.stderr, flush=True)
        await stop.wait()
        print("webxdc-rt: stopping", file=sys.stderr, flush=True)
    finally:
        if follow is not None:
            follow.cancel()
        await runner.cleanup()
        if broker is not None:
            await broker.close()
        store.close()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _host(args: argparse.Namespace, settings: HostSettings) -> None:
    """Serve every chat of the data folder, with the admin listener on its socket, until
    stopped."""
    _raise_open_file_limit()
    _check_store_url(args.store)
    try:  # the admin socket lives there, whichever store holds the chats
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the data directory {args.data_dir}: "
                         f"{exc.strerror or exc}") from None
    store = _open_store(args.store, args.data_dir, settings.store)
    socket_path = admin_socket_path(args.data_dir)
    try:
        claim_socket_path(socket_path)
        host = Host(store.load_registry(), {}, settings, store=store)
        manager = Manager(host, store)
        manager.ensure_homes()
    except (AdminSocketError, ManageError, StoreError, OSError) as exc:
        store.close()
        raise UsageError(f"cannot host the data directory {args.data_dir}: {exc}") from None
    for problem in manager.serve_stored_apps():
        log.warning("%s", problem)
    host.mount(HomeSite(manager).resolve)
    follow = None
    if store.shared:
        follow = asyncio.create_task(store.follow(host.feed.appended, host.feed.resync))
    runner = host.runner()
    admin_runner = web.AppRunner(AdminApi(manager).application(), access_log=None,
                                 handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    await admin_runner.setup()
    socket_inode = None
    try:
        try:
            await web.TCPSite(runner, args.host, args.port).start()
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: "
                             f"{exc.strerror or exc}") from None
        port = manager.port = runner.addresses[0][1]
        try:
            with bind_private(socket_path):
                await web.UnixSite(admin_runner, str(socket_path)).start()
            socket_inode = socket_path.stat().st_ino
        except OSError as exc:
            raise UsageError(f"cannot create the admin socket {socket_path}: "
                             f"{exc.strerror or exc}") from None
        if args.json:
            print(json.dumps({"host": args.host, "port": port,
                              "admin_socket": str(socket_path),
                              "data_dir": str(args.data_dir)}), flush=True)
        log.info("hosting %d chats on %s:%d; admin socket %s; Ctrl-C stops",
                 len(host.registry.chats), args.host, port, socket_path)
        await stop.wait()
        log.info("stopping")
    finally:
        if follow is not None:
            follow.cancel()
        await admin_runner.cleanup()
        await runner.cleanup()
        with contextlib.suppress(OSError):
            if socket_inode is not None and socket_path.stat().st_ino == socket_inode:
                socket_path.unlink()
        store.close()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def _open_data(data_dir: str, chat_name: str, member_names: list[str],
               source: AppSource, store_url: str | None = None,
               limits: StoreLimits | None = None) -> tuple[StoreApi, Registry, list[Page]]:
    """The store, its registry and the app's pages in the chat, stored; a storage failure
    (no permission, a damaged database, a full disk, an unreachable server) is a
    UsageError naming it."""
    store = _open_store(store_url, data_dir, limits or StoreLimits())
    try:
        registry = store.load_registry()
        pages = store.share(registry, chat_name, member_names, source.name, source.key)
    except (OSError, StoreError) as exc:
        store.close()
        where = store_url and "the --store database" or f"the data directory {data_dir}"
        raise UsageError(f"cannot write to {where}: {exc}") from None
    return store, registry, pages


def _raise_open_file_limit() -> None:
    # Every connection is a file descriptor; the usual soft limit of 1024 is far too low.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


if __name__ == "__main__":
    sys.exit(main())
