"""The app container: a `.xdc` file (a ZIP with `index.html` at its root) or a folder.

`open_app` checks the container before anything is served and gives a clear
`InvalidContainer` error naming the problem: not a ZIP, no `index.html`, unsafe file names
(path traversal), a manifest too large or too deeply nested, or a ZIP bomb (too many files,
too large a table of contents, too many bytes, an absurd compression ratio of a file or of
the whole archive). The entry count and the size of the central directory are read from the
archive's end record before `zipfile` builds anything from them; sizes are checked as
declared and again while reading, since headers can lie. A `.xdc` is kept as it came
(compressed) with a small index of its files, and a file is decompressed when it is read:
what an app costs in memory follows its archive's size, not what its files expand to.
`AppSource.read` maps a request path to a file of the app, refusing anything outside it.
"""

from __future__ import annotations

import io
import lzma
import os
import struct
import tomllib
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .names import app_name

__all__ = ["InvalidContainer", "ContainerLimits", "AppSource", "FolderApp", "ZipApp",
           "open_app", "open_xdc_bytes", "pack_folder", "normalize_app_path", "ICON_NAMES",
           "MANIFEST_NAME"]

KiB = 1024
MiB = 1024 * KiB
ICON_NAMES = ("icon.png", "icon.jpg")
MANIFEST_NAME = "manifest.toml"


@dataclass(frozen=True, slots=True)
class ContainerLimits:
    """What an app container may hold before it is refused, with defaults.

    Most of these keep a `.xdc` from being a ZIP bomb: memory spent on an archive is bounded
    by its entry count, its table of contents and a fixed multiple of its own size.
    """

    max_files: int = 10_000
    """Most entries in the archive, counted from its central directory before `zipfile`
    reads a single one of them."""
    max_directory_bytes: int = 4 * MiB
    """Largest central directory (the archive's table of contents: names, sizes and extra
    fields of every entry), checked from the end record before it is read."""
    max_file_bytes: int = 64 * MiB
    """Largest single file, uncompressed."""
    max_total_bytes: int = 256 * MiB
    """All files together, uncompressed."""
    max_ratio: int = 200
    """Highest uncompressed/compressed ratio of any file larger than `ratio_exempt_bytes`,
    and of the whole archive (all files uncompressed against the size of the `.xdc`) when
    it expands to more than `archive_ratio_exempt_bytes`."""
    ratio_exempt_bytes: int = 64 * KiB
    """Files up to this size (uncompressed) are not held to `max_ratio`: small files of
    repetitive text compress well and cannot amount to much."""
    archive_ratio_exempt_bytes: int = 8 * MiB
    """An archive expanding to no more than this is not held to `max_ratio` as a whole, so
    that small apps of well-compressing text always pass."""
    ratio_exempt_total_bytes: int = 8 * MiB
    """Most bytes that the files let off `max_ratio` by `ratio_exempt_bytes` and compressed
    beyond it may expand to together: many small files of zeros are a ZIP bomb too."""
    max_manifest_bytes: int = 64 * KiB
    """Largest `manifest.toml`, checked before it is read or parsed."""
    max_path_bytes: int = 1024
    """Longest file name in the app (UTF-8 bytes, folders included): a `.xdc` entry with a
    longer name is refused, and a longer request path is not a file of the app."""
    max_name_chars: int = 100
    """Longest app name kept from the manifest (or the file name): a longer one is cut and
    ends with an ellipsis. Control characters are removed from it in any case: it is shown
    to members and on the operator's terminal."""


DEFAULT_LIMITS = ContainerLimits()


class InvalidContainer(ValueError):
    """The given app is not a usable webxdc container; the message says why."""


def normalize_app_path(request_path: str,
                       max_bytes: int = DEFAULT_LIMITS.max_path_bytes) -> str | None:
    """Turn a URL path into a file name inside the app, or None if it cannot name one.

    `/` maps to `index.html`; names with `..`, backslashes, NUL or text that is not
    UTF-8, and paths longer than `max_bytes`, are refused.
    """
    path = request_path.lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    if "\\" in path or "\x00" in path:
        return None
    try:
        if len(path.encode("utf-8")) > max_bytes:
            return None
    except UnicodeEncodeError:  # a lone surrogate: no file is named so
        return None
    parts = PurePosixPath(path).parts
    if ".." in parts or PurePosixPath(path).is_absolute():
        return None
    return "/".join(parts)


