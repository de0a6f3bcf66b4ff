"""The HTTP layer under hostile clients, over raw sockets: malformed requests, bytes that are
not UTF-8, exceptions inside handlers, slow and silent connections, connection floods."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass

import pytest
from hosting import make_xdc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from peers import eventually, joined

from webxdc_rt.client import connect
from webxdc_rt.host.http_guard import connection_cap
from webxdc_rt.host.pages import SERVER_NAME
from webxdc_rt.host.settings import HostSettings
from webxdc_rt.model.xdc import AppSource
from webxdc_rt.service.home import SHARE_PATH, STATE_PATH, HomeSite
from webxdc_rt.service.manage import Manager

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy",
                    "Cross-Origin-Resource-Policy", "Cross-Origin-Opener-Policy")


@dataclass
class Reply:
    status: int
    headers: CIMultiDict
    body: bytes
    closed: bool
    """Whether the host closed the connection after this reply."""


async def exchange(port: int, request: bytes, expect_close: bool = True) -> Reply:
    """Send raw bytes, read one response; with `expect_close`, also wait for the host to close
    the connection (a host that keeps it open fails the test by its timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers: CIMultiDict = CIMultiDict(line.split(": ", 1) for line in lines)
        length = 0 if request.startswith(b"HEAD ") else int(headers["Content-Length"])
        body = await asyncio.wait_for(reader.readexactly(length), 10)
        closed = False
        if expect_close:
            closed = await asyncio.wait_for(reader.read(), 10) == b""
        return Reply(int(status_line.split()[1]), headers, body, closed)
    finally:
        writer.close()


def page_host(live_host) -> bytes:
    page = live_host.last_pages[0]
    return f"{page.label}.localhost:{live_host.port}".encode()


def request_for(live_host, path: bytes = b"/", *headers: bytes, method: bytes = b"GET",
                token: bytes | None = None) -> bytes:
    page = live_host.last_pages[0]
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: " + page_host(live_host)]
    if token is not False:
        lines.append(b"Authorization: Bearer " + (token or page.token.encode()))
    return b"\r\n".join([*lines, *headers, b"", b""])


def assert_host_headers(reply: Reply) -> None:
    for name in SECURITY_HEADERS:
        assert name in reply.headers, name
    assert reply.headers["Server"] == SERVER_NAME


def errors_logged(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


async def still_talking(urls: dict[str, str]) -> None:
    """Two members of the chat exchange an item: the host serves others as before."""
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    alice.channel.send(b"still here")
    await bob.got(b"still here")
    await alice.peer.close()
    await bob.peer.close()


# -- bytes that are not UTF-8, and exceptions inside handlers ------------------------------

@pytest.mark.parametrize("header", [b"Cookie: webxdc_rt=\xff\xfe", b"Authorization: Bearer \xff",
                                    b"Cookie: webxdc_rt=\xed\xa0\x80"])
async def test_credentials_that_are_not_utf8_are_refused_not_a_crash(live_host, caplog, header):
    urls = live_host.share(["alice", "bob"])
    page = live_host.last_pages[0]
    request = b"\r\n".join([b"GET / HTTP/1.1", b"Host: " + page_host(live_host), header,
                            b"", b""])
    reply = await exchange(live_host.port, request)
    assert reply.status == 403 and reply.closed
    assert_host_headers(reply)
    invite = f"/.webxdc-rt/invite/{page.token[:-2]}%ff%fe".encode()
    reply = await exchange(live_host.port, request_for(live_host, invite, token=False))
    assert reply.status == 403 and reply.closed
    assert not errors_logged(caplog) and "Traceback" not in caplog.text
    await still_talking(urls)


async def test_an_origin_that_is_no_url_is_refused(live_host, caplog):
    live_host.share(["alice"])
    reply = await exchange(live_host.port, request_for(
        live_host, b"/.webxdc-rt/socket", b"Origin: http://[not-closed", b"Connection: close"))
    assert reply.status == 403
    assert_host_headers(reply)
    assert not errors_logged(caplog)


@dataclass(frozen=True)
class BrokenSource(AppSource):
    """An app whose files cannot be read: stands for any bug a handler may hit."""

    def read(self, name: str) -> bytes | None:
        raise RuntimeError("the disk\nis on fire " + "x" * 1000)


async def test_an_exception_in_a_handler_is_one_log_line_and_a_500_page(live_host, caplog):
    urls = live_host.share(["alice", "bob"])
    live_host.sources[live_host.last_pages[0].app.id] = BrokenSource("probe")
    caplog.set_level(logging.INFO)
    reply = await exchange(live_host.port, request_for(live_host, b"/index.html?" + b"q" * 500))
    assert reply.status == 500 and reply.closed
    assert_host_headers(reply)
    assert b"fire" not in reply.body and b"Traceback" not in reply.body
    records = errors_logged(caplog)
    assert len(records) == 1
    line = records[0].getMessage()
    assert "\n" not in line and len(line) < 600 and records[0].exc_info is None
    assert "'GET'" in line and "/index.html" in line and "RuntimeError" in line
    assert "Traceback" not in caplog.text
    # Every other page and socket is served as before.
    reply = await exchange(live_host.port, request_for(live_host, b"/webxdc.js",
                                                       b"Connection: close"))
    assert reply.status == 200
    await still_talking(urls)


# Header values: any bytes but line breaks, often not UTF-8, often near a valid credential.
_value = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\xaf", b"%ff", b"[", b"http://[",
                     b"Bearer ", b"bearer \xff", b"webxdc_rt=", b"webxdc_rt=\xff; webxdc_rt=x",
                     b"xn--\\", b"a" * 9000]),
).map(lambda value: value.replace(b"\r", b"").replace(b"\n", b""))
_target = st.one_of(
    st.binary(max_size=200).map(lambda raw: b"/" + raw),
    st.sampled_from([b"/", b"/index.html", b"/webxdc.js", b"/.webxdc-rt/socket",
                     b"/.webxdc-rt/invite/", b"/%ff", b"/%00", b"/../x", b"*", b"http://[/",
                     b"xn--\\a:1"]),
).map(lambda target: target.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b""))


