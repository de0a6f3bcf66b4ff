"""Unit tests of the app container: opening a folder and reading its files safely."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import aiohttp
import pytest

from webxdc_rt.model.xdc import (
    ContainerLimits,
    InvalidContainer,
    normalize_app_path,
    open_app,
    open_xdc_bytes,
)

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@pytest.mark.parametrize("path, expected", [
    ("/", "index.html"), ("/a/b.js", "a/b.js"), ("/dir/", "dir/index.html"),
    ("/../secret", None), ("/a/../../b", None), ("/a\\b", None), ("/a\x00", None),
    ("/./a", "a"),
])
def test_normalize_app_path(path, expected):
    assert normalize_app_path(path) == expected


def test_folder_app_reads_its_files_and_nothing_outside(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "index.html").write_text("<p>hi</p>")
    (app / "sub").mkdir()
    (app / "sub" / "x.js").write_text("1")
    (tmp_path / "secret.txt").write_text("secret")
    (app / "escape").symlink_to(tmp_path / "secret.txt")
    source = open_app(app)
    assert source.name == "app"
    assert source.read("index.html") == b"<p>hi</p>"
    assert source.read("sub/x.js") == b"1"
    assert source.read("sub") is None
    assert source.read("missing") is None
    assert source.read("escape") is None


@pytest.mark.parametrize("manifest, name", [
    ('name = "Poll"\nsource_code_url = "https://x"\n', "Poll"),  # other keys are ignored
    ('name = "  "\n', "app"),
    ("name = 7\n", "app"),
    ('source_code_url = "https://x"\n', "app"),
])
def test_manifest_name_or_the_folder_name(tmp_path, manifest, name):
    app = tmp_path / "app"
    app.mkdir()
    (app / "index.html").write_text("")
    (app / "manifest.toml").write_text(manifest)
    assert open_app(app).name == name


@pytest.mark.parametrize("setup, fragment", [
    (lambda p: None, "app not found"),
    (lambda p: p.write_text("x"), "not a ZIP archive"),
    (lambda p: p.mkdir(), "no index.html"),
])
def test_unusable_apps_get_a_clear_error(tmp_path, setup, fragment):
    target = tmp_path / "thing"
    setup(target)
    with pytest.raises(InvalidContainer, match=fragment):
        open_app(target)


def test_broken_manifest_is_named(tmp_path):
    (tmp_path / "index.html").write_text("")
    (tmp_path / "manifest.toml").write_text("name = ")
    with pytest.raises(InvalidContainer, match="manifest.toml"):
        open_app(tmp_path)


def make_xdc(path, entries, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_xdc_is_read_with_manifest_and_icon(tmp_path):
    xdc = make_xdc(tmp_path / "poll.xdc", {
        "index.html": "<p>poll</p>", "manifest.toml": 'name = "Poll"\n',
        "icon.png": b"\x89PNG", "js/app.js": "1", "webxdc.js": "own copy"})
    source = open_app(xdc)
    assert (source.name, source.icon) == ("Poll", "icon.png")
    assert source.read("index.html") == b"<p>poll</p>"
    assert source.read("js/app.js") == b"1"
    assert source.read("missing") is None
    assert source.key == str(xdc.resolve())


def test_xdc_without_manifest_is_named_after_the_file(tmp_path):
    source = open_app(make_xdc(tmp_path / "my-game.xdc", {"index.html": ""},
                               zipfile.ZIP_STORED))
    assert (source.name, source.icon) == ("my-game", None)


def test_xdc_without_index_html_at_the_root(tmp_path):
    xdc = make_xdc(tmp_path / "nested.xdc", {"app/index.html": ""})
    with pytest.raises(InvalidContainer, match="no index.html at the root"):
        open_app(xdc)


@pytest.mark.parametrize("name", ["../evil.html", "a/../../evil", "/etc/passwd", "a\\b",
                                  "C:/x"])
def test_xdc_with_path_traversal_is_refused(tmp_path, name):
    xdc = make_xdc(tmp_path / "evil.xdc", {"index.html": "", name: "x"})
    with pytest.raises(InvalidContainer, match="unsafe file name"):
        open_app(xdc)


def test_zip_bomb_by_ratio_is_refused(tmp_path):
    xdc = make_xdc(tmp_path / "bomb.xdc", {"index.html": "", "zeros": bytes(50 * 1024 * 1024)})
    with pytest.raises(InvalidContainer, match="compressed .*:1.*ZIP bomb"):
        open_app(xdc)


def test_zip_bomb_by_size_and_count_is_refused(tmp_path):
    xdc = make_xdc(tmp_path / "big.xdc", {"index.html": "", "a": bytes(3000), "b": bytes(3000)})
    with pytest.raises(InvalidContainer,
                       match=r"expands to 6000 bytes, more than the 4000 allowed \(ZIP bomb"):
        open_app(xdc, ContainerLimits(max_total_bytes=4000))
    with pytest.raises(InvalidContainer, match="'a' expands to 3000 bytes"):
        open_app(xdc, ContainerLimits(max_file_bytes=2000))
    with pytest.raises(InvalidContainer, match="3 entries"):
        open_app(xdc, ContainerLimits(max_files=2))


def test_zip_whose_header_lies_about_its_size_is_refused(tmp_path):
    xdc = make_xdc(tmp_path / "liar.xdc", {"index.html": "", "data": bytes(5000)},
                   zipfile.ZIP_STORED)
    raw = bytearray(xdc.read_bytes())
    # Shrink the declared size of "data" in the central directory to 100 bytes.
    central = raw.rfind(b"PK\x01\x02")
    assert raw[central + 46:central + 50] == b"data"
    raw[central + 24:central + 28] = (100).to_bytes(4, "little")
    xdc.write_bytes(bytes(raw))
    with pytest.raises(InvalidContainer, match="larger than its header says|broken ZIP"):
        open_app(xdc)


def test_truncated_zip_is_refused(tmp_path):
    xdc = make_xdc(tmp_path / "cut.xdc", {"index.html": "x" * 1000, "b": "y" * 1000})
    xdc.write_bytes(xdc.read_bytes()[:-30])
    with pytest.raises(InvalidContainer):
        open_app(xdc)


# -- names the file system refuses --------------------------------------------------------

LONG_COMPONENT = "a" * 300  # over the 255 bytes a file name may have
LONG_PATH = "a/" * 2499 + "b"  # 5,000 bytes


def hostile_folder(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "index.html").write_text("<p>hi</p>")
    (app / "loop").symlink_to(app / "loop2")
    (app / "loop2").symlink_to(app / "loop")
    return app


@pytest.mark.parametrize("name", ["loop", "loop/index.html", LONG_COMPONENT,
                                  f"sub/{LONG_COMPONENT}/x", LONG_PATH, "a\x00b"])
def test_folder_app_names_the_file_system_refuses_are_not_files(tmp_path, name):
    source = open_app(hostile_folder(tmp_path))
    assert source.read(name) is None
    assert source.read("index.html") == b"<p>hi</p>"


def test_request_paths_that_cannot_name_a_file(tmp_path):
    assert normalize_app_path("/" + LONG_PATH) is None
    assert normalize_app_path("/" + "é" * 513) is None  # 1,026 bytes
    assert normalize_app_path("/" + "é" * 511) == "é" * 511
    assert normalize_app_path("/a\ud800") is None
    assert normalize_app_path("/" + "a" * 100, max_bytes=99) is None


async def test_live_host_answers_404_for_names_the_file_system_refuses(hosts, tmp_path):
    host = await hosts()
    host.share(["alice"], app_folder=hostile_folder(tmp_path))
    page = host.last_pages[0]
    headers = {"Host": f"{page.label}.localhost:{host.port}",
               "Authorization": f"Bearer {page.token}"}
    async with aiohttp.ClientSession() as session:
        for path in ("/loop", "/loop/x", f"/{LONG_COMPONENT}", f"/{LONG_PATH}", "/"):
            async with session.get(f"http://127.0.0.1:{host.port}{path}",
                                   headers=headers) as response:
                assert response.status == (200 if path == "/" else 404), path


# -- manifest.toml -------------------------------------------------------------------------

DEEP_MANIFEST = "name = " + "[" * 5000 + "]" * 5000 + "\n"


def test_deeply_nested_manifest_is_refused(tmp_path):
    (tmp_path / "index.html").write_text("")
    (tmp_path / "manifest.toml").write_text(DEEP_MANIFEST)
    with pytest.raises(InvalidContainer, match="manifest.toml is nested too deeply"):
        open_app(tmp_path)
    xdc = make_xdc(tmp_path / "deep.xdc", {"index.html": "", "manifest.toml": DEEP_MANIFEST})
    with pytest.raises(InvalidContainer, match="manifest.toml is nested too deeply"):
        open_app(xdc)


def test_oversized_manifest_is_refused_before_parsing(tmp_path):
    big = 'name = "Big"\n' + "# padding\n" * 100_000  # 1 MB, valid TOML
    (tmp_path / "index.html").write_text("")
    (tmp_path / "manifest.toml").write_text(big)
    with pytest.raises(InvalidContainer, match="manifest.toml is larger than the 65536 bytes"):
        open_app(tmp_path)
    xdc = make_xdc(tmp_path / "big.xdc", {"index.html": "", "manifest.toml": big})
    with pytest.raises(InvalidContainer, match="manifest.toml is larger than the 65536 bytes"):
        open_app(xdc)
    raised = ContainerLimits(max_manifest_bytes=2 * MiB, ratio_exempt_bytes=2 * MiB)
    assert open_app(xdc, raised).name == "Big"


def test_manifest_names_are_cut_and_lose_their_control_characters(tmp_path):
    long = make_xdc(tmp_path / "long.xdc", {"index.html": "",
                                            "manifest.toml": f'name = "{"y" * 60_000}"\n'})
    assert open_app(long).name == "y" * 99 + "…"
    assert open_app(long, ContainerLimits(max_name_chars=10)).name == "y" * 9 + "…"
    evil = make_xdc(tmp_path / "evil.xdc", {
        "index.html": "", "manifest.toml": 'name = "\\u001b]0;owned\\u0007Poll\\r\\nnext"\n'})
    assert open_app(evil).name == "]0;ownedPoll next"
    blank = make_xdc(tmp_path / "blank.xdc", {"index.html": "",
                                              "manifest.toml": 'name = "\\u3164\\u0007"\n'})
    assert open_app(blank).name == "blank"


# -- ZIP bombs ------------------------------------------------------------------------------

def test_many_small_files_that_expand_too_much_together_are_refused(tmp_path):
    # 255 files of 1 MiB of zeros: 287 kB on disk, 255 MiB in memory.
    xdc = make_xdc(tmp_path / "zeros.xdc",
                   {"index.html": "", **{f"z{i}": bytes(MiB) for i in range(255)}})
    with pytest.raises(InvalidContainer,
                       match=r"expands to 267386880 bytes from \d+, \d+:1, more than 200:1"):
        open_app(xdc, ContainerLimits(ratio_exempt_bytes=MiB))
    with pytest.raises(InvalidContainer, match=r"'z0' is compressed \d+:1, more than 200:1"):
        open_app(xdc)


def test_any_file_over_64_kib_is_held_to_the_ratio(tmp_path):
    xdc = make_xdc(tmp_path / "one.xdc", {"index.html": "", "zeros": bytes(MiB)})
    with pytest.raises(InvalidContainer, match=r"'zeros' is compressed \d+:1"):
        open_app(xdc)
    exempt = make_xdc(tmp_path / "small.xdc", {"index.html": "", "zeros": bytes(64 * KiB)})
    assert open_app(exempt).read("zeros") == bytes(64 * KiB)


def test_small_apps_of_text_pass_however_well_they_compress(tmp_path):
    # 100 files of 60 kB repetitive text: about 1000:1 each, 6 MB in all.
    text = "console.log('hello');\n" * 2800
    xdc = make_xdc(tmp_path / "text.xdc",
                   {"index.html": "", **{f"js/{i}.js": text for i in range(100)}})
    assert xdc.stat().st_size * 200 < 100 * len(text)
    assert open_app(xdc).read("js/99.js") == text.encode()


def zeros_bomb(path, count: int, padding: int = 0):
    """`count` files of 64 KiB of zeros (each small enough to be let off the ratio), and
    `padding` random bytes stored uncompressed to lower the archive's overall ratio."""
    entries = {"index.html": "<p>z</p>", **{f"z/{i}": bytes(64 * KiB) for i in range(count)}}
    make_xdc(path, entries)
    if padding:
        with zipfile.ZipFile(path, "a", zipfile.ZIP_STORED) as archive:
            archive.writestr("padding.bin", os.urandom(padding))
    return path