@dataclass(frozen=True)
class AppSource:
    """What the host needs of an app: its display name, its icon and its files."""

    name: str
    """The name shown for the app: `name` from its manifest, else the file or folder name."""
    icon: str | None = field(default=None, kw_only=True)
    """File name of the app's icon (`icon.png` or `icon.jpg`), if it has one; the host
    answers `/favicon.ico` with it."""
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
        """The file's bytes, or None when missing, a folder, outside the root or unreadable."""
        try:
            candidate = (self.root / name).resolve()
            if not candidate.is_relative_to(self.root) or not candidate.is_file():
                return None
            return candidate.read_bytes()
        except (OSError, RuntimeError, ValueError):
            # A name too long for the file system, a symlink loop (RuntimeError from
            # resolve() before Python 3.13), NUL (ValueError), no permission: not a file.
            return None


_RECORD = struct.Struct("<4QHH")
"""One file of a `.xdc` in a `ZipApp`'s index: where its local header is, its compressed
and uncompressed sizes, its CRC-32, its compression method and its flags."""


class _ZipIndex:
    """Where each file of a checked archive is: about 150 bytes a file (its name, a slot in
    a dict and a packed record), where `zipfile` keeps some 550 in a `ZipInfo`."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        self._position = {info.filename: at for at, info in enumerate(entries)}
        self._records = b"".join(
            _RECORD.pack(info.header_offset, info.compress_size, info.file_size, info.CRC,
                         info.compress_type, info.flag_bits) for info in entries)
        # The archive stays open to read files from; its ZipInfo list is let go (files are
        # opened by a ZipInfo made from the record, as `ZipFile.open` allows).
        archive.filelist.clear()
        archive.NameToInfo.clear()
        self._archive = archive

    def __contains__(self, name: str) -> bool:
        return name in self._position

    def read(self, name: str) -> bytes | None:
        """The decompressed bytes of the file `name`, or None if there is no such file
        (or, as it was checked when opened, it cannot be read)."""
        at = self._position.get(name)
        if at is None:
            return None
        info = zipfile.ZipInfo(name)
        (info.header_offset, info.compress_size, info.file_size, info.CRC,
         info.compress_type, info.flag_bits) = _RECORD.unpack_from(self._records,
                                                                   at * _RECORD.size)
        try:
            with self._archive.open(info) as stream:
                data = stream.read(info.file_size + 1)  # never more than checked
        except _BROKEN_ZIP:
            return None
        return data if len(data) == info.file_size else None


@dataclass(frozen=True)
class ZipApp(AppSource):
    """An app read from a `.xdc`: the archive is kept compressed, and a file is
    decompressed (and its size checked again) each time it is read."""

    archive: bytes = field(repr=False)
    """The `.xdc` as it came."""
    index: _ZipIndex = field(repr=False, compare=False)
    """Where each file is in `archive`."""

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when the container has no such file."""
        return self.index.read(name)


def open_app(path: str | Path, limits: ContainerLimits | None = None) -> AppSource:
    """Open an app container, checking it first; raise `InvalidContainer` if unusable."""
    location = Path(path)
    limits = limits or DEFAULT_LIMITS
    try:
        if not location.exists():
            raise InvalidContainer(f"app not found: {location}")
        if location.is_dir():
            return _open_folder(location, limits)
        return _open_zip(location, limits)
    except OSError as exc:
        raise InvalidContainer(f"cannot read the app {location}: "
                               f"{exc.strerror or exc}") from None


def _open_folder(location: Path, limits: ContainerLimits) -> FolderApp:
    root = location.resolve()
    if not (root / "index.html").is_file():
        raise InvalidContainer(f"app folder has no index.html at its root: {location}")
    manifest = root / MANIFEST_NAME
    data = None
    if manifest.is_file():
        with manifest.open("rb") as stream:
            data = stream.read(limits.max_manifest_bytes + 1)
    name = _manifest_name(data, default_name=_as_text(root.name), limits=limits)
    icon = next((n for n in ICON_NAMES if (root / n).is_file()), None)
    return FolderApp(name=name, icon=icon, key=_as_text(str(root), exact=True), root=root)


