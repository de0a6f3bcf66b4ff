"""`webxdc-rt conformance`: `pack` writes the app; `run` refuses unknown hosts with one line
and exit status 2, and says what to install when Playwright is missing."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from webxdc_rt.cli import main
from webxdc_rt.conformance import runner

COMMAND = [sys.executable, "-m", "webxdc_rt", "conformance"]


def test_pack_writes_the_app(tmp_path: Path) -> None:
    target = tmp_path / "rt.xdc"
    done = subprocess.run([*COMMAND, "pack", str(target)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "index.html" in zipfile.ZipFile(target).namelist()


def test_an_unknown_host_is_one_line_and_exit_2() -> None:
    done = subprocess.run([*COMMAND, "run", "--hosts", "webxdc-rt,nowhere"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "webxdc-rt: error: unknown host nowhere; known: webxdc-rt, webxdc-dev"]


def test_without_playwright_it_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(runner, "async_playwright", None)
    assert main(["conformance", "run", "--hosts", "webxdc-rt"]) == 2
    assert "pip install 'webxdc-rt[conformance]'" in capsys.readouterr().err


def test_an_unreachable_host_is_one_line_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm, no node
    assert main(["conformance", "run", "--hosts", "webxdc-dev",
                 "--npm-dir", str(tmp_path / "npm")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["webxdc-rt: error: webxdc-dev unreachable: webxdc-dev needs Node.js and "
                      "npm (Debian: apt install npm)"]
