"""What keeps a page to itself, in headless Chromium: a clean console, no WebRTC by any way an
app can try, sandboxed frames that load the app's own files, and no other origin reading the
page's files, bridge or socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from playwright.async_api import Browser

from webxdc_rt.host.app import HostSettings

APPS = Path(__file__).parent.parent / "apps"
SOCKET_OPEN = """
(() => {
  const Native = window.WebSocket;
  window.__socketsOpen = 0;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("open", () => { window.__socketsOpen += 1; });
    }
  };
})();
"""


async def test_a_clean_page_load_logs_no_error_or_warning(live_host, browser: Browser):
    urls = live_host.share(["alice"], app_folder=APPS / "probe")
    frames_urls = live_host.share(["alice"], app_folder=APPS / "frames")
    context = await browser.new_context()
    await context.add_init_script(SOCKET_OPEN)
    messages: list[str] = []
    for url, ready in ((urls["alice"], "window.__socketsOpen === 1"),
                       (frames_urls["alice"], "window.__socketsOpen === 1 && window.frameReport")):
        page = await context.new_page()
        page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: messages.append(f"page error: {error}"))
        response = await page.goto(url)
        assert response is not None and response.ok
        await page.wait_for_function(ready)
        await page.evaluate("new Promise((resolve) => requestAnimationFrame(resolve))")
    await context.close()
    assert [m for m in messages if not m.startswith(("log:", "debug:", "info:"))] == []


async def test_the_probes_check_finds_webrtc_where_nothing_takes_it_away(browser: Browser):
    # The check the probe uses (gathering a candidate for a data channel's offer) works in
    # this browser: a page that no host serves has WebRTC and the check says so.
    page = await browser.new_page()
    works = (APPS / "webrtc-probe" / "works.js").read_text()
    assert await page.evaluate(f"(async () => {{ {works}; return webrtcWorks(window); }})()")
    await page.close()


async def test_no_way_an_app_tries_gets_a_working_rtcpeerconnection(live_host, open_page):
    urls = live_host.share(["alice"], app_folder=APPS / "webrtc-probe")
    page = await open_page(urls["alice"])
    results = await page.evaluate("probeWebRTC()")
    assert len(results) >= 45
    assert len([way for way in results if "srcdoc" in way and "sandboxed" in way]) >= 19
    working = {way for way, outcome in results.items() if outcome is True}
    assert working == set()


MARKUP_WITH_SRCDOC = """() => {
  const mark = (html) => {
    const holder = document.createElement("div");
    document.body.append(holder);
    holder.innerHTML = html;
    return holder;
  };
  const results = {};
  const table = mark("<table><tbody></tbody></table>").querySelector("tbody");
  table.innerHTML = "<tr><td>srcdoc</td></tr>";
  results.tbody = table.innerHTML;
  const select = mark("<select></select>").firstChild;
  select.innerHTML = "<option>srcdoc</option><option>b</option>";
  results.select = select.options.length;
  const middle = mark("<p>a</p><p id=m>m</p><p>z</p>").querySelector("#m");
  for (const where of ["beforebegin", "afterbegin", "beforeend", "afterend"]) {
    middle.insertAdjacentHTML(where, `<i>${where} srcdoc</i>`);
  }
  results.adjacent = middle.parentNode.innerHTML;
  const replaced = mark("<b>x</b><hr>");
  replaced.firstChild.outerHTML = "<em>srcdoc</em><u>y</u>";
  results.outer = replaced.innerHTML;
  const frame = mark('<iframe srcdoc="<p>srcdoc page</p>"></iframe>').firstChild;
  results.frameGuarded = frame.getAttribute("srcdoc").startsWith("<script>(function webxdcGuard(");
  return results;
}"""


async def test_markup_mentioning_srcdoc_is_parsed_as_in_place(live_host, open_page):
    # HTML strings that mention srcdoc are parsed apart by the guard (README, "No WebRTC"):
    # the result is what the browser makes of them in place.
    urls = live_host.share(["alice"], app_folder=APPS / "webrtc-probe")
    page = await open_page(urls["alice"])
    assert await page.evaluate(MARKUP_WITH_SRCDOC) == {
        "tbody": "<tr><td>srcdoc</td></tr>",
        "select": 2,
        "adjacent": '<p>a</p><i>beforebegin srcdoc</i><p id="m"><i>afterbegin srcdoc</i>m'
                    '<i>beforeend srcdoc</i></p><i>afterend srcdoc</i><p>z</p>',
        "outer": "<em>srcdoc</em><u>y</u><hr>",
        "frameGuarded": True,
    }




async def test_a_sandboxed_frame_of_the_page_loads_the_apps_files(live_host, open_page):
    urls = live_host.share(["alice"], app_folder=APPS / "frames")
    page = await open_page(urls["alice"])
    await page.wait_for_function("window.frameReport !== null")
    assert await page.evaluate("frameReport") == {
        "frame": True, "origin": "null", "image": 12, "margin": "7px",
        "data": "a data file of the frames app\n",
    }


# Run in a page of another origin that holds no Content-Security-Policy of this host (the
# strongest neighbour: a page of another app copy has the host's CSP and could not even ask).
TRY_TO_READ = """async (target) => {
  const load = (tag, attributes) => new Promise((resolve) => {
    const element = Object.assign(document.createElement(tag), attributes);
    element.onload = () => resolve("loaded");
    element.onerror = () => resolve("refused");
    document.body.append(element);
  });
  const read = async (path, options) => {
    try {
      const response = await fetch(target + path, options);
      return response.type === "opaque" ? "unreadable" : "read: " + await response.text();
    } catch (_) {
      return "refused";
    }
  };
  const fromOpaqueFrame = (path) => new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.sandbox = "allow-scripts";
    frame.srcdoc = `<script src="${target}${path}"
      onload="parent.postMessage('loaded', '*')" onerror="parent.postMessage('refused', '*')">
      <\\/script>`;
    addEventListener("message", (event) => resolve(event.data), { once: true });
    document.body.append(frame);
  });
  return {
    "bridge as script": await load("script", { src: target + "/webxdc.js" }),
    "bridge ran": typeof window.webxdc,
    "app script": await load("script", { src: target + "/sandboxed.js" }),
    "app image": await load("img", { src: target + "/picture.svg" }),
    "app style": await load("link", { rel: "stylesheet", href: target + "/sandboxed.css" }),
    "fetch bridge": await read("/webxdc.js", { credentials: "include" }),
    "fetch app file": await read("/data.txt", { credentials: "include" }),
    "no-cors app file": await read("/data.txt", { mode: "no-cors", credentials: "include" }),
    "socket": await new Promise((resolve) => {
      const socket = new WebSocket(target.replace(/^http/, "ws") + "/.webxdc-rt/socket");
      socket.onopen = () => resolve("open");
      socket.onclose = () => resolve("refused");
    }),
    "bridge in an opaque frame": await fromOpaqueFrame("/webxdc.js"),
  };
}"""
REFUSED = {
    "bridge as script": "refused", "bridge ran": "undefined", "app script": "refused",
    "app image": "refused", "app style": "refused", "fetch bridge": "refused",
    "fetch app file": "refused", "socket": "refused", "bridge in an opaque frame": "refused",
}


@pytest.fixture
async def intruder_server() -> AsyncIterator[int]:
    """A plain web server (no Content-Security-Policy) for a page of another origin."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>another origin</title><body></body>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


