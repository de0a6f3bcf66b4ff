"""Which page a request is for, and whether it may have it: origin routing and invites.

Every page lives at `http://<label>.<domain>:<port>/`: the browser keeps storage apart per
origin, so members and app copies never share `localStorage` even in one browser. The invite
link `/.webxdc-rt/invite/<token>` on that origin sets a host-only cookie; every other request
needs that cookie (browsers) or `Authorization: Bearer <token>` (the Python peer), else it is
refused (R14), with one exception for the app's files (`opaque_app_file_request`). Under a
shared domain a sibling origin may set a cookie of the same name for the whole domain; the
browser then sends both, so every value is tried and the one valid for the origin asked is
taken (see `presented_tokens`). Only the
pages of the app copies this process serves exist: pages stored in the same data folder by
another run are unknown here. Origins that are no app page (a member's home page, the
simulator's dashboard) are served by the `OriginResolver`s mounted beside them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from ..model.chats import Entrance, Page, Registry
from ..model.xdc import AppSource
from . import fetch_metadata, http_guard
from .settings import HostSettings

__all__ = ["HOST_PREFIX", "SESSION_COOKIE", "SECURE_SESSION_COOKIE", "PAGE_KEY",
           "OriginResolver", "Router", "presented_tokens", "presents", "same_origin",
           "invite_response", "opaque_app_file_request", "text_response"]

HOST_PREFIX = "/.webxdc-rt"
"""Path prefix of the host's own endpoints on every page origin."""
SESSION_COOKIE = "webxdc_rt"
"""Name of the host-only cookie that carries a page's token after its invite was opened
(over http)."""
SECURE_SESSION_COOKIE = "__Host-" + SESSION_COOKIE
"""Its name over https: browsers take a `__Host-` cookie only when it is Secure, has Path=/
and no Domain, so no other origin (a sibling under the shared domain) can set one that
reaches this origin."""
_SESSION_COOKIES = frozenset({SESSION_COOKIE, SECURE_SESSION_COOKIE})
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""What a token can look like (`secrets.token_urlsafe`); other values are passed over."""
PAGE_KEY = web.RequestKey("page", Page)
"""Where a request admitted to a page holds that page."""

OriginResolver = Callable[[str], Handler | None]
"""Given the label of an origin that is no app page (`<label>.<domain>`), the handler that
serves it, or None: how a member's home page is served beside the app pages."""


class Router:
    """Finds the page of each request by its origin and admits the request or refuses it."""

    def __init__(self, registry: Registry, sources: dict[str, AppSource],
                 settings: HostSettings) -> None:
        self.registry = registry
        self.sources = sources
        self.settings = settings
        self._resolvers: list[OriginResolver] = []

    def mount(self, resolver: OriginResolver) -> None:
        """Serve the origins `resolver` knows beside the app pages."""
        self._resolvers.append(resolver)

    def invite_url(self, page: Entrance, port: int) -> str:
        """The secret link that opens `page` (or a home page) as its member."""
        settings = self.settings
        shown_port = settings.public_port or port
        default = {"http": 80, "https": 443}.get(settings.scheme)
        port_part = "" if shown_port == default else f":{shown_port}"
        return (f"{settings.scheme}://{page.label}.{settings.domain}{port_part}"
                f"{HOST_PREFIX}/invite/{page.token}")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Route a request to its page (under `PAGE_KEY`) or to a mounted origin; refuse it
        without a valid invite."""
        page = self.page_for_host(request.host)
        if page is None:
            label = self.label_of_host(request.host)
            for resolve in self._resolvers if label is not None else ():
                origin_handler = resolve(label or "")
                if origin_handler is not None:
                    return await origin_handler(request)
            return _refusal(404, "No webxdc app is served at this address; "
                                 "open an invite link.")
        if not request.path.startswith(HOST_PREFIX + "/invite/"):
            if presents(request, page, self.settings.max_session_cookies):
                http_guard.admit(request, page.label)
            elif not opaque_app_file_request(request):
                return _refusal(403, "This page needs its invite link: "
                                     "open the link you were given.")
        request[PAGE_KEY] = page
        return await handler(request)

    def page_for_host(self, host: str) -> Page | None:
        """The page served at this Host header: only pages of the app copies this process
        serves; pages another run stored in the same data folder are as unknown as any."""
        label = self.label_of_host(host)
        page = self.registry.page(label) if label is not None else None
        if page is None or page.app.id not in self.sources:
            return None
        return page

    def label_of_host(self, host: str) -> str | None:
        """The origin label a Host header names under this host's domain, if it does."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        suffix = "." + self.settings.domain
        if not name.lower().endswith(suffix):
            return None
        return name[: -len(suffix)].lower()

    async def invite(self, request: web.Request) -> web.StreamResponse:
        """The invite link of a page: its cookie if the token is the page's."""
        page = request[PAGE_KEY]
        if not page.token_matches(request.match_info["token"]):
            return _refusal(403, "This invite link is not valid.")
        http_guard.admit(request, page.label)
        return invite_response(request, page.token, self.settings.scheme == "https")

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        """Any other path under `HOST_PREFIX`."""
        return text_response(404, f"Unknown host endpoint: {request.path}")


