"""The `webxdc-rt` command: share an app into a chat and serve it to the chat's members, or
host every chat of a data folder as a service that is managed while it runs.

    webxdc-rt serve APP --members alice,bob [--port 8080] [--json] [--limit NAME=VALUE ...]
                    [--broker redis://...] [--store postgresql://...] [--workers N]
    webxdc-rt demo [--port 8080]        # the bundled sketch pad, for alice, bob and carol
    webxdc-rt dev APP [--peers N] [--port P] [--no-open] [--json]   # the simulator
    webxdc-rt host [--data-dir DIR] [--port 8080] [--store postgresql://...]
                   [--broker redis://...] [--workers N]
    webxdc-rt chat|member|app|link ...  # manage a running host (see admin_client.py)
    webxdc-rt backup DEST | restore SRC [--data-dir DIR]   # the SQLite database

Every option of every command: `webxdc-rt COMMAND --help`, or docs/cli.md, which
scripts/gen_docs.py writes from `build_parser`.

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
import os
import re
import resource
import sys
from collections.abc import Coroutine
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__
from .brokers.redis import (
    RedisAddress,
    RedisBroker,
    RedisClusterBroker,
    checked_tls_context,
    open_redis_broker,
    parse_redis_url,
)
from .conformance import command as conformance
from .core.wire import is_text
from .dev import command as dev
from .host.app import Host, HostSettings
from .host.lifecycle import Listen, ListenFailed, Serving
from .host.probes import ProbeAddress, Probes, Reachable, parse_probe_address, start_probes
from .model.chats import Page, Registry, parse_members
from .model.names import counted
from .model.xdc import AppSource, InvalidContainer, open_app
from .service import admin_client, logs
from .service import backup as backups
from .service.admin import (
    AdminApi,
    AdminSocketError,
    admin_socket_path,
    bind_private,
    claim_socket_path,
)
from .service.cluster import ChatFollower
from .service.home import HomeSite
from .service.manage import ManageError, Manager
from .service.options import (
    UsageError,
    apply_limits,
    limits_help,
)
from .service.uploads import UPLOADS_FILE_NAME, UploadPolicy
from .service.workers import run_workers
from .stores.api import SharedChats, StoreApi, StoreError, StoreLimits
from .stores.sqlite import SqliteStore, make_private_dir, shared_dir_warning

__all__ = ["main", "build_parser", "example_path", "default_data_dir", "DEFAULT_PORT"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
_STORAGE_FAILURES: tuple[type[Exception], ...] = (OSError, StoreError)
"""What opening or writing the data directory or the store raises when it cannot."""
DEMO_MEMBERS = "alice,bob,carol"
REDIS_PASSWORD_VARIABLE = "REDISCLI_AUTH"
"""The environment variable whose value is Redis's password when `--broker` names none."""
# Keeps the generated list of limits in the epilog as it is laid out.
RAW = argparse.RawDescriptionHelpFormatter


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    limits = limits_help()
    serve = commands.add_parser("serve", help="share an app into a new chat and serve it",
                                epilog=limits, formatter_class=RAW)
    serve.add_argument("app", metavar="APP",
                       help="a .xdc file, or a folder with index.html at its root")
    serve.add_argument("--members", required=True, metavar="NAMES",
                       help="comma-separated member names, e.g. alice,bob")
    _add_broker_option(serve)
    serve.add_argument("--store", metavar="URL", default=None,
                       help="keep chats, pages and updates in PostgreSQL, shared with other "
                            "webxdc-rt processes: postgresql://USER[:PASSWORD]@HOST[:PORT]/DB "
                            "(or libpq's $PGPASSWORD, $PGPASSFILE); "
                            "a fresh database is set up (default: SQLite in --data-dir)")
    _add_workers_option(serve)
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
                           "--data-dir, which keeps the admin socket either way); host "
                           "processes on one database are one service: a change made "
                           "through any of them reaches all")
    _add_broker_option(host)
    _add_workers_option(host)
    _add_listen_options(host)
    host.add_argument("--json", action="store_true",
                      help="print one JSON object (address, port, admin socket) once serving")
    admin_client.add_commands(commands, default_data_dir())
    backups.add_commands(commands, default_data_dir())
    dev.add_command(commands)
    conformance.add_parser(commands)
    return parser