@pytest.mark.parametrize("domain", ["localhost", "apps.example.test"])
async def test_another_origin_cannot_read_the_pages_files_bridge_or_socket(
        hosts, launch_browser, intruder_server: int, domain: str):
    # Each <label>.localhost is a site of its own, so the neighbour sends no cookie of the
    # page; under a shared domain it is the same site and the page's cookie goes along.
    host = await hosts(HostSettings(domain=domain))
    urls = host.share(["alice"], app_folder=APPS / "frames")
    page_origin = "http://" + urlsplit(urls["alice"]).netloc
    intruder_origin = f"http://intruder.{domain}:{intruder_server}"
    args = [f"--host-resolver-rules=MAP *.{domain} 127.0.0.1",
            # Fetch Metadata, which tells sandboxed frames apart, is sent to secure contexts
            # only: as it would be over TLS in a real deployment under a shared domain.
            f"--unsafely-treat-insecure-origin-as-secure={page_origin},{intruder_origin}"]
    context = await (await launch_browser(args)).new_context()
    page = await context.new_page()
    assert (await page.goto(urls["alice"])).ok  # the browser now holds the page's cookie
    await page.wait_for_function("window.frameReport !== null")
    assert (await page.evaluate("frameReport"))["data"] == "a data file of the frames app\n"
    intruder = await context.new_page()
    await intruder.goto(intruder_origin + "/")
    outcome = await intruder.evaluate(TRY_TO_READ, page_origin)
    assert outcome.pop("no-cors app file") in ("unreadable", "refused")
    assert outcome == REFUSED