def test_many_small_files_of_zeros_are_refused_however_the_archive_is_padded(tmp_path):
    # 3,900 files of 64 KiB: 255 MB from 1.3 MB, under the total ratio thanks to 1 MB of
    # random padding; each file is small enough to be let off the ratio on its own.
    xdc = zeros_bomb(tmp_path / "padded.xdc", 3900, padding=1_000_000)
    assert 3900 * 64 * KiB < xdc.stat().st_size * 200
    with pytest.raises(InvalidContainer, match=(
            r"compressed more than 200:1 expand to 255590400 bytes together, more than the "
            r"8388608 allowed \(ContainerLimits.ratio_exempt_total_bytes; ZIP bomb\?\)")):
        open_app(xdc)
    with pytest.raises(InvalidContainer, match="ratio_exempt_total_bytes"):
        open_xdc_bytes(xdc.read_bytes(), "padded.xdc", "key")
    # 100 of them (6.5 MB) are within it.
    assert open_app(zeros_bomb(tmp_path / "few.xdc", 100)).read("z/99") == bytes(64 * KiB)


@pytest.mark.parametrize("opened_from", ["file", "bytes"])
def test_an_open_app_holds_its_archive_not_what_its_files_expand_to(tmp_path, opened_from):
    # 1,000 files of 64 KiB of zeros: 64 MiB expanded from about 100 kB, let through by
    # raised limits; what the open app holds is measured while it is open.
    xdc = zeros_bomb(tmp_path / "wide.xdc", 1000)
    limits = ContainerLimits(ratio_exempt_total_bytes=GiB, archive_ratio_exempt_bytes=GiB)
    archive = xdc.read_bytes() if opened_from == "bytes" else None
    tracemalloc.start()
    try:
        source = (open_app(xdc, limits) if archive is None
                  else open_xdc_bytes(archive, "wide.xdc", "key", limits))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The archive itself (when read here), about 150 bytes a file of index, and slack.
    assert held < 2 * xdc.stat().st_size + MiB < 64 * MiB / 16
    assert source.read("z/999") == bytes(64 * KiB)
    assert source.read("index.html") == b"<p>z</p>"
    assert source.read("z/1000") is None and source.read("z") is None