# Everything `zipfile` and its decompressors raise on a damaged or hostile archive. Our own
# InvalidContainer is a ValueError too; it is re-raised before this tuple is consulted.
_BROKEN_ZIP = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError,
               EOFError, zlib.error, lzma.LZMAError, ValueError, RuntimeError, struct.error)


def _open_zip(location: Path, limits: ContainerLimits) -> ZipApp:
    with location.open("rb") as stream:
        try:
            _check_directory(stream, limits, location)  # before the whole file is read
        except struct.error as exc:
            raise InvalidContainer(f"{location}: broken ZIP archive: {exc}") from None
        stream.seek(0)
        data = stream.read()
    return _read_zip(data, str(location), _as_text(location.stem),
                     _as_text(str(location.resolve()), exact=True), limits)


def open_xdc_bytes(data: bytes, file_name: str, key: str,
                   limits: ContainerLimits | None = None) -> ZipApp:
    """Open a `.xdc` held in memory (an upload, or one the store kept), checking it as
    `open_app` checks a file; `file_name` names it in errors and, without a manifest name,
    gives the app's name; `key` is kept as the app's `key`."""
    stem = PurePosixPath(file_name).stem if file_name.lower().endswith(".xdc") else file_name
    return _read_zip(data, file_name, stem or file_name, key, limits or DEFAULT_LIMITS)


