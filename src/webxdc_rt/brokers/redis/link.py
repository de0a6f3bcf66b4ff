"""One connection to Redis: hiredis's parser on an asyncio transport, the hello that opens
it (TLS when the address asks for it, credentials, then PING), TCP keepalive, and the loop
that keeps it open: connect, serve until it breaks, wait with backoff, connect again. What
the replies mean is for whoever uses the connection (`LinkEvents`); `ask` sends one command
on a connection of its own."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections.abc import Callable
from typing import Any, Protocol, cast

import hiredis

from ...core.describe import describe_exception
from ..limits import BrokerLimits
from .address import RedisAddress, tls_context

__all__ = ["Link", "LinkEvents", "keep_link", "command", "ask"]

log = logging.getLogger(__name__)

KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_PROBES = 10, 5, 3
"""TCP keepalive on both connections, so that a Redis host that vanished without closing
them (power loss, a cut network) is noticed within about 25 seconds."""


class Link(asyncio.Protocol):
    """One connection to Redis: replies are parsed by hiredis and handed to `on_reply`;
    `lost` completes with the reason once the connection ends."""

    def __init__(self, on_reply: Callable[[Any], None], max_pending_bytes: int) -> None:
        self.on_reply = on_reply
        self.max_pending_bytes = max_pending_bytes
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write commands on."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        """Hand every complete reply in `data` on; drop the connection when Redis sends what
        cannot be read, or more than `max_pending_bytes` of one reply."""
        reader = self.reader
        reader.feed(data)
        while True:
            try:
                while (reply := reader.gets()) is not False:
                    self.on_reply(reply)
                break
            except hiredis.ProtocolError as exc:
                self.drop(f"unreadable reply from Redis ({exc})")
                return
            except Exception as exc:  # a bug where an item is delivered: this item only
                log.error("broker: delivering a message from Redis failed: %s",
                          describe_exception(exc))
        if reader.len() > self.max_pending_bytes:
            self.drop(f"a message from Redis of over {self.max_pending_bytes} bytes")

    @property
    def alive(self) -> bool:
        """Connected and not lost: commands may be written."""
        return self.transport is not None and not self.lost.done()

    def drop(self, reason: str) -> None:
        """Close the connection for `reason` (the broker connects again)."""
        if not self.lost.done():
            self.lost.set_result(reason)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """Say why the connection ended (`lost`)."""
        if not self.lost.done():
            self.lost.set_result(f"connection lost ({exc})" if exc else "connection closed")


class LinkEvents(Protocol):
    """What uses one kept connection: its replies and the changes of its state."""

    def on_reply(self, reply: Any) -> None:
        """A reply from Redis on the connection."""

    def link_up(self, link: Link) -> None:
        """The connection is open and Redis answered: commands may be written."""

    def link_lost(self, reason: str) -> None:
        """The open connection broke; it is reopened after a wait."""

    def link_failed(self, reason: str) -> None:
        """An attempt to open the connection failed; another follows after a wait."""

    def link_closed(self) -> None:
        """The connection is closed for good (the broker stopped)."""


async def keep_link(address: RedisAddress, limits: BrokerLimits, events: LinkEvents,
                    max_pending_bytes: int, first: asyncio.Future[None]) -> None:
    """Until cancelled, keep one connection to Redis open for `events`; `first` completes
    once the first attempt succeeded or failed."""
    delay = limits.reconnect_min_s
    link: Link | None = None
    try:
        while True:
            link = Link(events.on_reply, max_pending_bytes)
            reason = await _hello(link, address, limits.connect_timeout_s)
            if reason is None:
                delay = limits.reconnect_min_s
                events.link_up(link)
                if not first.done():
                    first.set_result(None)
                events.link_lost(await link.lost)
            else:
                if link.transport is not None:
                    link.transport.abort()
                events.link_failed(reason)
                if not first.done():
                    first.set_result(None)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, limits.reconnect_max_s)
    finally:
        if link is not None and link.transport is not None:
            link.transport.abort()
        events.link_closed()


async def _hello(link: Link, address: RedisAddress, timeout_s: float) -> str | None:
    """Connect `link` and say hello (credentials, then PING); None once Redis answered,
    else why not."""
    loop = asyncio.get_running_loop()
    replies: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            tls = tls_context(address.tls) if address.tls is not None else None
            await loop.create_connection(
                lambda: link, address.host, address.port, ssl=tls,
                server_hostname=address.host if tls is not None else None)
            assert link.transport is not None
            _keep_alive(link.transport)
            answered: asyncio.Future[Any] = loop.create_future()
            serve = link.on_reply
            expected = 2 if address.password is not None else 1

            def hello(reply: Any) -> None:
                replies.append(reply)
                if len(replies) == expected and not answered.done():
                    answered.set_result(None)

            link.on_reply = hello
            if address.password is not None:
                auth = (("AUTH", address.username, address.password) if address.username
                        else ("AUTH", address.password))
                link.transport.write(command(*auth))
            link.transport.write(command("PING"))
            await asyncio.wait((answered, link.lost), return_when=asyncio.FIRST_COMPLETED)
            if link.lost.done():
                return link.lost.result()
            link.on_reply = serve
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except ssl.SSLCertVerificationError as exc:
        return (f"its TLS certificate is not accepted ({exc.verify_message}; the "
                "URL's ssl_ca_certs names the CA file to check it with)")
    except ssl.SSLError as exc:
        return f"TLS failed ({exc.reason or exc})"
    except OSError as exc:
        return exc.strerror or str(exc)
    refused = next((r for r in replies if isinstance(r, hiredis.ReplyError)), None)
    if refused is not None:
        return f"refused: {refused}"
    return None


async def ask(address: RedisAddress, limits: BrokerLimits, *args: str | bytes,
              max_reply_bytes: int = 1024 * 1024) -> Any:
    """Open a connection, send one command, return its reply (a `hiredis.ReplyError` when
    refused) and close; ConnectionError saying why when there is no reply."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Any] = loop.create_future()

    def on_reply(reply: Any) -> None:
        if not answer.done():
            answer.set_result(reply)

    link = Link(on_reply, max_reply_bytes)
    try:
        reason = await _hello(link, address, limits.connect_timeout_s)
        if reason is not None:
            raise ConnectionError(reason)
        assert link.transport is not None
        link.transport.write(command(*args))
        try:
            async with asyncio.timeout(limits.connect_timeout_s):
                await asyncio.wait((answer, link.lost), return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise ConnectionError(f"no answer within {limits.connect_timeout_s:g} s") from None
        if not answer.done():
            raise ConnectionError(link.lost.result())
        return answer.result()
    finally:
        link.drop("asked")


def command(*args: str | bytes) -> bytes:
    """One Redis command in the protocol's encoding (hiredis packs it)."""
    # The stubs of hiredis declare a one-element tuple; any number of arguments is meant.
    packed: bytes = hiredis.pack_command(cast(Any, args))
    return packed


def _keep_alive(transport: asyncio.Transport) -> None:
    """Turn on TCP keepalive where the platform offers it (see KEEPALIVE_IDLE_S)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
                              ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                              ("TCP_KEEPCNT", KEEPALIVE_PROBES)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    except OSError:
        pass  # keepalive is a refinement: without it the connection still works