ENTRY = struct.Struct("<4s6H3L5H2L")
END = struct.Struct("<4s4H2LH")
END64 = struct.Struct("<4sQ2H2L4Q")
END64_LOCATOR = struct.Struct("<4sLQL")


def zip64_end(entries: int, directory_size: int, directory_offset: int) -> bytes:
    """ZIP64 end records for a central directory that ends where they start."""
    record_offset = directory_offset + directory_size
    return (END64.pack(b"PK\x06\x06", END64.size - 12, 45, 45, 0, 0, entries, entries,
                       directory_size, directory_offset)
            + END64_LOCATOR.pack(b"PK\x06\x07", 0, record_offset, 1)
            + END.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))


def directory_only_xdc(path, count: int):
    """An archive of `count` empty entries: a central directory without file data, built
    directly so that it costs a few seconds and megabytes, not what zipfile would."""
    directory = b"".join(ENTRY.pack(b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, 0, 0, 0, 7, 0, 0,
                                    0, 0, 0, 0) + b"%07d" % i for i in range(count))
    path.write_bytes(directory + zip64_end(count, len(directory), 0))
    return path


def peak_rss_refusing(path) -> tuple[str, int]:
    """Open `path` in a fresh interpreter; its refusal message and peak RSS in bytes.

    The peak is VmHWM, which belongs to the new program alone (ru_maxrss would include what
    the forking test process held)."""
    script = ("import json, re, sys\n"
              "from webxdc_rt.model.xdc import InvalidContainer, open_app\n"
              "try:\n    open_app(sys.argv[1]); error = ''\n"
              "except InvalidContainer as exc:\n    error = str(exc)\n"
              "status = open('/proc/self/status').read()\n"
              "print(json.dumps([error, int(re.search(r'VmHWM:\\s*(\\d+) kB', status)[1])]))")
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                            text=True, timeout=120, check=True)
    error, peak_kib = json.loads(result.stdout)
    return error, peak_kib * KiB


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM")
def test_300000_entries_are_refused_before_zipfile_lists_them(tmp_path):
    xdc = directory_only_xdc(tmp_path / "many.xdc", 300_000)
    error, peak = peak_rss_refusing(xdc)
    assert "300000 entries, more than the 10000 allowed (ZIP bomb?)" in error
    # Listing them with zipfile first took 151 MiB here; refusing them now takes 14 MiB.
    assert peak < 64 * MiB


