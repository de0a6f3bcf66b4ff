"""The conformance app as package data, and `pack`, which writes it as a `.xdc`."""

from __future__ import annotations

import zipfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["APP_FILES", "app_files", "pack"]

APP_FILES = ("index.html", "style.css", "items.js", "steps.js", "rows.js", "app.js",
             "manifest.toml", "icon.png")
"""Every file of the app, in the order they are packed (`index.html` first)."""


def _app_folder() -> Traversable:
    return resources.files("webxdc_rt.conformance").joinpath("app")


def app_files() -> dict[str, bytes]:
    """The app's files by name, read from the installed package."""
    folder = _app_folder()
    return {name: folder.joinpath(name).read_bytes() for name in APP_FILES}


def pack(path: str | Path) -> Path:
    """Write the conformance app to `path` as a `.xdc` (a ZIP with `index.html` at its root,
    a manifest with its name, and an icon); return the path."""
    target = Path(path)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in app_files().items():
            archive.writestr(name, data)
    return target
