"""The simulator's dev-server mode: every peer's app requests are carried to a running dev
server (Vite's `http://localhost:5173`, say) through the peer's own origin, its hot-reload
WebSocket included, while the host keeps serving `/webxdc.js` (in place of any mock), its
headers and its guard. So the dev server's hot module replacement works inside every peer.

Nothing of the peer's own is sent on: no cookie, no Authorization; only the method, the
path and query, and the headers a dev server needs to answer (what it accepts, caching
validators, the WebSocket's subprotocol).

Nothing is compressed on the way: the proxy asks the dev server for identity bodies and
refuses any other, and neither of its WebSockets negotiates permessage-deflate. A page could
otherwise send a few kilobytes that inflate to megabytes at the host (and on to the dev
server), and a dev server could do the same to the host; carried as they are, bytes on the
wire are the bytes handled, within `ProxyLimits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp import WSMsgType, web

from ..core.limits import require_positive
from ..model.xdc import AppSource

__all__ = ["DevServerProxy", "DevServerApp", "ProxyLimits", "is_dev_server_url"]

log = logging.getLogger(__name__)

_FORWARDED_HEADERS = ("Accept", "Accept-Language", "If-None-Match", "If-Modified-Since",
                      "Sec-WebSocket-Protocol")


def is_dev_server_url(app: str) -> bool:
    """Whether `APP` names a running dev server rather than a folder or a `.xdc`."""
    return app.startswith(("http://", "https://"))


@dataclass(frozen=True)
class ProxyLimits:
    """Bounds of what is carried from a dev server."""

    max_response_bytes: int = 64 * 1024 * 1024
    """Largest response body taken from the dev server; larger ones are answered 502."""
    max_message_bytes: int = 16 * 1024 * 1024
    """Largest WebSocket message carried either way."""
    timeout_s: float = 30.0
    """How long one request to the dev server may take."""

    def __post_init__(self) -> None:
        require_positive(self)


@dataclass(frozen=True)
class DevServerApp(AppSource):
    """The app as a dev server serves it: the host reads no files of its own."""

    url: str = ""

    def read(self, name: str) -> bytes | None:
        """Nothing: every file comes through the proxy."""
        return None


class DevServerProxy:
    """Carries a page's app requests and WebSockets to the dev server at `base_url`."""

    def __init__(self, base_url: str, limits: ProxyLimits | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not a dev server URL: {base_url!r}")
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.limits = limits or ProxyLimits()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the connections to the dev server."""
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.limits.timeout_s),
                auto_decompress=False)
        return self._session

    async def __call__(self, request: web.Request) -> tuple[int, bytes, str] | web.StreamResponse:
        """Answer one app request of a page from the dev server."""
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS
                   if name in request.headers}
        target = self.base_url + request.rel_url.path_qs
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, target, headers)
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="Only GET and HEAD reach the dev server.\n")
        try:
            async with self._client().request(
                    request.method, target, allow_redirects=False,
                    headers={**headers, "Accept-Encoding": "identity"}) as answer:
                encoding = answer.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding != "identity":
                    return web.Response(status=502, text=f"The dev server sent a compressed "
                                        f"answer (Content-Encoding: {encoding}) although "
                                        f"asked for none.\n")
                body = await _read_at_most(answer.content, self.limits.max_response_bytes)
                if body is None:
                    return web.Response(
                        status=502, text=f"The dev server's answer is larger than "
                        f"{self.limits.max_response_bytes} bytes (max_response_bytes).\n")
                return answer.status, body, answer.content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.Response(status=502, text=f"The dev server at {self.base_url} did not "
                                                 f"answer: {type(exc).__name__}.\n")

    async def _websocket(self, request: web.Request, target: str,
                         headers: dict[str, str]) -> web.StreamResponse:
        protocols = tuple(p.strip() for p in
                          headers.pop("Sec-WebSocket-Protocol", "").split(",") if p.strip())
        limit = self.limits.max_message_bytes
        try:
            upstream = await self._client().ws_connect(
                "ws" + target[4:], protocols=protocols, headers=headers,
                max_msg_size=limit, autoping=True, compress=0)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.Response(status=502, text=f"The dev server refused the WebSocket: "
                                                 f"{type(exc).__name__}.\n")
        ws = web.WebSocketResponse(protocols=protocols, max_msg_size=limit, heartbeat=30.0,
                                   compress=False)
        await ws.prepare(request)

        async def carry(source: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
                        sink: aiohttp.ClientWebSocketResponse | web.WebSocketResponse) -> None:
            async for message in source:
                if message.type is WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type is WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                else:
                    break

        tasks = [asyncio.create_task(carry(ws, upstream)),
                 asyncio.create_task(carry(upstream, ws))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            # Waited for, not awaited: awaiting a cancelled task raises a CancelledError
            # that cannot be told from a cancellation of this handler arriving meanwhile,
            # and ignoring it would ignore that too. Their errors (a side gone) end the
            # proxying as their end does.
            await asyncio.wait(tasks)
            for task in tasks:
                if not task.cancelled():
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        task.result()
            await upstream.close()
            await ws.close()
        return ws


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is found to be longer than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