def test_entry_count_is_taken_from_the_directory_when_the_end_record_lies(tmp_path):
    xdc = make_xdc(tmp_path / "liar.xdc", {"index.html": "", **{f"{i}": "" for i in range(101)}})
    raw = bytearray(xdc.read_bytes())
    end = raw.rfind(b"PK\x05\x06")
    raw[end + 8:end + 12] = struct.pack("<2H", 1, 1)  # "1 entry"
    xdc.write_bytes(bytes(raw))
    with pytest.raises(InvalidContainer, match="more than 100 entries|more than the 100 allowed"):
        open_app(xdc, ContainerLimits(max_files=100))


def test_oversized_table_of_contents_is_refused(tmp_path):
    xdc = make_xdc(tmp_path / "names.xdc", {"index.html": "", "n" * 1000: ""})
    with pytest.raises(InvalidContainer, match=r"table of contents is \d+ bytes, more than "
                                               r"the 1000 allowed"):
        open_app(xdc, ContainerLimits(max_directory_bytes=1000))
    with pytest.raises(InvalidContainer, match="file name is longer than the 999 bytes"):
        open_app(xdc, ContainerLimits(max_path_bytes=999))


def test_zip64_end_records_are_read(tmp_path):
    xdc = make_xdc(tmp_path / "plain.xdc", {"index.html": "<p>64</p>", "a.js": "1"})
    raw = xdc.read_bytes()
    end = raw.rfind(b"PK\x05\x06")
    _, _, _, _, entries, size, offset, _ = END.unpack_from(raw, end)
    xdc.write_bytes(raw[:end] + zip64_end(entries, size, offset))
    source = open_app(xdc)
    assert (source.read("index.html"), source.read("a.js")) == (b"<p>64</p>", b"1")
    with pytest.raises(InvalidContainer, match="2 entries, more than the 1 allowed"):
        open_app(xdc, ContainerLimits(max_files=1))


