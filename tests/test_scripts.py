"""scripts/demo installs only what is missing or changed: with the venv's stamp of
pyproject.toml current it starts the command without calling pip (so it works offline), and
it says how to run the command afterwards. The venv here is a stand-in whose `python` and
`webxdc-rt` record how they were called."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = ".webxdc-rt-installed"


def _fake_venv(folder: Path) -> Path:
    venv = folder / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "webxdc-rt"):
        program = venv / "bin" / name
        program.write_text(f'#!/bin/sh\necho "{name} $*" >> "{folder}/calls"\n')
        program.chmod(0o755)
    return venv


def _demo(venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts" / "demo"), "--port", "0"], text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, "WEBXDC_RT_VENV": str(venv)})


def _current_stamp() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{digest} extras=\n"


def test_demo_starts_without_pip_when_the_venv_is_current(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path)
    (venv / STAMP).write_text(_current_stamp())
    result = _demo(venv)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "calls").read_text() == "webxdc-rt demo --port 0\n"
    assert f"{venv}/bin/webxdc-rt" in result.stderr
    assert f"source {venv}/bin/activate" in result.stderr


def test_demo_installs_when_pyproject_changed_and_records_it(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path)
    (venv / STAMP).write_text("an older pyproject.toml extras=\n")
    result = _demo(venv)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("python -m pip install") and calls[0].endswith(f"-e {ROOT}")
    assert calls[1] == "webxdc-rt demo --port 0"
    assert (venv / STAMP).read_text() == _current_stamp()


def test_the_repository_tracks_no_symbolic_link() -> None:
    # A link committed by mistake (a node_modules linked to another checkout) points
    # nowhere on a fresh machine, or at itself in the checkout it named.
    listed = subprocess.run(["git", "ls-files", "--stage"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    assert [line for line in listed if line.startswith("120000 ")] == []
