"""Unit tests of the app container: opening a folder and reading its files safely."""

from __future__ import annotations

import pytest

from webxdc_rt.xdc import InvalidContainer, normalize_app_path, open_app


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
    (lambda p: p.write_text("x"), "must be a folder"),
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
