"""What a page is served: the app's files, the `webxdc.js` bridge with the page's settings
filled in, and the headers every response gets (Content-Security-Policy, the security
headers, the host's `Server` name).

Every HTML document the page renders gets the guard script first (`html_guard`,
`static/guard.js`): it takes WebRTC away, which no CSP directive can. A request for an app
file from a sandboxed frame of the page (no cookie, see `routing.opaque_app_file_request`)
gets the file with headers that let an opaque origin load it.
"""

from __future__ import annotations

import json
import mimetypes
from importlib import resources

from aiohttp import web

from ..model.xdc import AppSource, normalize_app_path
from . import fetch_metadata, html_guard
from .hooks import AppProxy
from .routing import HOST_PREFIX, PAGE_KEY, opaque_app_file_request, text_response
from .settings import HostSettings

__all__ = ["Pages", "CONTENT_SECURITY_POLICY", "SANDBOXED_POLICY", "SERVER_NAME", "decorate",
           "on_response_prepare"]

SERVER_NAME = "webxdc-rt"
"""The `Server` header of every response: no Python or aiohttp version for scanners."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; "
    "style-src 'self' 'unsafe-inline' blob:; "
    "font-src 'self' data: blob:; "
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
    "connect-src 'self' data: blob:; "
    "img-src 'self' data: blob:; "
    "media-src 'self' data: blob:; "
    "worker-src 'self' blob:; "
    # Only the page itself may frame its files ('self'): another member's page, another app
    # copy or any site may not, so the page's frames are always its own. 'none' would break
    # apps that frame their own pages.
    "frame-ancestors 'self'; "
    # Forms may submit to the page's own origin and nowhere else (no form post reaches the
    # Internet); 'none' would turn a plain form into an error instead of a reload.
    "form-action 'self'; "
    # A <base> may point within the page's own origin only, so it cannot send relative links
    # and form posts elsewhere; 'none' would break apps that set <base href="sub/">.
    "base-uri 'self'"
)
"""Apps may reach their own origin, `data:` and `blob:` only: no Internet. Chromium has no
directive against WebRTC (it logs an error for `webrtc`), so the guard script that opens
every HTML document takes WebRTC away instead (`html_guard`, `static/guard.js`)."""
TRUSTED_TYPES_POLICY = "require-trusted-types-for 'script'"
"""Sent report-only with every guarded document: it blocks nothing, but it makes the browser
consult the guard's default Trusted Types policy about every string that becomes a `srcdoc`
document or the script of a `javascript:` URL, by whatever call, so the guard can put itself
first in those documents. (Enforced, it would also stop strings reaching `eval` and
`importScripts` in workers, which have no such policy.)"""
SANDBOXED_POLICY = CONTENT_SECURITY_POLICY + "; sandbox"
"""For every response that is not HTML: shown as a document (a text file, an SVG or XML
file, an error page), it runs no script and gets an opaque origin, so no app script can
reach its window, which the guard never ran in."""
_GUARD_ELEMENT = html_guard.inline_script(
    resources.files("webxdc_rt.host").joinpath("static/guard.js").read_text("utf-8"))

_CONTENT_TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
    ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm",
    ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp",
}

_BRIDGE_CONFIG = "/*WEBXDC_RT_CONFIG*/null"
"""Where `static/webxdc.js` takes the page's settings."""


