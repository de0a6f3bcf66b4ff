"""The workers of `webxdc-rt host --workers N` do not outlive their supervisor: killed
outright, it takes them with it, each through its graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from hosting import PROBE_APP, two_workers
from peers import eventually

from webxdc_rt.client.link import socket_target

pytestmark = pytest.mark.timeout(180)


async def test_workers_stop_when_their_supervisor_is_killed(
        tmp_path, postgres_server, redis_server):
    host, metrics = await two_workers(tmp_path / "w", postgres_server.url, redis_server.url)
    workers = _children(host.pid)
    try:
        assert len(workers) == 2
        await host.cli("chat", "create", "team", "--members", "alice,bob")
        await host.cli("app", "share", "team", str(PROBE_APP))
        url = (await host.cli("link", "show", "team", "alice", "--json")).json()
        async with aiohttp.ClientSession() as session:
            pages = [await _page(session, url["apps"][0]["url"]) for _ in range(8)]

            os.kill(host.pid, signal.SIGKILL)

            await eventually(lambda: not any(map(_alive, workers)), timeout=30)
            # Each page was told the host is going away, as on a stop by the service manager.
            codes = [await _close_code(page) for page in pages]
            assert codes == [aiohttp.WSCloseCode.GOING_AWAY] * len(pages)
        assert _free(host.port) and _free(metrics) and _free(metrics + 1)
    finally:
        for worker in filter(_alive, workers):  # nor do they outlive a failed test
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker[0], signal.SIGKILL)
        await host.stop()
    for index in (0, 1):
        assert f"worker {index}: stopping" in host.stderr, host.stderr
    assert "Traceback" not in host.stderr, host.stderr
    assert not host.admin_socket.exists()  # worker 0 removed it on its way out


def _children(parent: int) -> list[tuple[int, str]]:
    """The processes whose parent is `parent` now, each as its pid and start time (which
    tells it from a later process given the same pid)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = _stat_fields(stat.read_text())
            if int(fields[1]) == parent:
                children.append((int(stat.parent.name), fields[19]))
    return children


def _alive(process: tuple[int, str]) -> bool:
    """Whether `process` (pid, start time) runs; a zombie, ended and not yet reaped, does
    not."""
    pid, started = process
    try:
        fields = _stat_fields(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


def _stat_fields(stat: str) -> list[str]:
    """The fields of /proc/PID/stat from the third on (state, ppid, ...): the second, the
    name in parentheses, may hold spaces and parentheses itself."""
    return stat.rsplit(")", 1)[1].split()


def _free(port: int) -> bool:
    """Whether a new server could listen on `port` of 127.0.0.1 (no SO_REUSEPORT)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        probe.listen()
        return True


async def _page(session: aiohttp.ClientSession,
                url: str) -> aiohttp.ClientWebSocketResponse:
    """A page's socket for invite link `url`, once the worker it reaches knows the link
    (a worker learns of a change made through another just after the command returned)."""
    ws_url, host_header, token = socket_target(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            ws = await session.ws_connect(
                ws_url, headers={"Host": host_header, "Authorization": f"Bearer {token}"})
            break
        except aiohttp.WSServerHandshakeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)
    await ws.receive(timeout=10)  # its hello
    return ws


async def _close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """The code of the close frame the host sent on `ws` (None if it sent none), reading
    past anything it sent before."""
    while True:
        message = await ws.receive(timeout=30)
        if message.type is aiohttp.WSMsgType.CLOSE:
            return int(message.data)
        if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return None
