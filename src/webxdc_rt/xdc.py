"""The app container: a `.xdc` file (a ZIP with `index.html` at its root) or a folder.

`open_app` checks the container before anything is served and gives a clear
`InvalidContainer` error naming the problem: not a ZIP, no `index.html`, unsafe file names
(path traversal), or a ZIP bomb (too many files, too many bytes, an absurd compression
ratio; sizes are checked as declared and again while reading, since headers can lie).
A `.xdc` is read into memory once, after those checks. `AppSource.read` maps a request path
to a file of the app, refusing anything outside it.
"""

from __future__ import annotations

import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["InvalidContainer", "ContainerLimits", "AppSource", "FolderApp", "ZipApp",
           "open_app", "normalize_app_path", "ICON_NAMES"]

MiB = 1024 * 1024
ICON_NAMES = ("icon.png", "icon.jpg")


@dataclass(frozen=True, slots=True)
class ContainerLimits:
    """What a `.xdc` may hold before it is refused as a ZIP bomb, with defaults."""

    max_files: int = 10_000
    """Most entries in the archive."""
    max_file_bytes: int = 64 * MiB
    """Largest single file, uncompressed."""
    max_total_bytes: int = 256 * MiB
    """All files together, uncompressed."""
    max_ratio: int = 200
    """Highest uncompressed/compressed ratio of any file over 1 MiB."""


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
    """What the host needs of an app: its display name, its icon and its files."""

    name: str
    source_code_url: str | None
    icon: str | None = field(default=None, kw_only=True)
    """File name of the app's icon (`icon.png` or `icon.jpg`), if it has one."""
    key: str = field(default="", kw_only=True)
    """Where the app came from (resolved path), to recognise it after a restart."""

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


@dataclass(frozen=True)
class ZipApp(AppSource):
    """An app read from a `.xdc` file; its files are held in memory."""

    files: Mapping[str, bytes]

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when the container has no such file."""
        return self.files.get(name)


def open_app(path: str | Path, limits: ContainerLimits | None = None) -> AppSource:
    """Open an app container, checking it first; raise `InvalidContainer` if unusable."""
    location = Path(path)
    if not location.exists():
        raise InvalidContainer(f"app not found: {location}")
    if location.is_dir():
        return _open_folder(location)
    return _open_zip(location, limits or ContainerLimits())


def _open_folder(location: Path) -> FolderApp:
    root = location.resolve()
    if not (root / "index.html").is_file():
        raise InvalidContainer(f"app folder has no index.html at its root: {location}")
    manifest = root / "manifest.toml"
    name, source_code_url = _parse_manifest(
        manifest.read_bytes() if manifest.is_file() else None, default_name=root.name)
    icon = next((n for n in ICON_NAMES if (root / n).is_file()), None)
    return FolderApp(name=name, source_code_url=source_code_url, icon=icon, key=str(root),
                     root=root)


def _open_zip(location: Path, limits: ContainerLimits) -> ZipApp:
    if not zipfile.is_zipfile(location):
        raise InvalidContainer(f"{location}: not a ZIP archive (a .xdc must be one)")
    try:
        with zipfile.ZipFile(location) as archive:
            files = _read_entries(archive, limits, location)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        raise InvalidContainer(f"{location}: broken ZIP archive: {exc}") from None
    if "index.html" not in files:
        raise InvalidContainer(f"{location}: no index.html at the root of the container")
    name, source_code_url = _parse_manifest(files.get("manifest.toml"),
                                            default_name=location.stem)
    icon = next((n for n in ICON_NAMES if n in files), None)
    return ZipApp(name=name, source_code_url=source_code_url, icon=icon,
                  key=str(location.resolve()), files=files)


def _read_entries(archive: zipfile.ZipFile, limits: ContainerLimits,
                  location: Path) -> dict[str, bytes]:
    entries = archive.infolist()
    if len(entries) > limits.max_files:
        raise InvalidContainer(f"{location}: {len(entries)} entries, more than the "
                               f"{limits.max_files} allowed (ZIP bomb?)")
    declared = 0
    for info in entries:
        _check_entry(info, limits, location)
        declared += info.file_size
    if declared > limits.max_total_bytes:
        raise InvalidContainer(f"{location}: expands to {declared} bytes, more than the "
                               f"{limits.max_total_bytes} allowed (ZIP bomb?)")
    files: dict[str, bytes] = {}
    total = 0
    for info in entries:
        if info.is_dir():
            continue
        name = info.filename
        if name in files:
            raise InvalidContainer(f"{location}: the entry {name!r} appears twice")
        with archive.open(info) as stream:
            data = stream.read(limits.max_file_bytes + 1)
        total += len(data)
        if len(data) != info.file_size or total > limits.max_total_bytes:
            raise InvalidContainer(f"{location}: {name!r} is larger than its header says "
                                   "(ZIP bomb?)")
        files[name] = data
    return files


def _check_entry(info: zipfile.ZipInfo, limits: ContainerLimits, location: Path) -> None:
    name = info.filename
    if (name.startswith("/") or "\\" in name or "\x00" in name or ":" in name.split("/")[0]
            or ".." in PurePosixPath(name).parts):
        raise InvalidContainer(f"{location}: unsafe file name {name!r} (path traversal)")
    if info.flag_bits & 0x1:
        raise InvalidContainer(f"{location}: {name!r} is encrypted")
    if info.file_size > limits.max_file_bytes:
        raise InvalidContainer(f"{location}: {name!r} expands to {info.file_size} bytes, more "
                               f"than the {limits.max_file_bytes} allowed (ZIP bomb?)")
    if info.file_size > MiB and info.file_size > info.compress_size * limits.max_ratio:
        ratio = info.file_size // max(info.compress_size, 1)
        raise InvalidContainer(f"{location}: {name!r} is compressed {ratio}:1, more than "
                               f"{limits.max_ratio}:1 (ZIP bomb?)")


def _parse_manifest(data: bytes | None, default_name: str) -> tuple[str, str | None]:
    if data is None:
        return default_name, None
    try:
        manifest = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidContainer(f"manifest.toml is not valid TOML: {exc}") from None
    name = manifest.get("name")
    url = manifest.get("source_code_url")
    return (name if isinstance(name, str) and name.strip() else default_name,
            url if isinstance(url, str) else None)
