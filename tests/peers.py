"""Helpers for tests that drive a live host with Python peers and raw WebSockets."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Request,
    TextMessage,
)

from webxdc_rt.client import SOCKET_PATH, Peer, RealtimeChannel, connect
from webxdc_rt.model.chats import Page
from webxdc_rt.stores.api import StoreApi, StoredUpdate

HANG_S = 30.0
"""How long a wait for the host's next message may take before the test calls it a hang:
far longer than this process can be held up (a garbage collection of a big test session
on a busy machine has taken over 5 s)."""
POLL_S = 0.005
"""How often `eventually` looks."""
HELD_UP_COUNTS_S = 0.5
"""What one look of `eventually` (its wait and its predicate) counts at most towards its
timeout, however long it took."""


async def eventually(predicate: Callable[[], bool | Awaitable[bool]],
                     timeout: float = 10.0) -> None:
    """Wait until `predicate()` (awaited, if it gives an awaitable) holds; fail the test if
    it does not within `timeout` seconds of this process running. A stretch in which the
    whole process was held up (a long garbage collection of a big test session, a busy
    machine) counts as one look: what arrived meanwhile has not been read yet, and gets its
    turn of the event loop."""
    loop = asyncio.get_running_loop()
    waited = 0.0
    last = loop.time()
    while not await _holds(predicate):
        now = loop.time()
        waited += min(now - last, HELD_UP_COUNTS_S)
        last = now
        if waited > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(POLL_S)


async def _holds(predicate: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = predicate()
    return await result if inspect.isawaitable(result) else result


async def stored_updates(store: StoreApi, app_id: str, after: int = 0) -> list[StoredUpdate]:
    """Every update of an app copy stored after the serial `after`, in order, read as a
    host reads them (chunk by chunk, off the event loop)."""
    found: list[StoredUpdate] = []
    while chunk := (await store.read_updates(app_id, after, 1 << 20)).updates:
        found += chunk
        after = chunk[-1].serial
    return found


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
    await channel.joined()
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
    hello = await ws.receive_json(timeout=HANG_S)
    assert hello["type"] == "hello"
    return session, ws


async def next_control(ws: aiohttp.ClientWebSocketResponse, timeout: float = HANG_S
                       ) -> dict:
    """The next text frame from the host, skipping binary items."""
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type is not aiohttp.WSMsgType.BINARY:
            raise AssertionError(f"socket ended: {msg.type.name} {msg.data!r} {msg.extra!r}")


def without_time(message: dict) -> dict:
    """A message from the host without its reading of the host's clock (`time_ms`, in
    `joined`), which differs from run to run."""
    return {key: value for key, value in message.items() if key != "time_ms"}


class BareSocket:
    """A WebSocket to the host over a TCP connection that the test holds itself (wsproto
    does the framing). Nothing is read but in `receive`: a test that stops calling it is a
    receiver that stopped reading (a few hundred KiB later the kernel's buffers are full and
    the host's writes back up). `close` drops the connection with no close handshake, as a
    lost link does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()
        self._closed = False

    @classmethod
    async def connect(cls, port: int, host: str, token: str) -> BareSocket:
        """Open the socket of the page served at `host` with its invite `token`, and read
        the host's hello."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = cls(reader, writer)
        sock._write(Request(host=host, target=SOCKET_PATH,
                            extra_headers=[(b"authorization", f"Bearer {token}".encode())]))
        answer = await sock._next_event()
        if not isinstance(answer, AcceptConnection):
            sock.close()
            raise ConnectionError(f"the host refused the socket: {answer!r}")
        hello = await sock.next_control()
        assert hello["type"] == "hello"
        return sock

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send one control message."""
        self._write(TextMessage(json.dumps(message)))
        await self._writer.drain()

    async def receive(self, timeout: float = HANG_S) -> str | bytes | CloseConnection:
        """The next whole message from the host (text or binary), or how the link ended."""
        async with asyncio.timeout(timeout):
            parts: list[Any] = []
            while True:
                event = await self._next_event()
                if isinstance(event, (TextMessage, BytesMessage)):
                    parts.append(event.data)
                    if event.message_finished:
                        return ("" if isinstance(event, TextMessage) else b"").join(parts)
                elif isinstance(event, Ping):
                    self._write(event.response())
                elif isinstance(event, CloseConnection):
                    return event

    async def next_control(self, timeout: float = HANG_S) -> dict[str, Any]:
        """The next control message from the host, skipping binary items."""
        while True:
            message = await self.receive(timeout)
            if isinstance(message, str):
                return json.loads(message)
            if isinstance(message, CloseConnection):
                raise AssertionError(f"socket ended: {message.code} {message.reason!r}")

    def close(self) -> None:
        """Drop the TCP connection at once, without a WebSocket close handshake."""
        self._writer.close()

    def _write(self, event: Event) -> None:
        self._writer.write(self._ws.send(event))

    async def _next_event(self) -> Event:
        while not self._events:
            if self._closed:
                raise ConnectionError("the host closed the connection")
            data = await self._reader.read(64 * 1024)
            self._closed = not data
            self._ws.receive_data(data or None)  # None: the connection ended
            self._events.extend(self._ws.events())
        event = self._events.popleft()
        if isinstance(event, CloseConnection):
            self._closed = True
        return event


async def bare_socket(port: int, page: Page) -> BareSocket:
    """A `BareSocket` to `page` on the host listening on `port`, hello read."""
    return await BareSocket.connect(port, f"{page.label}.localhost:{port}", page.token)


class Relay:
    """A TCP relay between Python peers and the host that can hold back what the host
    sends: while held, the peers read nothing, as if they had stopped reading, and what
    they send still goes through. It can also cut every link it relays and refuse new
    ones, as a network that fails would. Peers connect with `invite(url)`."""

    def __init__(self, host_port: int) -> None:
        self._host_port = host_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.refusing = False
        """While set, a connection is closed as soon as it is accepted."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Relay:
        """Start listening on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    def invite(self, url: str) -> str:
        """The invite link `url`, through this relay."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))

    @property
    def connections(self) -> int:
        """The connections it relays now."""
        return len(self._tasks)

    def hold(self) -> None:
        """Stop passing on what the host sends."""
        self._flowing.clear()

    def release(self) -> None:
        """Pass on what the host sent meanwhile, and from then on."""
        self._flowing.set()

    async def cut(self) -> None:
        """Drop every relayed connection, and whatever it held back; keep listening."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop listening and drop every relayed connection."""
        if self._server is not None:
            self._server.close()
        await self.cut()

    async def _relay(self, peer_reader: asyncio.StreamReader,
                     peer_writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            peer_writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        host_reader, host_writer = await asyncio.open_connection("127.0.0.1", self._host_port)
        try:
            await asyncio.gather(self._pump(peer_reader, host_writer, None),
                                 self._pump(host_reader, peer_writer, self._flowing))
        except ConnectionError:
            pass  # either side dropped the link: so does the relay
        finally:
            host_writer.close()
            peer_writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    gate: asyncio.Event | None) -> None:
        while data := await reader.read(64 * 1024):
            if gate is not None:
                await gate.wait()
            writer.write(data)
            await writer.drain()
        writer.close()


async def stalled_listener(url: str, serial: int = 0) -> BareSocket:
    """A socket opened with an invite link that asks for the update backlog after `serial`
    and then never reads a byte; `close()` it to end it."""
    parts = urlsplit(url)
    sock = await BareSocket.connect(parts.port or 80, parts.netloc, parts.path.rsplit("/", 1)[-1])
    await sock.send_json({"type": "update-listen", "listen": 1, "serial": serial})
    return sock
