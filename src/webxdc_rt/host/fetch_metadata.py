"""What a browser's request headers say about who asks and what for (Fetch Metadata).

Browsers set `Origin` and the `Sec-Fetch-*` headers themselves and no page can forge them
(clients outside a browser can send anything, so these never grant more than a stranger
with the page's address could have anyway). No I/O.

What Chromium sends, observed for a page `http://A.localhost:P/` that holds its invite
cookie (host-only, HttpOnly, SameSite=Strict; responses say `Referrer-Policy: no-referrer`):

| request | Cookie | Origin | Sec-Fetch-Site |
|---|---|---|---|
| the page's own script or image | the page's | none | same-origin |
| `<iframe src=frame.html>` of the page, sandboxed or not | the page's | none | same-origin |
| script, image, style or `fetch()` of that frame, sandboxed | none | `null` | cross-site |
| another page `B.localhost:P` (a link, a popup, an image) | none | B or none | cross-site |
| another page `B.apps.example.org` (shared domain), `<img>` | the page's | none | same-site |

A document with an opaque origin (a sandboxed frame, or a frame or popup it opens) sends no
cookie at all, not even one marked `SameSite=None; Secure`, and no Referer under any
referrer policy: nothing in its requests tells this page's sandboxed frames from those of any
other page. Each `<label>.localhost` is a site of its own (`localhost` acts as a public
suffix), so another member's page never sends this page's cookie; under a shared domain it
may, and only `Cross-Origin-Resource-Policy: same-origin` on the response keeps it from
reading what it gets. Chromium sends `Sec-Fetch-*` to secure contexts only (https, and
`*.localhost`): over plain http on another domain no request counts as coming from an opaque
origin, and every one as possibly shown as a document.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DOCUMENT_DESTINATIONS", "from_opaque_origin", "renders_as_document"]

DOCUMENT_DESTINATIONS = frozenset({"document", "iframe", "frame", "object", "embed"})
"""`Sec-Fetch-Dest` values of responses that the browser shows as a document."""


def from_opaque_origin(headers: Mapping[str, str]) -> bool:
    """Whether this is a subresource request (script, image, style, font, `fetch()`) made by a
    document with an opaque origin, such as a frame the page sandboxed.

    Chromium marks these `Origin: null` and `Sec-Fetch-Site: cross-site`; navigations
    (`Sec-Fetch-Mode: navigate`) are not subresource requests.
    """
    return (headers.get("Origin") == "null"
            and headers.get("Sec-Fetch-Site") == "cross-site"
            and headers.get("Sec-Fetch-Mode") in ("no-cors", "cors"))


def renders_as_document(headers: Mapping[str, str]) -> bool:
    """Whether the response will be shown as a document (a page, frame or popup) rather than
    read by a script; browsers that send no `Sec-Fetch-Dest` count as showing it."""
    destination = headers.get("Sec-Fetch-Dest")
    return destination is None or destination in DOCUMENT_DESTINATIONS