def _add_broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", metavar="URL", default=None,
                        help="share realtime channels with other webxdc-rt processes through "
                             "Redis 7 or later: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], "
                             "rediss://... for TLS (?ssl_ca_certs=FILE&ssl_certfile=FILE"
                             "&ssl_keyfile=FILE), redis+cluster://HOST:PORT[,HOST:PORT...] "
                             "or rediss+cluster://... for a Redis Cluster; "
                             "the password else from $REDISCLI_AUTH; "
                             "if Redis is unreachable the host starts anyway, warns once and "
                             "keeps trying (default: this process alone)")


def _add_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="serve from N processes on one port (SO_REUSEPORT), using every "
                             "core; above 1 needs --broker and --store; on Linux the workers "
                             "stop when this process dies, even by SIGKILL (default: 1)")


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
    parser.add_argument("--metrics", metavar="[HOST:]PORT", default=None,
                        type=_probe_address,
                        help="serve GET /metrics, /healthz and /readyz on a TCP listener of "
                             "their own (HOST defaults to 127.0.0.1; with --workers N, worker "
                             "i on PORT+i); nothing else is answered there (default: off)")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="event loop: uvloop when installed (auto), or asyncio's own")


_DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_PATTERN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
"""What `--domain` accepts: DNS labels of letters, digits and hyphens, separated by dots."""


