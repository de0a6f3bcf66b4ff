"""Every code block of the README and of docs/ runs as written (see docs_blocks.py for how a
block says what to do with it): shell blocks in bash against a `webxdc-rt host` this module
starts, with `webxdc-rt` and `python` on the PATH; Python blocks in Python. The generated
pages are current, and every block that is not run says why."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from docs_blocks import ROOT, RUNNABLE, Block, all_blocks
from pg_server import PostgresServer
from redis_server import RedisServer

BLOCKS = all_blocks()
RUN_HERE = [block for block in BLOCKS
            if block.language in RUNNABLE and not (block.directive or "").startswith(
                ("not run", "run: pytest"))]
SOURCES = ROOT / "src"
READY_MARKS = ("http://", "Ctrl-C stops")
"""What a serving command prints once it serves."""
WITH_SERVERS = "run: with a PostgreSQL in $STORE and a Redis in $BROKER"


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The folder the blocks run in, one data folder, and `webxdc-rt host` serving it, as a
    reader who followed the README would have them; yields the environment to run in."""
    folder = tmp_path_factory.mktemp("tour")
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    for name, module in (("webxdc-rt", "-m webxdc_rt"), ("python", "")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {sys.executable} {module} "$@"\n')
        shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "PYTHONPATH": str(SOURCES), "XDG_DATA_HOME": str(folder / "data"),
           "BROWSER": "true",  # `webxdc-rt dev` opens its dashboard with this command
           "HOME": str(folder)}
    host = _start(["webxdc-rt", "host", "--port", "0"], folder, env)
    try:
        _wait_until_serving(host)
        env["TOUR"] = str(folder)
        yield env
    finally:
        _stop(host)


def _start(command: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_until_serving(process: subprocess.Popen[str]) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if any(mark in line for mark in READY_MARKS):
            return lines
    raise AssertionError(f"exited {process.wait()} before serving:\n{''.join(lines)}")


def _stop(process: subprocess.Popen[str]) -> int:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


RESTARTED = "run: with an invite link as its argument, the host restarted once it is ready"
"""A program given a link that prints `ready` when it is; then `serve` is stopped and
started again on the same port and data folder (the same links)."""


class _Serving:
    """`webxdc-rt serve` of the tour's `hello` to alice and bob, restartable."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self.url = ""
        self._process = self._serve("0")

    def _serve(self, port: str) -> subprocess.Popen[str]:
        process = _start(["webxdc-rt", "serve", "hello", "--members", "alice,bob", "--port",
                          port, "--json", "--chat", "python-peer"], Path(self._env["TOUR"]),
                         self._env)
        lines = _wait_until_serving(process)
        self.url = json.loads(lines[-1])["url"]
        return process

    def restart(self) -> None:
        """Stop it, and serve again on the same port."""
        assert _stop(self._process) == 0
        url = self.url
        self._process = self._serve(str(urlsplit(url).port))
        assert self.url == url, "a restarted serve hands out other links"

    def stop(self) -> None:
        """Stop it."""
        _stop(self._process)


@contextlib.contextmanager
def _invite_link(env: dict[str, str]) -> Iterator[_Serving]:
    serving = _Serving(env)
    try:
        yield serving
    finally:
        serving.stop()


def _run_across_a_restart(program: Path, env: dict[str, str]) -> None:
    """Run `program` with an invite link; restart the host once it printed `ready`."""
    with _invite_link(env) as serving:
        process = _start(["python", str(program), serving.url], program.parent, env)
        assert process.stdout is not None
        output: list[str] = []
        for line in process.stdout:
            output.append(line)
            if line == "ready\n":
                break
        try:
            serving.restart()
            rest, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                _stop(process)
        assert process.returncode == 0, "".join(output) + rest


@pytest.mark.parametrize("block", RUN_HERE, ids=[block.id for block in RUN_HERE])
def test_block_runs_as_written(block: Block, tour: dict[str, str]) -> None:
    folder = Path(tour["TOUR"])
    if block.language == "python":
        program = folder / f"block_{block.line}.py"
        program.write_text(block.code)
        if block.directive == RESTARTED:
            _run_across_a_restart(program, tour)
            return
        with contextlib.ExitStack() as stack:
            arguments: list[str] = []
            if block.directive == "run: with an invite link as its argument":
                arguments = [stack.enter_context(_invite_link(tour)).url]
            else:
                assert block.directive is None, f"unknown directive {block.directive!r}"
            result = subprocess.run(["python", str(program), *arguments], cwd=folder,
                                    env=tour, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    elif block.directive == WITH_SERVERS:
        _run_with_servers(block, folder / f"servers-{block.line}", tour)
    elif block.directive == "run: serves":
        # A data folder of its own: the module's host already serves the shared one.
        alone = {**tour, "XDG_DATA_HOME": str(folder / f"data-{block.line}")}
        process = _start(["bash", "-c", block.code], folder, alone)
        _wait_until_serving(process)
        assert _stop(process) == 0
    else:
        assert block.directive is None, f"unknown directive {block.directive!r}"
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=folder,
                                env=tour, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def _run_with_servers(block: Block, folder: Path, env: dict[str, str]) -> None:
    """Run a shell block in a folder of its own with a throwaway PostgreSQL and Redis."""
    folder.mkdir()
    postgres = PostgresServer().start()
    redis = RedisServer(folder / ".redis").start()
    try:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=folder,
                                env={**env, "STORE": postgres.url, "BROKER": redis.url},
                                capture_output=True, text=True, timeout=120)
    finally:
        redis.stop()
        postgres.remove()
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_block_that_is_not_run_says_why() -> None:
    not_run = [block for block in BLOCKS if (block.directive or "").startswith("not run")]
    assert all(len(block.directive or "") > len("not run: ") + 10 for block in not_run)
    print(f"{len(RUN_HERE)} blocks run here, {len(not_run)} not run:",
          *(f"{block.id}: {block.directive}" for block in not_run), sep="\n  ")


def test_generated_pages_are_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