def pack_folder(location: str | Path, limits: ContainerLimits | None = None) -> bytes:
    """A folder app packed as a `.xdc`: its regular files (links to files inside it
    followed, others left out), checked as `open_app` checks the folder first."""
    source = open_app(location, limits)
    if not isinstance(source, FolderApp):
        raise InvalidContainer(f"not a folder: {location}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, subfolders, names in os.walk(source.root):
            subfolders.sort()
            for name in sorted(names):
                relative = (Path(folder) / name).relative_to(source.root).as_posix()
                data = source.read(relative)  # None for what leads outside the folder
                if data is not None:
                    archive.writestr(relative, data)
    return buffer.getvalue()


def _read_zip(data: bytes, label: str, default_name: str, key: str,
              limits: ContainerLimits) -> ZipApp:
    """Check the `.xdc` in `data` and index it; `label` names it in errors."""
    location = Path(label)
    stream = io.BytesIO(data)  # shares `data`'s buffer: no copy
    try:
        archive_size = _check_directory(stream, limits, location)
        archive = zipfile.ZipFile(stream)
        try:
            manifest = _check_entries(archive, archive_size, limits, location)
            index = _ZipIndex(archive)
        except BaseException:
            archive.close()
            raise
    except InvalidContainer:
        raise
    except _BROKEN_ZIP as exc:
        raise InvalidContainer(f"{location}: broken ZIP archive: {exc}") from None
    if "index.html" not in index:
        raise InvalidContainer(f"{location}: no index.html at the root of the container")
    name = _manifest_name(manifest, default_name=default_name, limits=limits)
    icon = next((n for n in ICON_NAMES if n in index), None)
    return ZipApp(name=name, icon=icon, key=key, archive=data, index=index)


# The ZIP end records (APPNOTE.TXT 4.3.14-4.3.16), read before `zipfile` reads the central
# directory they point to: it would build a ZipInfo for every entry, however many.
_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_SIGNATURE = b"PK\x06\x06"
_ENTRY = struct.Struct("<4s6H3L5H2L")
_ENTRY_SIGNATURE = b"PK\x01\x02"


def _check_directory(stream: BinaryIO, limits: ContainerLimits, location: Path) -> int:
    """Refuse an archive whose central directory is too large or lists too many entries,
    reading only its end records and the directory's fixed-size entry headers; return the
    archive's size."""
    # The end record is found as zipfile finds it (zipfile._EndRecData): at the very end if
    # it has no comment, else the last signature in the last 64 KiB + 22 bytes.
    size = stream.seek(0, 2)
    tail_size = min(size, (1 << 16) + _END.size)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    found = len(tail) - _END.size
    if not (found >= 0 and tail.startswith(_END_SIGNATURE, found) and tail.endswith(b"\0\0")):
        found = tail.rfind(_END_SIGNATURE)
    if found < 0 or found + _END.size > len(tail):
        raise InvalidContainer(f"{location}: not a ZIP archive (a .xdc must be one)")
    _, _, _, _, entries, directory_size, _, _ = _END.unpack_from(tail, found)
    directory_end = size - tail_size + found
    if directory_end >= _END64_LOCATOR.size + _END64.size:
        # ZIP64: the counts live in a record just before the locator, if it is there
        # (zipfile._EndRecData64 reads the same bytes and falls back the same way).
        stream.seek(directory_end - _END64_LOCATOR.size - _END64.size)
        record_and_locator = stream.read(_END64.size + _END64_LOCATOR.size)
        if (record_and_locator.startswith(_END64_SIGNATURE)
                and record_and_locator.startswith(_END64_LOCATOR_SIGNATURE, _END64.size)):
            directory_end -= _END64_LOCATOR.size + _END64.size
            _, _, _, _, _, _, _, entries, directory_size, _ = _END64.unpack_from(
                record_and_locator)
    if entries > limits.max_files:
        raise InvalidContainer(_too_many_entries(str(entries), limits, location))
    if directory_size > limits.max_directory_bytes:
        raise InvalidContainer(f"{location}: its table of contents is {directory_size} bytes, "
                               f"more than the {limits.max_directory_bytes} allowed (ZIP bomb?)")
    start = directory_end - directory_size
    if start < 0:
        raise InvalidContainer(f"{location}: broken ZIP archive: the central directory "
                               "starts before the file")
    stream.seek(start)
    _count_entries(stream.read(directory_size), limits, location)
    stream.seek(0)
    return size


def _count_entries(directory: bytes, limits: ContainerLimits, location: Path) -> None:
    # The end record's count may lie; zipfile reads entries until the directory's bytes
    # run out, so count them the same way.
    offset = count = 0
    while offset + _ENTRY.size <= len(directory):
        fields = _ENTRY.unpack_from(directory, offset)
        if fields[0] != _ENTRY_SIGNATURE:
            break  # zipfile names the damage
        count += 1
        if count > limits.max_files:
            raise InvalidContainer(_too_many_entries(f"more than {limits.max_files}", limits,
                                                     location))
        name_length, extra_length, comment_length = fields[10:13]
        offset += _ENTRY.size + name_length + extra_length + comment_length


def _too_many_entries(count: str, limits: ContainerLimits, location: Path) -> str:
    return (f"{location}: {count} entries, more than the {limits.max_files} allowed "
            "(ZIP bomb?)")


_CHECK_CHUNK_BYTES = 256 * KiB
"""How much of a file is decompressed at a time while its size is checked."""


def _check_entries(archive: zipfile.ZipFile, archive_size: int, limits: ContainerLimits,
                   location: Path) -> bytes | None:
    """Check every entry's name and sizes, as declared and then by decompressing it a chunk
    at a time (nothing of it is kept); return the manifest's bytes, if there is one."""
    entries = archive.infolist()
    _check_declared(entries, archive_size, limits, location)
    seen: set[str] = set()
    manifest = None
    for info in entries:
        if info.is_dir():
            continue
        name = info.filename
        if name in seen:
            raise InvalidContainer(f"{location}: the entry {name!r} appears twice")
        seen.add(name)
        size = 0
        with archive.open(info) as stream:
            # Never more than declared (and checked) plus one byte, whatever the data says.
            while size <= info.file_size:
                chunk = stream.read(min(_CHECK_CHUNK_BYTES, info.file_size + 1 - size))
                if not chunk:
                    break
                size += len(chunk)
                if name == MANIFEST_NAME:
                    manifest = (manifest or b"") + chunk
        if size != info.file_size:
            raise InvalidContainer(f"{location}: {name!r} is not as large as its header says "
                                   "(ZIP bomb?)")
    return manifest


def _check_declared(entries: list[zipfile.ZipInfo], archive_size: int,
                    limits: ContainerLimits, location: Path) -> None:
    """Refuse an archive whose entries, as their headers declare them, expand too much:
    one file, all of them, or the small files let off the ratio together."""
    declared = exempt = 0
    for info in entries:
        _check_entry(info, limits, location)
        declared += info.file_size
        if info.file_size > info.compress_size * limits.max_ratio:
            exempt += info.file_size  # past the ratio, so a small file let off it
    if declared > limits.max_total_bytes:
        raise InvalidContainer(f"{location}: expands to {declared} bytes, more than the "
                               f"{limits.max_total_bytes} allowed (ZIP bomb?)")
    if (declared > limits.archive_ratio_exempt_bytes
            and declared > archive_size * limits.max_ratio):
        raise InvalidContainer(f"{location}: expands to {declared} bytes from "
                               f"{archive_size}, {declared // archive_size}:1, more than "
                               f"{limits.max_ratio}:1 (ZIP bomb?)")
    if exempt > limits.ratio_exempt_total_bytes:
        raise InvalidContainer(
            f"{location}: its files compressed more than {limits.max_ratio}:1 expand to "
            f"{exempt} bytes together, more than the {limits.ratio_exempt_total_bytes} "
            "allowed (ContainerLimits.ratio_exempt_total_bytes; ZIP bomb?)")


def _check_entry(info: zipfile.ZipInfo, limits: ContainerLimits, location: Path) -> None:
    name = info.filename
    if (name.startswith("/") or "\\" in name or "\x00" in name or ":" in name.split("/")[0]
            or ".." in PurePosixPath(name).parts):
        raise InvalidContainer(f"{location}: unsafe file name {name!r} (path traversal)")
    if name != info.orig_filename:  # zipfile cut it at a NUL: files are found by name
        raise InvalidContainer(f"{location}: unsafe file name {info.orig_filename!r}")
    if len(name.encode("utf-8", "surrogatepass")) > limits.max_path_bytes:
        raise InvalidContainer(f"{location}: a file name is longer than the "
                               f"{limits.max_path_bytes} bytes allowed: {name[:64]!r}...")
    if info.flag_bits & 0x1:
        raise InvalidContainer(f"{location}: {name!r} is encrypted")
    if info.file_size > limits.max_file_bytes:
        raise InvalidContainer(f"{location}: {name!r} expands to {info.file_size} bytes, more "
                               f"than the {limits.max_file_bytes} allowed (ZIP bomb?)")
    if name == MANIFEST_NAME and info.file_size > limits.max_manifest_bytes:
        raise InvalidContainer(f"{location}: {_manifest_too_large(limits)}")
    if (info.file_size > limits.ratio_exempt_bytes
            and info.file_size > info.compress_size * limits.max_ratio):
        ratio = info.file_size // max(info.compress_size, 1)
        raise InvalidContainer(f"{location}: {name!r} is compressed {ratio}:1, more than "
                               f"{limits.max_ratio}:1 (ZIP bomb?)")


def _manifest_too_large(limits: ContainerLimits) -> str:
    return f"{MANIFEST_NAME} is larger than the {limits.max_manifest_bytes} bytes allowed"


def _manifest_name(data: bytes | None, default_name: str, limits: ContainerLimits) -> str:
    """The app's name from its `manifest.toml` (`data`), checked for size and nesting first;
    `default_name` when there is no manifest or it names nothing; either one as
    `names.app_name` keeps it, at most `max_name_chars` long."""
    fallback = app_name(default_name, limits.max_name_chars) or "app"
    if data is None:
        return fallback
    if len(data) > limits.max_manifest_bytes:
        raise InvalidContainer(_manifest_too_large(limits))
    try:
        manifest = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidContainer(f"{MANIFEST_NAME} is not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib recurses once per level of nested arrays and inline tables.
        raise InvalidContainer(f"{MANIFEST_NAME} is nested too deeply") from None
    name = manifest.get("name")
    return (isinstance(name, str) and app_name(name, limits.max_name_chars)) or fallback


def _as_text(name: str, exact: bool = False) -> str:
    """A file system name as text that can be stored and shown: on POSIX a name is bytes,
    and those that are not UTF-8 arrive as lone surrogates. For a name shown to people they
    become U+FFFD; for a key (`exact`) they become backslash escapes, so that two different
    names never make the same key."""
    raw = name.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace" if exact else "replace")