@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from([b"GET", b"HEAD", b"POST", b"OPTIONS", b"CONNECT", b"get",
                               b"G\xffT", b""]),
       target=_target, host=st.one_of(st.none(), _value), cookie=st.one_of(st.none(), _value),
       authorization=st.one_of(st.none(), _value), origin=st.one_of(st.none(), _value),
       real_host=st.booleans(), real_token=st.sampled_from([None, "cookie", "bearer"]))
async def test_any_request_head_is_answered_without_a_500_or_a_log_line(
        live_host, caplog, method, target, host, cookie, authorization, origin, real_host,
        real_token):
    if not live_host.sources:
        live_host.share(["alice"])
    page = live_host.last_pages[0]
    headers = []
    if real_host:
        host = page_host(live_host)
    if real_token == "cookie":
        cookie = b"webxdc_rt=" + page.token.encode()
    elif real_token == "bearer":
        authorization = b"Bearer " + page.token.encode()
    for name, value in ((b"Host", host), (b"Cookie", cookie),
                        (b"Authorization", authorization), (b"Origin", origin)):
        if value is not None:
            headers.append(name + b": " + value)
    request = b"\r\n".join([method + b" " + target + b" HTTP/1.1", *headers,
                             b"Connection: close", b"", b""])
    reply = await exchange(live_host.port, request)
    assert reply.status in (200, 303, 400, 403, 404, 405, 431), reply
    assert_host_headers(reply)
    assert not errors_logged(caplog) and "Traceback" not in caplog.text


# -- responses aiohttp makes before the application sees the request -----------------------

