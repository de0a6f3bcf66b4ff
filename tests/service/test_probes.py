"""`--metrics HOST:PORT`: metrics and health scraped over TCP from `host` and from each
worker of `serve --workers`, with the admin API out of reach there."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
from hosting import HostProcess
from peers import eventually
from ports import free_port
from serving import ServeProcess

PROBE = Path(__file__).parent.parent / "apps" / "probe"


async def _get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"http://127.0.0.1:{port}{path}") as response:
            return response.status, await response.text()


async def test_host_metrics_and_health_are_on_their_own_listener_without_the_admin_api(
        tmp_path):
    service = await HostProcess(tmp_path / "d").start("--metrics", "127.0.0.1:0")
    try:
        port = int(service.ready["metrics_port"])
        await service.cli("chat", "create", "team", "--members", "alice,bob")
        status, text = await _get(port, "/metrics")
        assert status == 200 and "webxdc_rt_chats 1.0" in text
        assert "process_resident_memory_bytes" in text
        assert await _get(port, "/healthz") == (200, "ok\n")
        assert await _get(port, "/readyz") == (200, "ready\n")
        # Nothing of the admin API answers here, by any method.
        for method, path in (("POST", "/v1/chat/list"), ("POST", "/v1/chat/create"),
                             ("GET", "/v1/chat/list"), ("POST", "/metrics"),
                             ("HEAD", "/metrics"), ("GET", "/")):
            status, _ = await _get(port, path, method)
            assert status in (404, 405), (method, path, status)
        # Not on the public port either.
        assert (await _get(service.port, "/metrics"))[0] != 200
    finally:
        assert await service.stop() == 0


async def test_without_the_option_no_listener_is_opened(tmp_path):
    service = await HostProcess(tmp_path / "d").start()
    try:
        assert service.ready["metrics_port"] is None
    finally:
        assert await service.stop() == 0


async def test_each_worker_answers_on_its_own_port_and_is_not_ready_without_redis(
        tmp_path, postgres_server, redis_server):
    port = free_port()
    workers = ServeProcess(tmp_path, postgres_server.url, redis_server.url,
                           "--workers", "2", "--metrics", f"127.0.0.1:{port}")
    try:
        for index in (0, 1):
            await eventually(lambda index=index: _answers(port + index), timeout=60)
            status, text = await _get(port + index, "/metrics")
            assert status == 200 and f'webxdc_rt_worker{{worker="{index}"}} 1.0' in text
            await eventually(lambda index=index: _ready(port + index), timeout=60)
        redis_server.stop()
        for index in (0, 1):
            await eventually(lambda index=index: not _ready(port + index), timeout=60)
            status, text = await _get(port + index, "/readyz")
            assert status == 503 and "broker: Redis is not reachable" in text
            assert (await _get(port + index, "/healthz"))[0] == 200
    finally:
        assert workers.stop() == 0, workers.stderr()


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def test_the_redis_password_comes_from_rediscli_auth_not_the_command_line(
        tmp_path, redis_server):
    redis_server.command("CONFIG", "SET", "requirepass", "kept-out-of-ps")
    port = free_port()
    env = {**os.environ, "REDISCLI_AUTH": "kept-out-of-ps"}
    process = subprocess.Popen(
        [sys.executable, "-m", "webxdc_rt", "serve", str(PROBE), "--members", "alice,bob",
         "--port", "0", "--json", "--data-dir", str(tmp_path / "d"),
         "--broker", redis_server.url, "--metrics", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline()
        await eventually(lambda: _ready(port))  # both Redis connections authenticated
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr


def test_a_taken_metrics_port_is_a_one_line_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "webxdc_rt", "host", "--port", "0", "--data-dir",
             str(tmp_path / "d"), "--metrics", str(port)],
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"webxdc-rt: error: --metrics: cannot listen on "
                                     f"127.0.0.1:{port}")
    assert "Traceback" not in result.stderr