def _probe_address(text: str) -> ProbeAddress:
    try:
        return parse_probe_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def _open_probes(serving: Serving, address: ProbeAddress | None,
                       broker: Reachable | None = None, worker: int | None = None) -> int:
    """The metrics and health listener, when `--metrics` asks for one (its port, else 0);
    worker i of `--workers` on the port after i others."""
    if address is None:
        return 0
    if worker is not None and address.port:
        address = ProbeAddress(address.host, address.port + worker)
    runner = web.AppRunner(Probes(serving.host, broker, worker).application(),
                           access_log=None, handle_signals=False)
    await serving.add_runner(runner)
    try:
        port = await start_probes(runner, address)
    except OSError as exc:
        raise UsageError(f"--metrics: cannot listen on {address.host}:{address.port}: "
                         f"{exc.strerror or exc}") from None
    log.info("metrics and health on http://%s:%d/metrics", address.host, port)
    return port


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
    if args.command in backups.COMMANDS:
        return backups.run(args)
    if args.command == "dev":
        return _dev(args)
    if args.command == "conformance":
        return conformance.run(args)
    try:
        if not 0 <= args.port <= 65535:
            raise UsageError(f"--port must be from 0 to 65535, got {args.port}")
        settings = _settings(args)
        logs.configure(args.log_format)
        if args.command == "host":
            return _host_command(args, settings)
        return _serve_command(args, settings)
    except UsageError as exc:
        print(f"webxdc-rt: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve_command(args: argparse.Namespace, settings: HostSettings) -> int:
    """`serve` and `demo`: the app and members checked, then one process or `--workers`."""
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
    if workers == 1:
        _run(_serve(source, member_names, args, settings, broker), args.loop)
        return 0
    _check_workers(workers, broker, args.store)

    def worker(index: int, links: bool, port: int) -> None:
        worker_args = argparse.Namespace(**{**vars(args), "port": port})
        _run(_serve(source, member_names, worker_args, settings, broker, worker=index,
                    links=links), args.loop)

    return run_workers(workers, args.host, args.port, worker)


def _host_command(args: argparse.Namespace, settings: HostSettings) -> int:
    """`host`: one process, or `--workers` on one port; worker 0 has the admin socket."""
    _check_store_url(args.store)
    broker = _broker_address(args.broker)
    if args.workers == 1:
        _run(_host(args, settings, broker), args.loop)
        return 0
    _check_workers(args.workers, broker, args.store)

    def worker(index: int, links: bool, port: int) -> None:
        worker_args = argparse.Namespace(**{**vars(args), "port": port,
                                               "json": args.json and links})
        _run(_host(worker_args, settings, broker, worker=index), args.loop)

    return run_workers(args.workers, args.host, args.port, worker)


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


def _run(main_coroutine: Coroutine[Any, Any, None], loop: str) -> None:
    """Run the host on uvloop when asked or, for `auto`, when it is installed; a taken
    port is a UsageError."""
    try:
        _run_loop(main_coroutine, loop)
    except ListenFailed as exc:
        raise UsageError(str(exc)) from None
    except BaseExceptionGroup as group:
        # Raised while serving (a --metrics port taken), a usage error leaves through the
        # task group of `Serving`, which wraps it: it is still one line, status 2.
        usage, other = group.split((UsageError, ListenFailed))
        if usage is None or other is not None:
            raise
        first: BaseException = usage
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise UsageError(str(first)) from None


def _run_loop(main_coroutine: Coroutine[Any, Any, None], loop: str) -> None:
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
        address = parse_redis_url(url)
        if address.tls is not None:  # unreadable TLS files are refused at start
            checked_tls_context(address.tls)
    except ValueError as exc:
        raise UsageError(f"--broker {exc}") from None
    # redis-cli's own variable: a password kept out of the command line (and so out of
    # `ps`), e.g. from a systemd EnvironmentFile.
    password = os.environ.get(REDIS_PASSWORD_VARIABLE)
    if address.password is None and password:
        address = dataclasses.replace(address, password=password)
    return address


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


def _open_store(url: str | None, data_dir: str, limits: StoreLimits) -> StoreApi:
    """The store `--store` names, else SQLite in the data directory; UsageError if it
    cannot be opened."""
    if url is None:
        try:
            store = SqliteStore.in_directory(data_dir, limits=limits)
        except _STORAGE_FAILURES as exc:
            raise UsageError(f"cannot open the data directory {data_dir}: {exc}") from None
        warning = shared_dir_warning(data_dir)
        if warning is not None:
            log.warning("%s", warning)
        return store
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
    """Share `source` into the chat and serve it until stopped; print the links first."""
    _raise_open_file_limit()
    store, registry, pages = _open_data(args.data_dir, args.chat, member_names, source,
                                        getattr(args, "store", None), settings.store)
    chat = registry.chats[pages[0].app.chat_id]
    # Unreachable Redis is not fatal: it is warned about once and retried in the background,
    # and meanwhile this process's pages reach one another.
    broker = None
    if broker_address is not None:
        broker = open_redis_broker(broker_address, settings.broker,
                             settings.realtime.max_payload_bytes)
    host = Host(registry, {pages[0].app.id: source}, settings, broker=broker, store=store,
                shares=None if broker is None else broker.shares)
    listen = Listen(args.host, args.port, reuse_port=worker is not None)
    async with Serving(host, listen, broker=broker) as serving:
        await _open_probes(serving, args.metrics, broker, worker)
        for page in pages if links else ():
            url = host.invite_url(page, serving.port)
            if args.json:
                print(json.dumps({"member": page.member.name, "url": url,
                                  "self_addr": page.self_addr, "app": source.name,
                                  "chat": chat.name}), flush=True)
            else:
                print(f"{page.member.name}: {url}", flush=True)
        through = [f"realtime shared through {broker.address}"] if broker else []
        # The store's URL may hold a password: only its kind is named.
        through += ["chats and updates in PostgreSQL"] if getattr(args, "store", None) else []
        through += [f"pid {os.getpid()}"] if worker is not None else []
        log.info("serving %r to chat %r on %s:%d%s; Ctrl-C stops", source.name, chat.name,
                 args.host, serving.port, "".join(f", {part}" for part in through))
        await serving.stopped()


async def _host(args: argparse.Namespace, settings: HostSettings,
                broker_address: RedisAddress | None, worker: int | None = None) -> None:
    """Serve every chat of the data folder, with the admin listener on its socket (worker 0
    alone of `--workers`), following the changes other processes make, until stopped."""
    _raise_open_file_limit()
    admin = worker in (None, 0)
    broker = None
    if broker_address is not None:
        broker = open_redis_broker(broker_address, settings.broker,
                                   settings.realtime.max_payload_bytes)
    manager, socket_path = _open_service(args, settings, broker, admin)
    host = manager.host
    listen = Listen(args.host, args.port, reuse_port=worker is not None)
    async with Serving(host, listen, broker=broker) as serving:
        manager.port = serving.port
        if admin:
            await _open_admin_socket(serving, manager, socket_path)
        if isinstance(manager.store, SharedChats):
            serving.run_task(ChatFollower(manager, manager.store).run(), "follow chat changes")
        metrics_port = await _open_probes(serving, args.metrics, broker, worker)
        if args.json:
            print(json.dumps({"host": args.host, "port": serving.port,
                              "metrics_port": metrics_port or None,
                              "admin_socket": str(socket_path),
                              "data_dir": str(args.data_dir)}), flush=True)
        through = [f"admin socket {socket_path}"] if admin else ["admin socket in worker 0"]
        through += [f"realtime shared through {broker.address}"] if broker else []
        through += [f"pid {os.getpid()}"] if worker is not None else []
        log.info("hosting %s on %s:%d; %s; Ctrl-C stops", counted(len(host.registry.chats),
                 "chat"), args.host, serving.port, "; ".join(through))
        await serving.stopped()


def _open_service(args: argparse.Namespace, settings: HostSettings,
                  broker: RedisBroker | RedisClusterBroker | None = None,
                  admin: bool = True) -> tuple[Manager, Path]:
    """The store of `--store` or the data folder, its chats in a host (realtime through
    `broker`) and a manager, home pages mounted; the admin socket's path claimed when this
    process is to have it. UsageError for what the user can fix."""
    try:  # the admin socket lives there, whichever store holds the chats
        make_private_dir(args.data_dir)
    except OSError as exc:
        raise UsageError(f"cannot create the data directory {args.data_dir}: "
                         f"{exc.strerror or exc}") from None
    store = _open_store(args.store, args.data_dir, settings.store)
    socket_path = admin_socket_path(args.data_dir)
    try:
        if admin:
            claim_socket_path(socket_path)
        host = Host(store.load_registry(), {}, settings, broker=broker, store=store,
                    shares=None if broker is None else broker.shares)
        uploads = UploadPolicy(Path(args.data_dir) / UPLOADS_FILE_NAME,
                               bool(settings.home.member_uploads))
        manager = Manager(host, store, uploads=uploads)
        manager.ensure_homes()
    except _STORAGE_FAILURES + (AdminSocketError, ManageError) as exc:
        store.close()
        raise UsageError(f"cannot host the data directory {args.data_dir}: {exc}") from None
    for problem in manager.serve_stored_apps():
        log.warning("%s", problem)
    host.mount(HomeSite(manager).resolve)
    return manager, socket_path


async def _open_admin_socket(serving: Serving, manager: Manager, socket_path: Path) -> None:
    """Serve the admin API on its Unix socket (0600) while the host serves, and remove the
    socket file on the way out unless another process has put its own there meanwhile."""
    runner = web.AppRunner(AdminApi(manager).application(), access_log=None,
                           handle_signals=False)
    await serving.add_runner(runner)
    try:
        with bind_private(socket_path):
            await web.UnixSite(runner, str(socket_path)).start()
        inode = socket_path.stat().st_ino
    except OSError as exc:
        raise UsageError(f"cannot create the admin socket {socket_path}: "
                         f"{exc.strerror or exc}") from None

    def remove_socket() -> None:
        with contextlib.suppress(OSError):
            if socket_path.stat().st_ino == inode:
                socket_path.unlink()

    serving.on_exit(remove_socket)


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
    except _STORAGE_FAILURES as exc:
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
