"""The wheel as a user gets it: built (`python -m build`), checked (`twine check`), installed
with its dependencies alone into a fresh venv (no system site packages, nothing of this
checkout on the path); its `webxdc-rt demo` serves the sketch pad, and the pytest examples
of the README and docs pass in a project that has only the wheel and its `pytest` extra."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from docs_blocks import ROOT, all_blocks

pytest.importorskip("build", reason="the release checks need the test extra (build, twine)")
pytest.importorskip("twine", reason="the release checks need the test extra (build, twine)")

PYTEST_BLOCKS = [block for block in all_blocks()
                 if (block.directive or "").startswith("run: pytest")]
APP_BLOCK = next(block for block in all_blocks()
                 if block.language == "sh" and block.code.startswith("mkdir -p hello"))
CLEAN_ENV = {name: value for name, value in os.environ.items()
             if name not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS")}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel and its `pytest` extra installed."""
    folder = tmp_path_factory.mktemp("wheel")
    # No build isolation: the build backend is the one this environment has (offline).
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(folder / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next((folder / "dist").glob("webxdc_rt-*.whl"))
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True,
                   timeout=120)
    installed = subprocess.run(
        [str(folder / "venv" / "bin" / "pip"), "install", "--quiet",
         "--disable-pip-version-check", f"{wheel}[pytest]"],
        capture_output=True, text=True, timeout=600, env=CLEAN_ENV, cwd=folder)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return folder / "venv"


def test_the_installed_command_serves_the_demo(venv: Path, tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [str(venv / "bin" / "webxdc-rt"), "demo", "--port", "0", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**CLEAN_ENV, "XDG_DATA_HOME": str(tmp_path)})
    try:
        assert demo.stdout is not None
        link = urlsplit(json.loads(demo.stdout.readline())["url"])
        connection = http.client.HTTPConnection("127.0.0.1", link.port, timeout=10)
        connection.request("GET", link.path, headers={"Host": link.netloc})
        invited = connection.getresponse()
        invited.read()
        cookie = invited.getheader("Set-Cookie", "").split(";")[0]
        assert invited.status in (302, 303) and cookie
        connection.request("GET", "/", headers={"Host": link.netloc, "Cookie": cookie})
        page = connection.getresponse()
        assert page.status == 200 and b"sketch" in page.read().lower()
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=20)


def test_the_pytest_examples_pass_in_a_fresh_project(venv: Path, tmp_path: Path) -> None:
    subprocess.run(["bash", "-euo", "pipefail", "-c", APP_BLOCK.code], cwd=tmp_path,
                   check=True, timeout=30)
    for number, block in enumerate(PYTEST_BLOCKS):
        (tmp_path / f"test_example_{number}.py").write_text(block.code)
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q",
                             "-p", "no:cacheprovider"],
                            cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(PYTEST_BLOCKS)} passed" in result.stdout
