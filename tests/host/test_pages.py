"""What the host sends for a page's files over a real socket: the guard at the head of HTML
documents, the Content-Security-Policy, the favicon, no service workers, and app files for
the page's sandboxed frames (and nothing else without the invite cookie)."""

from __future__ import annotations

import shutil
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from webxdc_rt.host.fetch_metadata import from_opaque_origin, renders_as_document

APPS = Path(__file__).parent.parent / "apps"
FRAMES_APP = APPS / "frames"
OPAQUE_FRAME = {"Origin": "null", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Dest": "script"}
"""What Chromium sends for a script of a sandboxed frame (no cookie: none is sent)."""


async def fetch(live_host, path: str, headers: dict[str, str] | None = None,
                cookie: bool = True, method: str = "GET",
                ) -> tuple[int, CIMultiDictProxy[str], bytes]:
    page = live_host.last_pages[0]
    sent = {"Host": f"{page.label}.localhost:{live_host.port}", **(headers or {})}
    if cookie:
        sent["Cookie"] = f"webxdc_rt={page.token}"
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"http://127.0.0.1:{live_host.port}{path}",
                                   headers=sent, allow_redirects=False) as response:
            return response.status, response.headers, await response.read()


async def test_html_documents_start_with_the_guard(live_host):
    live_host.share(["alice"], app_folder=FRAMES_APP)
    original = (FRAMES_APP / "sandboxed.html").read_bytes()
    for headers in ({}, {"Sec-Fetch-Dest": "document"}, {"Sec-Fetch-Dest": "iframe"}):
        status, response_headers, body = await fetch(live_host, "/sandboxed.html", headers)
        assert status == 200
        assert body.startswith(b"<!doctype html><script>(function webxdcGuard(")
        assert body.endswith(original[len(b"<!doctype html>"):])
        assert response_headers["Content-Type"] == "text/html; charset=utf-8"
    # Read by a script (fetch), the file is what the app holds.
    _, _, body = await fetch(live_host, "/sandboxed.html", {"Sec-Fetch-Dest": "empty"})
    assert body == original


async def test_the_policy_keeps_forms_base_and_framing_home_and_sandboxes_the_rest(live_host):
    live_host.share(["alice"], app_folder=FRAMES_APP)
    _, headers, _ = await fetch(live_host, "/")
    html_policy = headers["Content-Security-Policy"]
    for directive in ("frame-ancestors 'self'", "form-action 'self'", "base-uri 'self'",
                      "default-src 'self'"):
        assert directive in html_policy
    assert "webrtc" not in html_policy and "sandbox" not in html_policy
    for path, cookie in (("/data.txt", True), ("/webxdc.js", True), ("/missing", True),
                         ("/", False)):
        _, headers, _ = await fetch(live_host, path, cookie=cookie)
        assert headers["Content-Security-Policy"] == html_policy + "; sandbox", path


async def test_the_favicon_is_the_apps_icon_or_no_content(live_host, tmp_path: Path):
    live_host.share(["alice"], app_folder=FRAMES_APP)
    status, _, body = await fetch(live_host, "/favicon.ico")
    assert (status, body) == (204, b"")
    with_icon = tmp_path / "app"
    shutil.copytree(FRAMES_APP, with_icon)
    (with_icon / "icon.png").write_bytes(b"\x89PNG\r\n\x1a\n an icon")
    live_host.share(["alice"], app_folder=with_icon)
    status, headers, body = await fetch(live_host, "/favicon.ico")
    assert (status, headers["Content-Type"], body) == (200, "image/png",
                                                       b"\x89PNG\r\n\x1a\n an icon")


async def test_service_worker_scripts_are_refused(live_host):
    live_host.share(["alice"], app_folder=FRAMES_APP)
    status, _, _ = await fetch(live_host, "/sandboxed.js", {"Service-Worker": "script"})
    assert status == 403
    status, _, _ = await fetch(live_host, "/sandboxed.js")
    assert status == 200


async def test_a_sandboxed_frame_gets_app_files_and_nothing_else(live_host):
    live_host.share(["alice"], app_folder=FRAMES_APP)
    status, headers, body = await fetch(live_host, "/data.txt", OPAQUE_FRAME, cookie=False)
    assert (status, body) == (200, b"a data file of the frames app\n")
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert headers["Access-Control-Allow-Origin"] == "null"
    for path in ("/webxdc.js", "/.webxdc-rt/socket", "/.webxdc-rt/invite/x"):
        status, _, body = await fetch(live_host, path, OPAQUE_FRAME, cookie=False)
        assert status in (403, 404) and b"selfAddr" not in body, path
    refused = [
        {**OPAQUE_FRAME, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
        {**OPAQUE_FRAME, "Origin": f"http://other.localhost:{live_host.port}"},
        {**OPAQUE_FRAME, "Sec-Fetch-Site": "same-site"},
        {key: value for key, value in OPAQUE_FRAME.items() if key != "Origin"},
        {},
    ]
    for headers in refused:
        status, _, _ = await fetch(live_host, "/data.txt", headers, cookie=False)
        assert status == 403, headers
    status, _, _ = await fetch(live_host, "/data.txt", OPAQUE_FRAME, cookie=False, method="POST")
    assert status == 403


async def test_the_pages_own_requests_keep_same_origin_resources(live_host):
    live_host.share(["alice"], app_folder=FRAMES_APP)
    # With the cookie, even a request that looks like a neighbour's (same site, so the
    # cookie goes along under a shared domain) gets a response only this origin may read.
    for headers in ({}, {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}):
        _, response_headers, _ = await fetch(live_host, "/data.txt", headers)
        assert response_headers["Cross-Origin-Resource-Policy"] == "same-origin"
        assert "Access-Control-Allow-Origin" not in response_headers


@pytest.mark.parametrize("headers, opaque", [
    (OPAQUE_FRAME, True),
    ({**OPAQUE_FRAME, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, True),
    ({**OPAQUE_FRAME, "Sec-Fetch-Mode": "navigate"}, False),
    ({**OPAQUE_FRAME, "Origin": "http://a.localhost"}, False),
    ({**OPAQUE_FRAME, "Sec-Fetch-Site": "same-origin"}, False),
    ({}, False),
])
def test_opaque_origins_are_told_by_origin_and_fetch_metadata(headers, opaque: bool):
    assert from_opaque_origin(headers) is opaque


@pytest.mark.parametrize("destination, document", [
    (None, True), ("document", True), ("iframe", True), ("frame", True), ("object", True),
    ("embed", True), ("empty", False), ("script", False), ("image", False), ("worker", False),
])
def test_documents_are_told_by_their_destination(destination: str | None, document: bool):
    headers = {} if destination is None else {"Sec-Fetch-Dest": destination}
    assert renders_as_document(headers) is document