def test_archives_with_a_comment_or_data_before_them_are_read(tmp_path):
    xdc = tmp_path / "commented.xdc"
    with zipfile.ZipFile(xdc, "w") as archive:
        archive.writestr("index.html", "<p>c</p>")
        archive.comment = b"a comment of the archive " * 2000
    assert open_app(xdc).read("index.html") == b"<p>c</p>"
    prefixed = tmp_path / "prefixed.xdc"
    prefixed.write_bytes(b"#!/bin/sh\n" * 1000 + xdc.read_bytes())
    assert open_app(prefixed).read("index.html") == b"<p>c</p>"


def test_damaged_archives_are_invalid_containers(tmp_path):
    names = make_xdc(tmp_path / "names.xdc", {"index.html": "", "é.txt": ""})
    raw = bytearray(names.read_bytes())
    for at in [i for i in range(len(raw)) if raw.startswith("é".encode(), i)]:
        raw[at] = 0xFF  # flagged as UTF-8, and not
    names.write_bytes(bytes(raw))
    with pytest.raises(InvalidContainer, match="broken ZIP archive"):
        open_app(names)
    data = make_xdc(tmp_path / "data.xdc", {"index.html": "x" * 5000})
    raw = bytearray(data.read_bytes())
    raw[40:60] = b"\xff" * 20  # inside the deflated data of index.html
    data.write_bytes(bytes(raw))
    with pytest.raises(InvalidContainer, match="broken ZIP archive"):
        open_app(data)


def test_unreadable_app_path_is_an_invalid_container(tmp_path):
    with pytest.raises(InvalidContainer, match="cannot read the app|app not found"):
        open_app(tmp_path / ("a" * 300))
    assert os.pathconf(tmp_path, "PC_NAME_MAX") < 300