# XML documents of every shape a blob may hold: each posts what its own script saw.
XML_BLOBS = """async () => {
  const report = (label) => `<script xmlns="http://www.w3.org/1999/xhtml"><![CDATA[
    opener.postMessage({ label: "${label}", rtc: typeof RTCPeerConnection }, "*");
  ]]></script>`;
  const svg = 'xmlns="http://www.w3.org/2000/svg" width="10" height="10"';
  const blobs = {
    "svg": [`<svg ${svg}>${report("svg")}<rect width="10" height="10"/></svg>`,
            "image/svg+xml"],
    "declared": [`<?xml version="1.0" encoding="UTF-8"?>\\n<!-- > --><svg ${svg} a='>'>` +
                 `${report("declared")}</svg>`, "image/svg+xml;charset=utf-8"],
    "doctype": [`<!DOCTYPE svg [ <!ENTITY e "x>y"> <!-- ]> --> ]><svg ${svg}>` +
                `${report("doctype")}</svg>`, "image/svg+xml"],
    "onload": [`<svg ${svg} onload="opener.postMessage(` +
               `{ label: 'onload', rtc: typeof RTCPeerConnection }, '*')"/>`, "image/svg+xml"],
    "xhtml": [`<html xmlns="http://www.w3.org/1999/xhtml"><body>${report("xhtml")}</body>` +
              "</html>", "application/xhtml+xml"],
    "xml": [`<root>${report("xml")}</root>`, "text/xml"],
  };
  const seen = {};
  const all = new Promise((resolve) => window.addEventListener("message", (event) => {
    seen[event.data.label] = event.data.rtc;
    if (Object.keys(seen).length === Object.keys(blobs).length) resolve();
  }));
  const popups = [];
  for (const [text, type] of Object.values(blobs)) {
    popups.push(window.open(URL.createObjectURL(new Blob([text], { type }))));
  }
  await all;
  popups.forEach((popup) => popup.close());
  const image = new Image();
  image.src = URL.createObjectURL(new Blob([blobs.svg[0]], { type: "image/svg+xml" }));
  await image.decode();
  const refused = [
    "not xml <svg>",
    '<?xml-stylesheet type="text/xsl" href="t.xsl"?><root/>',  // XSLT: another document
  ].map((text) => {
    try {
      URL.createObjectURL(new Blob([text], { type: "text/xml" }));
      return false;
    } catch (error) {
      return error instanceof TypeError;
    }
  });
  return { seen, imageWidth: image.naturalWidth, refused };
}"""


async def test_an_xml_blob_document_runs_the_guard_first_and_stays_an_image(
        live_host, open_page):
    urls = live_host.share(["alice"], app_folder=APPS / "webrtc-probe")
    page = await open_page(urls["alice"])
    assert await page.evaluate(XML_BLOBS) == {
        "seen": dict.fromkeys(["svg", "declared", "doctype", "onload", "xhtml", "xml"],
                              "undefined"),
        "imageWidth": 10, "refused": [True, True],
    }