@pytest.mark.parametrize("request_bytes, echo", [
    (b"GARBAGE-REQUEST\r\n\r\n", b"GARBAGE"),
    (b"G<T / HTTP/1.1\r\nHost: x\r\n\r\n", b"G<T"),
    (b"GET /" + b"L" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"LLLL"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"B" * 9000 + b"\r\n\r\n", b"BBBB"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-N%d: MANY\r\n" % i for i in range(200))
     + b"\r\n", b"MANY"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"-5"),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"9.9"),
    # Targets aiohttp parses but cannot make a request of (the host is not valid IDNA).
    (b"CONNECT xn--\\BAD HTTP/1.1\r\nHost: x\r\n\r\n", b"BAD"),
    (b"GET http://xn--\\BAD/ HTTP/1.1\r\nHost: x\r\n\r\n", b"BAD"),
])
async def test_malformed_requests_get_a_plain_400_with_the_host_headers(live_host, caplog,
                                                                        request_bytes, echo):
    urls = live_host.share(["alice", "bob"])
    reply = await exchange(live_host.port, request_bytes)
    assert reply.status == 400 and reply.closed
    assert_host_headers(reply)
    assert echo not in reply.body
    assert not errors_logged(caplog) and "Traceback" not in caplog.text
    await still_talking(urls)


async def test_every_response_names_only_webxdc_rt_and_has_the_headers(live_host):
    live_host.share(["alice"])
    replies = [
        await exchange(live_host.port, request_for(live_host, method=b"POST"), False),
        await exchange(live_host.port, request_for(live_host, b"/", b"Connection: close")),
        await exchange(live_host.port, request_for(live_host, b"/missing", b"Connection: close")),
        await exchange(live_host.port, b"GET / HTTP/1.1\r\nHost: nobody.localhost\r\n\r\n"),
    ]
    assert [reply.status for reply in replies] == [405, 200, 404, 404]
    for reply in replies:
        assert_host_headers(reply)
        assert "aiohttp" not in reply.headers["Server"]


# -- timeouts of connections that show no invite, and of idle ones -------------------------

async def wait_closed(reader: asyncio.StreamReader) -> None:
    """Read until the host closes the connection (the test's timeout fails a host that
    never does). A close while the client's bytes are still unread by the host arrives as
    a reset (Linux answers them with RST): closed all the same."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionResetError:
        pass


async def test_connections_without_an_invite_are_closed_after_the_header_timeout(hosts):
    host = await hosts(HostSettings(header_timeout_s=0.3, idle_timeout_s=60))
    urls = host.share(["alice", "bob"])
    member = await joined(urls["alice"])  # showed its invite: no header timeout
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", host.port)
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", host.port)
    head = request_for(host)[:-2] + b"X-Slow: " + b"s" * 100_000

    async def drip() -> None:
        # One byte at a time, never finishing the head: a slowloris client.
        for byte in head:
            slow_writer.write(bytes([byte]))
            await asyncio.sleep(0.02)

    dripping = asyncio.ensure_future(drip())
    try:
        await asyncio.wait_for(asyncio.gather(wait_closed(silent_reader),
                                              wait_closed(slow_reader)), 30)
    finally:
        dripping.cancel()
        silent_writer.close()
        slow_writer.close()
    # Both were closed long after the member connected: its socket was not.
    bob = await joined(urls["bob"])
    member.channel.send(b"after the timeouts")
    await bob.got(b"after the timeouts")
    await member.peer.close()
    await bob.peer.close()


async def test_a_large_head_without_an_invite_is_refused_early(hosts):
    host = await hosts(HostSettings(max_preauth_bytes=4096))
    urls = host.share(["alice", "bob"])
    fat = b"".join(b"X-F%d: " % i + b"f" * 1000 + b"\r\n" for i in range(8))
    unfinished = request_for(host)[:-2] + fat  # a head that never ends
    reply = await exchange(host.port, unfinished)
    assert reply.status == 431 and reply.closed
    assert_host_headers(reply)
    # Members' requests are not counted once they showed their invite.
    reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
    try:
        for extra in (b"X-First: small", fat, fat):
            writer.write(request_for(host, b"/data.txt", extra))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
    finally:
        writer.close()
    await still_talking(urls)


async def test_an_idle_kept_alive_connection_is_closed_but_not_a_websocket(hosts):
    host = await hosts(HostSettings(header_timeout_s=60, idle_timeout_s=0.3))
    urls = host.share(["alice", "bob"])
    alice = await joined(urls["alice"])
    reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
    try:
        writer.write(request_for(host, b"/data.txt"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head
        await asyncio.wait_for(wait_closed(reader), 30)
    finally:
        writer.close()
    # Alice's socket is older than that idle connection, and quiet: it stays.
    bob = await joined(urls["bob"])
    bob.channel.send(b"still open")
    await alice.got(b"still open")
    await alice.peer.close()
    await bob.peer.close()


# -- the connection cap --------------------------------------------------------------------

class SilentFlood:
    """Connections that connect and never send a byte, each watched for being closed."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.closed: list[asyncio.Future] = []

    async def open(self, port: int, count: int) -> None:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            self.writers.append(writer)
            self.closed.append(asyncio.ensure_future(wait_closed(reader)))

    def closed_indexes(self) -> list[int]:
        return [index for index, done in enumerate(self.closed) if done.done()]

    def close(self) -> None:
        for future in self.closed:
            future.cancel()
        for writer in self.writers:
            writer.close()