def presented_tokens(request: web.Request, max_cookies: int) -> list[str]:
    """The tokens a request shows: every value of the page's cookie (browsers), in the order
    sent, then `Authorization: Bearer` (programs). Values that no invite sets are passed
    over; of the cookie's values the first `max_cookies` are looked at.

    All are kept because the browser sends a cookie a sibling origin set for the whole
    domain beside the page's own, in either order, and aiohttp's `request.cookies` keeps only
    one value of a name: whichever it kept would decide. Only a value valid for the origin
    asked admits a request, so the others are simply not it."""
    tokens = [value for value in itertools.islice(_session_cookie_values(request), max_cookies)
              if _TOKEN_SHAPE.fullmatch(value)]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _TOKEN_SHAPE.fullmatch(value):
        tokens.append(value)
    return tokens


def _session_cookie_values(request: web.Request) -> Iterator[str]:
    """Each value of the page's cookie in the request's `Cookie` lines (a proxy may split
    them into several), in the order sent."""
    for header in request.headers.getall("Cookie", ()):
        for pair in header.split(";"):
            name, sep, value = pair.partition("=")
            if sep and name.strip() in _SESSION_COOKIES:
                yield value.strip()


def presents(request: web.Request, entrance: Entrance, max_cookies: int) -> bool:
    """Whether any token the request shows (`presented_tokens`) is that of `entrance`."""
    return any(entrance.token_matches(token)
               for token in presented_tokens(request, max_cookies))


_CONTINUE_PAGE = ('<!doctype html><html><head><meta charset="utf-8">'
                  '<meta http-equiv="refresh" content="0;url=/"><title>webxdc-rt</title>'
                  '</head><body><a href="/">Continue</a></body></html>')


def invite_response(request: web.Request, token: str, secure: bool) -> web.Response:
    """The answer to a valid invite link: the origin's host-only cookie, and on to `/`.
    Over https (`secure`) it is a `__Host-` cookie, which no other origin can set.

    A link followed from another site (a member's home page, a web mail) is answered with a
    page that moves on by itself rather than a redirect: a redirect would keep the
    navigation cross-site, and the browser would not send the SameSite=Strict cookie with
    it; the page's own navigation is same-site, so it does."""
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        response = web.Response(text=_CONTINUE_PAGE, content_type="text/html",
                                headers={"Cache-Control": "no-store"})
    else:
        response = web.Response(status=303, headers={"Location": "/"})
    response.set_cookie(SECURE_SESSION_COOKIE if secure else SESSION_COOKIE, token,
                        httponly=True, samesite="Strict", secure=secure, path="/")
    return response


def same_origin(request: web.Request) -> bool:
    """True when the request has no Origin (not a browser) or comes from its own origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # e.g. an unclosed IPv6 bracket: no origin of ours
        return False
    return netloc.lower() == request.host.lower()


def opaque_app_file_request(request: web.Request) -> bool:
    """Whether a request without the invite cookie may still have an app file: a script,
    image, style, font or `fetch()` of a document with an opaque origin, such as a frame the
    page sandboxed (`<iframe sandbox="allow-scripts" src="frame.html">`).

    Such documents send no cookie and no Referer, so the host cannot tell the page's own
    sandboxed frames from those of another page (`fetch_metadata` has what Chromium sends).
    What it hands out is therefore only what every member of the chat received in the
    `.xdc` anyway, to whoever knows the page's unguessable address: the app's files, never
    documents (navigations still need the cookie, and `frame-ancestors` keeps other origins
    from framing them), never the bridge (`selfAddr`, `selfName`) and never the socket.
    Real origins, another member's page included, still need the cookie and get
    `Cross-Origin-Resource-Policy: same-origin`.
    """
    path = request.path
    return (request.method in ("GET", "HEAD") and path != "/webxdc.js"
            and not path.startswith(HOST_PREFIX + "/")
            and fetch_metadata.from_opaque_origin(request.headers))


def text_response(status: int, message: str) -> web.Response:
    """A short plain-text answer (an error a person or a program reads)."""
    return web.Response(status=status, text=message + "\n")


def _refusal(status: int, message: str) -> web.Response:
    """A refusal for want of a page or an invite; the connection is closed after it, so an
    unauthenticated client holds no connection beyond its one request."""
    response = text_response(status, message)
    response.force_close()
    return response
