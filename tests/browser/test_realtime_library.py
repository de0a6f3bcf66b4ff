"""A third-party client library of the realtime API, @webxdc/realtime from npm, runs unchanged:
presence heartbeats and a payload it chunks at 126 KB."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

LIBRARY = (Path(__file__).parent / "npm" / "node_modules" / "@webxdc" / "realtime" / "dist"
           / "realtime.js")
APP = Path(__file__).parent.parent / "apps" / "realtime-lib"
PAYLOAD_BYTES = 300_000


@pytest.fixture
def library_app(tmp_path: Path) -> Path:
    """The test app with the library bundled in, as an app author would ship it."""
    if not LIBRARY.exists():
        pytest.fail(f"{LIBRARY} missing: run `npm ci` in {LIBRARY.parents[4]}")
    app = tmp_path / "realtime-lib"
    shutil.copytree(APP, app)
    shutil.copy(LIBRARY, app / "realtime.js")
    return app


async def test_two_pages_see_each_other_and_exchange_a_chunked_payload(
        live_host, open_page, library_app):
    urls = live_host.share(["alice", "bob"], app_folder=library_app)
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    ids = [await page.evaluate("window.deviceId") for page in (alice, bob)]
    assert ids[0] != ids[1]
    # Each page sees the other online and never itself: two peers in all, not three.
    await alice.wait_for_function(f"peerIds.length === 1 && peerIds[0] === {ids[1]!r}",
                                  timeout=20_000)
    await bob.wait_for_function(f"peerIds.length === 1 && peerIds[0] === {ids[0]!r}",
                                timeout=20_000)
    checksum = await alice.evaluate(f"""() => {{
        const payload = new Uint8Array({PAYLOAD_BYTES});
        for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) % 256;
        realtime.sendPayload(payload);
        return payload.reduce((a, b) => (a * 31 + b) % 1000003, 0);
    }}""")
    await bob.wait_for_function("payloads.length === 1", timeout=20_000)
    assert await bob.evaluate("payloads[0]") == {
        "from": ids[0], "length": PAYLOAD_BYTES, "checksum": checksum}
    assert await alice.evaluate("payloads.length") == 0
    # The 300,000 bytes crossed the host as three items, all within the 128000-byte limit.
    assert await bob.evaluate("window.__socketItems") >= 3