async def test_silent_connections_beyond_the_cap_are_evicted_oldest_first(hosts):
    cap = 40
    host = await hosts(HostSettings(max_tcp_connections=cap, header_timeout_s=120))
    urls = host.share(["alice", "bob"])
    flood = SilentFlood()
    try:
        await flood.open(host.port, 2 * cap)
        await eventually(lambda: len(flood.closed_indexes()) >= cap)
        assert flood.closed_indexes() == list(range(cap))  # the oldest made room
        # Members still get in, each evicting one more silent connection.
        alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
        alice.channel.send(b"through the flood")
        await bob.got(b"through the flood")
        # A second flood evicts silent connections only, never the members' sockets.
        await flood.open(host.port, 2 * cap)
        await eventually(lambda: len(flood.closed_indexes()) >= 4 * cap - (cap - 2))
        bob.channel.send(b"after the second flood")
        await alice.got(b"after the second flood")
        await alice.peer.close()
        await bob.peer.close()
    finally:
        flood.close()


async def test_when_every_connection_showed_an_invite_a_newcomer_is_closed(hosts):
    host = await hosts(HostSettings(max_tcp_connections=2, header_timeout_s=120))
    urls = host.share(["alice", "bob"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    with pytest.raises(ConnectionError):
        await connect(urls["bob"])
    flood = SilentFlood()
    try:
        await flood.open(host.port, 1)
        await asyncio.wait_for(flood.closed[0], 10)
    finally:
        flood.close()
    alice.channel.send(b"unaffected")
    await bob.got(b"unaffected")
    await alice.peer.close()
    await bob.peer.close()


def test_the_cap_keeps_a_reserve_of_descriptors():
    assert connection_cap(10, 64) == 10
    if resource is not None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            assert connection_cap(10**9, 64) == soft - 64


# -- what one page's connections may hold, and who makes room at the cap -------------------

async def keep_alive_get(port: int, request: bytes) -> tuple[asyncio.StreamReader,
                                                             asyncio.StreamWriter]:
    """A connection that made one request, read its answer and stays open (keep-alive)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    return reader, writer


async def test_one_page_holds_at_most_its_limit_of_kept_alive_connections(hosts):
    host = await hosts(HostSettings(max_http_connections_per_page=4, idle_timeout_s=60))
    urls = host.share(["alice", "bob"])
    held = [await keep_alive_get(host.port, request_for(host, b"/data.txt")) for _ in range(10)]
    closed = [asyncio.ensure_future(wait_closed(reader)) for reader, _ in held]
    try:
        # Each new one was answered; the page's connections idle the longest made room.
        await eventually(lambda: sum(done.done() for done in closed) == 6)
        assert [done.done() for done in closed] == [True] * 6 + [False] * 4
    finally:
        for future in closed:
            future.cancel()
        for _, writer in held:
            writer.close()
    await still_talking(urls)


async def test_at_the_cap_the_page_holding_most_connections_makes_room(hosts, caplog):
    cap = 24
    host = await hosts(HostSettings(max_tcp_connections=cap, max_http_connections_per_page=64,
                                    header_timeout_s=120, idle_timeout_s=60))
    urls = host.share(["mallory", "alice", "bob"])
    mallory = host.last_pages[0]
    # One member holds every connection the host may have, each kept alive.
    held = [await keep_alive_get(host.port, request_for(host, b"/data.txt"))
            for _ in range(cap)]
    closed = [asyncio.ensure_future(wait_closed(reader)) for reader, _ in held]
    try:
        alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
        alice.channel.send(b"in spite of mallory")
        await bob.got(b"in spite of mallory")
        # Mallory's oldest idle connections made room, and only hers.
        await eventually(lambda: sum(done.done() for done in closed) >= 2)
        gone = [done.done() for done in closed]
        assert gone == sorted(gone, reverse=True)  # the oldest first
        # Her reconnecting costs her own connections, never the other members' sockets.
        for _ in range(cap):
            try:
                held.append(await keep_alive_get(host.port, request_for(host, b"/data.txt")))
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
        bob.channel.send(b"still in")
        await alice.got(b"still in")
        await alice.peer.close()
        await bob.peer.close()
    finally:
        for future in closed:
            future.cancel()
        for _, writer in held:
            writer.close()
    reports = [record.getMessage() for record in errors_logged(caplog)
               if "TCP connections" in record.getMessage()]
    assert reports and re.search(r"[1-9]\d* evicted from the page holding the most \("
                                 + mallory.label, reports[0]), reports


# -- the byte bound before an invite counts request heads only -----------------------------

def upload_head(host, size: int) -> tuple[bytes, bytes]:
    """The head of a `.xdc` upload of `size` bytes from ann's home page on `host` (its home
    site mounted here), and a plain request for the page's state."""
    manager = Manager(host.host, host.store)
    manager.port = host.port
    host.host.mount(HomeSite(manager).resolve)
    chat = manager.create_chat("c", ["ann"])
    home = host.registry.home_of(chat, chat.members[0])
    assert home is not None
    origin = f"{home.label}.localhost:{host.port}"
    common = f"Host: {origin}\r\nAuthorization: Bearer {home.token}\r\n"
    return ((f"POST {SHARE_PATH} HTTP/1.1\r\n{common}Origin: http://{origin}\r\n"
             f"X-File-Name: big.xdc\r\nContent-Length: {size}\r\n\r\n").encode(),
            f"GET {STATE_PATH} HTTP/1.1\r\n{common}\r\n".encode())


async def test_an_upload_whose_body_comes_with_its_head_is_accepted(hosts, tmp_path):
    host = await hosts(HostSettings(max_preauth_bytes=4096))
    body = make_xdc(tmp_path / "big.xdc", extra={"noise.bin": os.urandom(20_000)}).read_bytes()
    head, _ = upload_head(host, len(body))
    reply = await exchange(host.port, head + body, expect_close=False)  # one write
    assert reply.status == 201, reply.body
    # A head alone that long is still refused before an invite.
    unfinished = head[:-2] + b"X-Fat: " + b"f" * 5000
    reply = await exchange(host.port, unfinished)
    assert reply.status == 431 and reply.closed


async def test_a_request_beyond_the_pages_limit_with_none_idle_is_refused(hosts, tmp_path):
    host = await hosts(HostSettings(max_http_connections_per_page=1))
    body = make_xdc(tmp_path / "app.xdc").read_bytes()
    head, state = upload_head(host, len(body))
    reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
    try:
        writer.write(head + body[:100])  # the upload's handler waits for the rest: busy
        label = head.split(b"Host: ")[1].split(b".")[0].decode()
        guard = host._runner.guard  # the running server's
        await eventually(lambda: guard.page_count(label) == 1)
        reply = await exchange(host.port, state)
        assert reply.status == 503 and reply.closed and b"limit 1" in reply.body
        assert_host_headers(reply)
        writer.write(body[100:])
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert answer.startswith(b"HTTP/1.1 201")
    finally:
        writer.close()
