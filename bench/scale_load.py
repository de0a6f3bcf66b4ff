"""The load process of bench/scale.py: many WebSocket clients on raw asyncio sockets (no
client library, so that one process holds tens of thousands and reads each item with a
few microseconds of Python), driven by one JSON command a line on stdin, answering one JSON
object a line on stdout.

    python bench/scale_load.py      (then commands on stdin; see COMMANDS)

Each client opens `GET /.webxdc-rt/socket` (webxdc-rt: a `Bearer` invite token; the bare
relay: `/`), joins the realtime channel on the host's hello (unstamped items) and then only
reads. A received item's first 8 bytes are the sender's `time.time()` (big-endian double)
and the next 4 its sequence number; the client keeps (seq, latency) for `report`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import struct
import sys
import time
from typing import Any

ITEM_HEAD = struct.Struct("!dI")


def mask_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (FIN set, masked as RFC 6455 requires of clients)."""
    key = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    whole = int.from_bytes((key * (length // 4 + 1))[:length], "big")
    masked = (int.from_bytes(payload, "big") ^ whole).to_bytes(length, "big") if length else b""
    return head + key + masked


class Client(asyncio.Protocol):
    """One WebSocket connection: upgrade, join on hello, then collect items."""

    def __init__(self, endpoint: dict[str, Any], stats: Stats) -> None:
        self.endpoint, self.stats = endpoint, stats
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        assert self.transport is not None
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [f"GET {self.endpoint['path']} HTTP/1.1", f"Host: {self.endpoint['host']}",
                   "Upgrade: websocket", "Connection: Upgrade",
                   f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if self.endpoint.get("token"):
            headers.append(f"Authorization: Bearer {self.endpoint['token']}")
        self.transport.write(("\r\n".join(headers) + "\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.lost += 1
        if not self.joined.done():
            stage = "after the upgrade" if self.upgraded else "before the upgrade answer"
            self.joined.set_exception(ConnectionError(f"closed {stage}: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:end]).split(b"\r\n", 1)[0]
            del self.buffer[:end + 4]
            if b" 101 " not in status + b" ":
                self.joined.set_exception(ConnectionError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            if self.endpoint.get("bare"):
                self.joined.set_result(None)
        self.read_frames()

    def read_frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start:start + length])
            del buffer[:start + length]
            self.frame(opcode, payload)

    def frame(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == 2:
            sent, seq = ITEM_HEAD.unpack_from(payload)
            self.stats.items.append((seq, time.time() - sent))
        elif opcode == 1:
            message = json.loads(payload)
            if message["type"] == "hello":
                self.send_text({"type": "join", "epoch": 1})
            elif message["type"] == "joined" and not self.joined.done():
                self.joined.set_result(None)
            elif message["type"] == "error":
                self.stats.errors[message.get("code", "?")] = (
                    self.stats.errors.get(message.get("code", "?"), 0) + 1)
        elif opcode == 9:
            self.transport.write(mask_frame(10, payload))
        elif opcode == 8:
            self.transport.close()

    def send_text(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(mask_frame(1, json.dumps(message).encode()))

    def send_item(self, seq: int, size: int) -> None:
        assert self.transport is not None
        body = ITEM_HEAD.pack(time.time(), seq)
        self.transport.write(mask_frame(2, body + b"x" * max(0, size - len(body))))


class Stats:
    """What this process's clients saw."""

    def __init__(self) -> None:
        self.items: list[tuple[int, float]] = []
        self.errors: dict[str, int] = {}
        self.lost = 0


class Load:
    """The clients of this process and the commands that drive them."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.clients: list[Client] = []

    async def connect(self, endpoints: list[dict[str, Any]], count: int, sources: list[str],
                      concurrency: int, timeout: float) -> dict[str, Any]:
        """Open `count` more clients over `endpoints` (round robin), from the `sources`
        addresses in turn, `concurrency` at a time; stop at the first failure or timeout."""
        loop = asyncio.get_running_loop()
        started, deadline = time.monotonic(), time.monotonic() + timeout
        failure: str | None = None
        gate = asyncio.Semaphore(concurrency)
        base = len(self.clients)

        async def one(index: int) -> None:
            nonlocal failure
            async with gate:
                if failure or time.monotonic() > deadline:
                    return
                endpoint = endpoints[index % len(endpoints)]
                source = sources[index % len(sources)] if sources else None
                stage = "connect"
                try:
                    _, client = await asyncio.wait_for(loop.create_connection(
                        lambda: Client(endpoint, self.stats), endpoint["ip"],
                        endpoint["port"], local_addr=(source, 0) if source else None), 30)
                    stage = "upgrade and join"
                    await asyncio.wait_for(client.joined, 30)
                    self.clients.append(client)
                except (OSError, ConnectionError, asyncio.TimeoutError) as error:
                    failure = failure or f"{stage}: {type(error).__name__} {error}".strip()

        await asyncio.gather(*(one(base + i) for i in range(count)))
        if not failure and len(self.clients) < base + count:
            failure = f"timeout after {timeout:.0f} s"
        return {"connected": len(self.clients), "seconds": time.monotonic() - started,
                "failure": failure}

    async def send(self, items: int, interval: float, size: int, senders: int,
                   first_seq: int) -> dict[str, Any]:
        """The first `senders` clients send `items` items each, one round every
        `interval` seconds, sequence numbers from `first_seq`."""
        seq = first_seq
        next_at = time.monotonic()
        for _ in range(items):
            for client in self.clients[:senders]:
                client.send_item(seq, size)
                seq += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        return {"sent": seq - first_seq}

    async def updates(self, first: int, count: int, rounds: int, interval: float
                      ) -> dict[str, Any]:
        """Clients `first` to `first + count` each send `rounds` status updates, one round
        every `interval` seconds."""
        next_at = time.monotonic()
        for number in range(rounds):
            for client in self.clients[first:first + count]:
                client.send_text({"type": "update-send",
                                  "update": {"payload": {"n": number, "t": time.time()}}})
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        return {"sent": rounds * len(self.clients[first:first + count])}

    async def listen_updates(self, first: int, count: int) -> dict[str, Any]:
        """Clients `first` to `first + count` each start an update listener (live updates
        only: the serial named is beyond any stored)."""
        for client in self.clients[first:first + count]:
            client.send_text({"type": "update-listen", "listen": 1, "serial": 2**53 - 1})
        return {"listening": len(self.clients[first:first + count])}

    async def report(self, clear: bool) -> dict[str, Any]:
        """Every (seq, latency) received since the last clear; clients lost; errors."""
        result = {"items": self.stats.items, "lost": self.stats.lost,
                  "errors": self.stats.errors, "clients": len(self.clients)}
        if clear:
            self.stats.items = []
        return result

    async def close(self) -> dict[str, Any]:
        """Close every client."""
        for client in self.clients:
            if client.transport is not None:
                client.transport.abort()
        self.clients.clear()
        await asyncio.sleep(0)
        return {"closed": True}


async def serve_commands() -> None:
    """Read commands from stdin until it closes; answer each with one JSON line."""
    load = Load()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        name = command.pop("command")
        result = await getattr(load, name)(**command)
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    await load.close()


def main() -> None:
    """Raise the open-file limit to its hard limit and run on uvloop when it is there."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve_commands())


if __name__ == "__main__":
    main()
