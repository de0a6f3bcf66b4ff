"""`webxdc-rt dev http://...`: a real Vite dev server carried through every peer's origin,
in headless Chromium: the host's bridge in place of the dev server's mock, and a change to a
module applied in a peer's frame by Vite's hot module replacement, without a reload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser
from ports import free_port

from webxdc_rt.dev.simulator import Simulator

VITE = Path(__file__).parent / "npm" / "node_modules" / "vite" / "bin" / "vite.js"
INDEX = """<!doctype html><html><head><meta charset="utf-8"><script src="/webxdc.js"></script>
</head><body><p id="out"></p><script type="module" src="/main.js"></script></body></html>"""
MAIN = """document.getElementById("out").textContent = "%s " + window.webxdc.selfName;
if (import.meta.hot) import.meta.hot.accept();
"""


async def start_vite(app: Path) -> tuple[asyncio.subprocess.Process, int]:
    """Vite serving `app` once it says it is ready, on a free port (on another, should the
    port be taken before vite binds it: it then ends at once, `--strictPort`)."""
    said = b""
    for _ in range(3):
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            "node", str(VITE), str(app), "--port", str(port), "--strictPort", "--host",
            "127.0.0.1", "--clearScreen", "false", cwd=app,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert process.stdout is not None
        said = b""
        while b"ready in" not in said:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            if not line:  # it ended without being ready
                break
            said += line
        else:
            return process, port
        await process.wait()
    raise RuntimeError(f"vite did not start: {said.decode(errors='replace')}")


@pytest.fixture
async def vite(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    app = tmp_path / "app"
    (app / "public").mkdir(parents=True)
    (app / "index.html").write_text(INDEX)
    (app / "main.js").write_text(MAIN % "one")
    # A mock of the kind webxdc templates ship: the host's bridge must be served instead.
    (app / "public" / "webxdc.js").write_text('window.webxdc = {selfName: "mock"};')
    process, port = await start_vite(app)
    assert process.stdout is not None
    try:
        drain = asyncio.create_task(process.stdout.read())
        yield f"http://127.0.0.1:{port}", app
    finally:
        process.terminate()
        await process.wait()
    drain.cancel()


async def test_vite_hot_module_replacement_reaches_every_peer(
        vite: tuple[str, Path], browser: Browser) -> None:
    url, app = vite
    async with Simulator(url, 2) as simulator:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(simulator.dashboard_url)
        frames = {}
        for member in ("alice", "bob"):
            await page.wait_for_selector(f"iframe[name={member}]")
            frame = page.frame(name=member)
            assert frame is not None
            await frame.wait_for_function(
                f"document.getElementById('out')?.textContent === 'one {member}'")
            await frame.evaluate("window.marker = 'kept'")
            frames[member] = frame
        (app / "main.js").write_text(MAIN % "two")
        for member, frame in frames.items():
            await frame.wait_for_function(
                f"document.getElementById('out').textContent === 'two {member}'")
            assert await frame.evaluate("window.marker") == "kept"  # replaced, not reloaded
        await context.close()
