"""Helpers for tests that drive a live host with Python peers and raw WebSockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from webxdc_rt.chats import Page
from webxdc_rt.client import Peer, RealtimeChannel, connect


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` holds; fail the test if it does not within `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Member:
    """A Python peer joined to its channel, recording every item it receives."""

    def __init__(self, peer: Peer, channel: RealtimeChannel) -> None:
        self.peer = peer
        self.channel = channel
        self.inbox: list[bytes] = []
        channel.set_listener(self.inbox.append)

    async def got(self, item: bytes) -> None:
        """Wait until `item` arrived."""
        await eventually(lambda: item in self.inbox)


async def joined(url: str) -> Member:
    """Connect with an invite link, join, and wait until the join took effect."""
    peer = await connect(url)
    channel = peer.join_realtime_channel()
    member = Member(peer, channel)
    await eventually(lambda: peer._acked_epoch == channel.epoch)
    return member


async def raw_socket(port: int, page: Page, token: str | None = None,
                     headers_extra: dict[str, str] | None = None,
                     **kwargs) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    """A WebSocket to the host that ignores the bridge: it sends whatever the test wants."""
    session = aiohttp.ClientSession()
    headers = {"Host": f"{page.label}.localhost:{port}",
               "Authorization": f"Bearer {token or page.token}", **(headers_extra or {})}
    try:
        ws = await session.ws_connect(f"ws://127.0.0.1:{port}/.webxdc-rt/socket",
                                      headers=headers, **kwargs)
    except BaseException:
        await session.close()
        raise
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello"
    return session, ws


async def next_control(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict:
    """The next text frame from the host, skipping binary items."""
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type is not aiohttp.WSMsgType.BINARY:
            raise AssertionError(f"socket ended: {msg.type.name} {msg.data!r} {msg.extra!r}")


async def stalled_listener(url: str, serial: int = 0) -> asyncio.StreamWriter:
    """A WebSocket opened with an invite link that asks for the update backlog after
    `serial` and then never reads a byte; close the returned writer to end it."""
    parts = urlsplit(url)
    token = parts.path.rsplit("/", 1)[-1]
    reader, writer = await asyncio.open_connection("127.0.0.1", parts.port)
    writer.write((f"GET /.webxdc-rt/socket HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                  f"Authorization: Bearer {token}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
    await reader.readuntil(b"\r\n\r\n")
    payload = json.dumps({"type": "update-listen", "listen": 1, "serial": serial}).encode()
    writer.write(bytes([0x81, 0x80 | len(payload)]) + bytes(4) + payload)  # a zero mask
    await writer.drain()
    return writer