class Pages:
    """Serves a page's app files and its bridge."""

    def __init__(self, settings: HostSettings, sources: dict[str, AppSource],
                 app_proxy: AppProxy | None = None) -> None:
        self.settings = settings
        self.sources = sources
        self.app_proxy = app_proxy
        """Answers requests for app files instead of the sources (see `hooks.AppProxy`)."""
        self._bridge_template = (
            resources.files("webxdc_rt.host").joinpath("static/webxdc.js").read_text("utf-8"))

    async def bridge(self, request: web.Request) -> web.StreamResponse:
        """`/webxdc.js`: the bridge, with the page's member and the host's limits in it."""
        page, settings = request[PAGE_KEY], self.settings
        config = {
            "selfAddr": page.self_addr,
            "selfName": page.member.name,
            "isAppSender": page.member.id == page.app.sender,
            "isBroadcast": False,
            "sendUpdateInterval": settings.updates.interval_ms,
            "sendUpdateMaxSize": settings.updates.max_payload_bytes,
            "socketPath": HOST_PREFIX + "/socket",
            "maxPayloadBytes": settings.realtime.max_payload_bytes,
            "maxPendingItems": settings.bridge_max_pending_items,
            "maxPendingBytes": settings.bridge_max_pending_bytes,
            "maxBufferedBytes": settings.bridge_max_buffered_bytes,
            "maxBufferedMs": settings.bridge_max_buffered_ms,
            "receiveWindowBytes": settings.delivery.receive_window_bytes,
        }
        # `</` is escaped so that no value can end a surrounding script element.
        config_js = json.dumps(config).replace("</", "<\\/")
        body = self._bridge_template.replace(_BRIDGE_CONFIG, config_js, 1)
        return web.Response(text=body, content_type="text/javascript",
                            headers={"Cache-Control": "no-store"})

    async def app_file(self, request: web.Request) -> web.StreamResponse:
        """Any other path: a file of the page's app."""
        if request.headers.get("Service-Worker") == "script":
            # A service worker could answer the page's requests with documents of its own
            # making, without this host's Content-Security-Policy or guard.
            return text_response(403, "Service workers are not available to webxdc apps.")
        if self.app_proxy is not None:
            return await self._proxied(request, self.app_proxy)
        response = self._from_source(request)
        if response.status == 200 and opaque_app_file_request(request):
            # A sandboxed frame of the page loads the app's files (see the rule).
            response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
            response.headers["Access-Control-Allow-Origin"] = "null"
        return response

    async def allow_framing(self, request: web.Request, response: web.StreamResponse) -> None:
        """Let the origins of `frame_ancestors` frame the page's documents."""
        policy = response.headers.get("Content-Security-Policy")
        if policy is not None:
            extra = " ".join(self.settings.frame_ancestors)
            response.headers["Content-Security-Policy"] = policy.replace(
                "frame-ancestors 'self'", f"frame-ancestors 'self' {extra}", 1)

    def _from_source(self, request: web.Request) -> web.Response:
        name = normalize_app_path(request.path)
        source = self.sources.get(request[PAGE_KEY].app.id)
        data = source.read(name) if (name is not None and source is not None) else None
        content_type = _content_type(name or "")
        if data is None and name == "favicon.ico" and source is not None:
            # Browsers ask for it on every page load; a 404 would be an error in the console.
            icon = source.read(source.icon) if source.icon else None
            if icon is None:
                return web.Response(status=204, headers={"Cache-Control": "no-cache"})
            data, content_type = icon, _content_type(source.icon or "")
        if data is None:
            return text_response(404, f"Not a file of this app: {request.path}")
        return _file_response(request, 200, data, content_type)

    @staticmethod
    async def _proxied(request: web.Request, proxy: AppProxy) -> web.StreamResponse:
        answer = await proxy(request)
        if isinstance(answer, web.StreamResponse):
            return answer  # a WebSocket carried through, or an error
        status, body, content_type = answer
        return _file_response(request, status, body, content_type)


def _file_response(request: web.Request, status: int, body: bytes,
                   content_type: str) -> web.Response:
    """An app file as served to a page: an HTML document it renders gets the guard first and
    the report-only policy that lets the guard see what becomes a document."""
    headers = {"Cache-Control": "no-cache"}
    charset = None
    if content_type == "text/html" and fetch_metadata.renders_as_document(request.headers):
        guarded = html_guard.guard_html(body, _GUARD_ELEMENT)
        body, charset = guarded.body, guarded.charset
        headers["Content-Security-Policy-Report-Only"] = TRUSTED_TYPES_POLICY
    return web.Response(status=status, body=body, content_type=content_type, charset=charset,
                        headers=headers)


def _content_type(name: str) -> str:
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _add_security_headers(response: web.StreamResponse) -> None:
    headers = response.headers
    policy = CONTENT_SECURITY_POLICY if response.content_type == "text/html" else SANDBOXED_POLICY
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")


def decorate(response: web.StreamResponse) -> None:
    """The host's own headers, on every response (handlers may set their own first)."""
    _add_security_headers(response)
    response.headers["Server"] = SERVER_NAME


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """`decorate`, as an aiohttp `on_response_prepare` signal."""
    decorate(response)
