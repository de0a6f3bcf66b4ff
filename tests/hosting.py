"""Helpers for tests of `webxdc-rt host`: the real command in a subprocess, the management
commands run as a user would, the admin socket, and `.xdc` files made on the spot."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import signal
import socket
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from peers import eventually, joined
from ports import free_ports

from webxdc_rt.client import InviteRefused, connect

COMMAND = [sys.executable, "-m", "webxdc_rt"]
PROBE_APP = Path(__file__).parent / "apps" / "probe"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))


TINY_PNG = (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00\x00"))
            + _png_chunk(b"IEND", b""))
"""The smallest PNG: one transparent pixel."""


def make_xdc(path: Path, name: str | None = None, icon: bool = False,
             extra: dict[str, bytes] | None = None) -> Path:
    """The probe app packed as a `.xdc` at `path`, with a manifest name and an icon if
    asked."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in PROBE_APP.rglob("*"):
            archive.write(file, file.relative_to(PROBE_APP).as_posix())
        if name is not None:
            archive.writestr("manifest.toml", f'name = "{name}"\n')
        if icon:
            archive.writestr("icon.png", TINY_PNG)
        for file_name, data in (extra or {}).items():
            archive.writestr(file_name, data)
    return path


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A ZIP archive holding `files`, in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass
class Done:
    """What a finished management command left."""

    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Its `--json` answer."""
        assert self.status == 0, self.stderr
        return json.loads(self.stdout)


_STARTS = itertools.count(1)
"""Numbers the host processes of a run, for their stderr logs."""


class HostProcess:
    """`webxdc-rt host` running on a data folder, on a free port of 127.0.0.1."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self.admin_socket = data_dir / "admin.sock"
        self.stderr = ""
        """What it wrote to stderr, once stopped."""
        self.log = data_dir.parent / f"{data_dir.name}-host-{next(_STARTS)}.log"
        """Where its stderr goes while it runs: a file, which never fills up as a pipe
        that nobody reads does (and then stops the host at its next log line)."""
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, *extra: str, port: int = 0) -> HostProcess:
        """Start it (on `port`, or a free one) and wait until it serves (its `--json`
        line)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *COMMAND, "host", "--data-dir", str(self.data_dir), "--port", str(port),
                "--json", *extra, stdout=asyncio.subprocess.PIPE, stderr=log)
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if not line:
            await self._proc.wait()
            raise AssertionError(self.log.read_text())
        ready = json.loads(line)
        self.ready: dict[str, Any] = ready
        """Its `--json` line."""
        self.port = ready["port"]
        assert Path(ready["admin_socket"]) == self.admin_socket
        return self

    @property
    def pid(self) -> int:
        """Its process id (with `--workers`, the supervisor's)."""
        assert self._proc is not None
        return self._proc.pid

    async def stop(self) -> int:
        """Stop it with SIGTERM; its exit status. Its stderr is kept in `stderr`, and
        printed, so that a test that fails shows it (pytest shows what a failed test
        printed)."""
        assert self._proc is not None
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(self._proc.wait(), 30)
        self.stderr = self.log.read_text()
        print(f"--- stderr of the host on {self.data_dir.name} (exit status {status}) ---\n"
              f"{self.stderr}", end="")
        # Read stdout to its end, so that the pipe is closed before the test's loop is.
        assert self._proc.stdout is not None
        await self._proc.stdout.read()
        return status

    async def cli(self, *args: str) -> Done:
        """Run `webxdc-rt ARGS --data-dir DIR` as a user would."""
        proc = await asyncio.create_subprocess_exec(
            *COMMAND, *args, "--data-dir", str(self.data_dir),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return Done(proc.returncode, stdout.decode(), stderr.decode())

    async def admin(self, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
        """A raw request to the admin socket: its status and body."""
        connector = aiohttp.UnixConnector(path=str(self.admin_socket))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.request(method, f"http://admin{path}", **kwargs) as response:
                return response.status, await response.read()

    async def metrics(self) -> str:
        """The text of `/metrics`."""
        status, body = await self.admin("GET", "/metrics")
        assert status == 200
        return body.decode()


async def two_workers(data_dir: Path, store: str, broker: str) -> tuple[HostProcess, int]:
    """`webxdc-rt host --workers 2` over `store` and `broker`, once both workers serve;
    with the first of its two metrics ports (worker i answers on that port + i)."""
    metrics = free_ports(2)
    host = await HostProcess(data_dir).start("--store", store, "--broker", broker,
                                             "--workers", "2", "--metrics", str(metrics))
    try:
        for port in (metrics, metrics + 1):
            await eventually(lambda port=port: answers(port), timeout=60)
    except BaseException:
        await host.stop()
        raise
    return host, metrics


def answers(port: int) -> bool:
    """Whether something listens on `port` of 127.0.0.1."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class LoopbackResolver(AbstractResolver):
    """Resolves `*.localhost` to 127.0.0.1, as browsers do (RFC 6761)."""

    async def resolve(self, host: str, port: int = 0,
                      family: int = 0) -> list[ResolveResult]:
        import socket
        if host != "localhost" and not host.endswith(".localhost"):
            raise OSError(f"{host} is not a name of this machine")
        return [{"hostname": host, "host": "127.0.0.1", "port": port,
                 "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        """Nothing to release."""


def web_session() -> aiohttp.ClientSession:
    """An HTTP client that reaches pages at `<label>.localhost` and keeps their cookies."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=LoopbackResolver()))


def origin_of(url: str) -> str:
    """The origin of a link."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def token_of(url: str) -> str:
    """The token of an invite link."""
    return url.rsplit("/", 1)[-1]


def assert_one_line_error(done: Done, fragment: str) -> None:
    """The command failed with exit status 2 and one line on stderr naming `fragment`."""
    assert done.status == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("webxdc-rt: error: ") and done.stderr.count("\n") == 1, \
        done.stderr
    assert fragment in done.stderr and "Traceback" not in done.stderr, done.stderr


async def family(service: HostProcess, tmp_path: Path) -> dict:
    """A chat of alice and bob, then carol added, with two apps shared; the links of each
    member by name."""
    created = (await service.cli("chat", "create", "family", "--members", "alice,bob",
                                 "--json")).json()
    assert [links["member"] for links in created["links"]] == ["alice", "bob"]
    carol = (await service.cli("member", "add", "family", "carol", "--json")).json()
    assert carol["member"] == "carol" and carol["url"]
    await service.cli("app", "share", "family", str(PROBE_APP), "--json")
    xdc = make_xdc(tmp_path / "second.xdc", name="Second", icon=True)
    shared = (await service.cli("app", "share", "family", str(xdc), "--from", "bob",
                                "--json")).json()
    assert shared["name"] == "Second" and shared["shared_by"] == "bob"
    assert [link["member"] for link in shared["links"]] == ["alice", "bob", "carol"]
    return {name: (await service.cli("link", "show", "family", name, "--json")).json()
            for name in ("alice", "bob", "carol")}


async def names_are_kept_as_checked(open_store: Callable[[], Any]) -> None:
    """Through a `Manager` over the store `open_store` opens: names are kept in NFC, and a
    name that looks like a member's, even after the store is opened again, is refused; a
    member named like another's id is removed by name, the other by id only."""
    from webxdc_rt.host.app import Host
    from webxdc_rt.service.manage import ManageError, Manager

    def manager_of(store: Any) -> Manager:
        return Manager(Host(store.load_registry(), {}, store=store), store)

    store = open_store()
    manager = manager_of(store)
    chat = manager.create_chat("t\u00e9am", ["alice", "m1", "Zoe\u0308"])
    assert [m.name for m in chat.members] == ["alice", "m1", "Zo\u00eb"]
    assert chat.members[0].id == "m1"
    store.close()
    store = open_store()
    manager = manager_of(store)
    chat = manager.chat("te\u0301am")
    for lookalike in ("\u0430lice", "ALICE", "Zo\u00eb", "\uff41lice"):
        try:
            manager.add_member(chat, lookalike)
        except ManageError as exc:
            assert exc.status == 409, exc
        else:
            raise AssertionError(f"{lookalike!r} was accepted")
    assert manager.add_member(chat, "\U0001f469\u200d\U0001f4bb").name == "👩‍💻"
    await manager.remove_member(chat, manager.member(chat, "m1"))
    assert [m.name for m in chat.members] == ["alice", "Zoë", "👩‍💻"]
    await manager.remove_member(chat, manager.member_by_id(chat, "m1"))
    assert [m.name for m in chat.members] == ["Zoë", "👩‍💻"]
    store.close()
    store = open_store()
    assert [m.name for m in manager_of(store).chat("téam").members] == ["Zoë", "👩‍💻"]
    store.close()


async def only_new_links_work(host: HostProcess, old: dict[str, str], chat: str,
                              member: str) -> None:
    """Every link in `old` is refused by `host`; `member`'s new link (from `link show`)
    joins, with the same `selfAddr` as before."""
    for link in old.values():
        try:
            peer = await connect(link)
        except InviteRefused:
            continue
        await peer.close()
        raise AssertionError(f"an old link still works: {link}")
    new = (await host.cli("link", "show", chat, member, "--json")).json()
    fresh = await joined(new["apps"][0]["url"])
    assert fresh.peer.self_addr == new["apps"][0]["self_addr"]
    await fresh.peer.close()
