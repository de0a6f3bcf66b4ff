"""The app container: a folder with `index.html` at its root.

`open_app` checks the container before anything is served and gives a clear
`InvalidContainer` error naming the problem. `AppSource.read` maps a request path to a file
of the app, refusing anything outside it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["InvalidContainer", "AppSource", "FolderApp", "open_app", "normalize_app_path"]


class InvalidContainer(ValueError):
    """The given app is not a usable webxdc container; the message says why."""


def normalize_app_path(request_path: str) -> str | None:
    """Turn a URL path into a file name inside the app, or None if it points outside.

    `/` maps to `index.html`; names with `..`, backslashes or NUL are refused.
    """
    path = request_path.lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    if "\\" in path or "\x00" in path:
        return None
    parts = PurePosixPath(path).parts
    if ".." in parts or PurePosixPath(path).is_absolute():
        return None
    return "/".join(parts)


@dataclass(frozen=True)
class AppSource:
    """What the host needs of an app: its display name and its files."""

    name: str
    source_code_url: str | None

    def read(self, name: str) -> bytes | None:
        """The bytes of the file `name` (as from `normalize_app_path`), or None."""
        raise NotImplementedError


@dataclass(frozen=True)
class FolderApp(AppSource):
    """An app served from a folder on disk; files are read at each request."""

    root: Path

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when missing, a folder, or outside the root."""
        candidate = (self.root / name).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        try:
            return candidate.read_bytes()
        except OSError:
            return None


def open_app(path: str | Path) -> AppSource:
    """Open an app container, checking it first; raise `InvalidContainer` if unusable."""
    location = Path(path)
    if not location.exists():
        raise InvalidContainer(f"app not found: {location}")
    if not location.is_dir():
        raise InvalidContainer(f"app must be a folder with index.html: {location}")
    root = location.resolve()
    if not (root / "index.html").is_file():
        raise InvalidContainer(f"app folder has no index.html at its root: {location}")
    name, source_code_url = _read_manifest(root / "manifest.toml", default_name=root.name)
    return FolderApp(name=name, source_code_url=source_code_url, root=root)


def _read_manifest(path: Path, default_name: str) -> tuple[str, str | None]:
    if not path.is_file():
        return default_name, None
    try:
        manifest = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidContainer(f"manifest.toml is not valid TOML: {exc}") from None
    name = manifest.get("name")
    url = manifest.get("source_code_url")
    return (name if isinstance(name, str) and name.strip() else default_name,
            url if isinstance(url, str) else None)
