"""Unit tests of the app container: opening a folder and reading its files safely."""

from __future__ import annotations

import zipfile

import pytest

from webxdc_rt.xdc import ContainerLimits, InvalidContainer, normalize_app_path, open_app


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


def test_manifest_name(tmp_path):
    (tmp_path / "index.html").write_text("")
    (tmp_path / "manifest.toml").write_text('name = "Poll"\nsource_code_url = "https://x"\n')
    source = open_app(tmp_path)
    assert (source.name, source.source_code_url) == ("Poll", "https://x")


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
