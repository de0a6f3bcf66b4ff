"""The conformance app as packed and as shown: a valid `.xdc` with a name and an icon, small,
with nothing from outside; on a phone screen it reflows, its buttons are big enough to tap,
it follows dark mode and its colours have WCAG AA contrast."""

from __future__ import annotations

import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from webxdc_rt.conformance.hosts import WebxdcRt
from webxdc_rt.conformance.pack import app_files, pack
from webxdc_rt.conformance.runner import CHROMIUM, CHROMIUM_ARGS
from webxdc_rt.model.xdc import open_app

MAX_APP_BYTES = 64 * 1024


def test_pack_writes_a_xdc_the_host_accepts(tmp_path: Path) -> None:
    path = pack(tmp_path / "conformance.xdc")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert names[0] == "index.html" and {"manifest.toml", "icon.png"} <= set(names)
    assert open_app(path).name == "Realtime conformance"
    assert path.stat().st_size < MAX_APP_BYTES


def test_the_app_loads_nothing_from_outside() -> None:
    for name, data in app_files().items():
        if name.endswith((".html", ".js", ".css")):
            assert not re.search(rb"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", data), name
            assert b"import(" not in data and b"@import" not in data, name


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_colour_pair_has_aa_contrast(scheme: str) -> None:
    css = app_files()["style.css"].decode()
    light = dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6})", css.split("@media")[0]))
    dark = {**light, **dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6})", css.split("@media")[1]))}
    colours = light if scheme == "light" else dark
    pairs = [("fg", "bg"), ("muted", "bg"), ("pass", "bg"), ("fail", "bg"),
             ("button-fg", "button")]
    assert {f"{a}/{b}": round(_contrast(colours[a], colours[b]), 2) for a, b in pairs
            if _contrast(colours[a], colours[b]) < 4.5} == {}


@pytest.mark.parametrize("width", [320, 390])
async def test_on_a_phone_screen_it_reflows_and_follows_dark_mode(width: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        app = Path(work) / "app"
        app.mkdir()
        for name, data in app_files().items():
            (app / name).write_bytes(data)
        async with WebxdcRt().deploy(app, Path(work)) as deployment, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": width, "height": 700},
                                                color_scheme="dark")
            page = await context.new_page()
            await page.goto(deployment.first)
            await page.wait_for_function("() => window.conformance && window.conformance.ready")
            layout = await page.evaluate("""() => ({
              scroll: document.documentElement.scrollWidth,
              viewport: document.querySelector('meta[name=viewport]') !== null,
              buttons: [...document.querySelectorAll('button')].map(
                (b) => Math.min(b.offsetHeight, b.offsetWidth)),
              background: getComputedStyle(document.body).backgroundColor,
            })""")
            await browser.close()
    assert layout["viewport"] and layout["scroll"] <= width
    assert min(layout["buttons"]) >= 44
    assert layout["background"] == "rgb(18, 18, 18)"
