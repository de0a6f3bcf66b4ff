"""Several `webxdc-rt serve` processes sharing one chat through one Redis: every realtime
row that concerns other pages holds across processes, and faults (Redis restarted, a host
killed) cost only what they must.

The processes share one `--data-dir`, so they serve the same chat with the same invite
tokens and `selfAddr`s; a member's invite link works on any of them (only the port differs).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from peers import Member, eventually, joined
from ports import free_port
from redis_server import RedisServer
from serve_processes import ServeProcess as HostProcess
from serving import on_port

APP = Path(__file__).parent.parent / "apps" / "probe"
OTHER_APP = Path(__file__).parent.parent / "apps" / "frames"
MEMBERS = ["alice", "bob", "carol", "dave"]


@contextlib.contextmanager
def running_hosts(folder: Path, broker_url: str, count: int = 3) -> Iterator[list[HostProcess]]:
    """`count` processes serving one chat, stopped after; started one after the other, so
    that the first creates the chat in the shared data folder and the others find it."""
    hosts: list[HostProcess] = []
    try:
        for _ in range(count):
            hosts.append(HostProcess(folder, folder / "data", broker_url))
        yield hosts
    finally:
        for host in hosts:
            host.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[tuple[RedisServer, list[HostProcess]]]:
    """One Redis and three hosts for the tests that leave both as they found them."""
    folder = tmp_path_factory.mktemp("processes")
    redis = RedisServer(folder / "redis").start()
    try:
        with running_hosts(folder, redis.url) as hosts:
            yield redis, hosts
    finally:
        redis.stop()


@pytest.fixture
def cluster(redis_server, tmp_path) -> Iterator[tuple[RedisServer, list[HostProcess]]]:
    """A Redis and three hosts of the test's own, for tests that break them."""
    with running_hosts(tmp_path, redis_server.url) as hosts:
        yield redis_server, hosts


async def close_all(*members: Member) -> None:
    for member in members:
        await member.peer.close()


def test_every_process_serves_the_same_links_and_self_addrs(shared):
    _, hosts = shared
    first = [(line["member"], line["self_addr"], urlsplit(line["url"]).hostname,
              urlsplit(line["url"]).path) for line in hosts[0].invites]
    for host in hosts[1:]:
        assert [(line["member"], line["self_addr"], urlsplit(line["url"]).hostname,
                 urlsplit(line["url"]).path) for line in host.invites] == first
        assert host.invites[0]["url"] != hosts[0].invites[0]["url"]  # another port


async def test_realtime_rows_across_processes(shared, tmp_path):
    redis, (one, two, three) = shared
    # R11: every other joined page, on any process, the sender's own other page included.
    alice = await joined(one.url("alice"))
    bob = await joined(two.url("bob"))
    carol = await joined(three.url("carol"))
    alice_elsewhere = await joined(three.url("alice"))
    # R13: another chat, and another copy of an app in the same chat, never receive.
    outsider_host = HostProcess(tmp_path, tmp_path / "other-data", redis.url, "other chat")
    other_copy_host = HostProcess(tmp_path, one.data_dir, redis.url, app=OTHER_APP)
    try:
        outsider = await joined(outsider_host.url("bob"))
        other_copy = await joined(other_copy_host.url("bob"))
        assert other_copy.peer.self_addr != bob.peer.self_addr
        first = [b"first %d" % i for i in range(200)]
        for payload in first:
            alice.channel.send(payload)
        for member in (bob, carol, alice_elsewhere):
            await eventually(lambda m=member: len(m.inbox) == len(first))
            assert member.inbox == first  # R16: in order, each once
        assert alice.inbox == []  # R10: never the sender's own items

        # R12: a late joiner gets nothing sent before it joined.
        dave = await joined(two.url("dave"))
        bob.channel.send(b"after dave joined")
        await dave.got(b"after dave joined")
        await alice.got(b"after dave joined")
        assert dave.inbox == [b"after dave joined"]

        # R15: after leave nothing more reaches bob; the others go on.
        bob.channel.leave()
        await bob.peer.close()  # the close follows the leave: the host has applied it
        carol.channel.send(b"after bob left")
        for member in (alice, dave, alice_elsewhere):
            await member.got(b"after bob left")
        assert b"after bob left" not in bob.inbox

        # R17: a page whose link is lost counts as having left; others are unaffected.
        await carol.peer.close()
        dave.channel.send(b"after carol went")
        await alice.got(b"after carol went")
        await alice_elsewhere.got(b"after carol went")
        assert b"after carol went" not in carol.inbox
        assert outsider.inbox == [] and other_copy.inbox == []
        await close_all(alice, alice_elsewhere, dave, outsider, other_copy)
    finally:
        outsider_host.stop()
        other_copy_host.stop()


async def unstamped(session: aiohttp.ClientSession, url: str
                    ) -> aiohttp.ClientWebSocketResponse:
    """A socket that joins without stamps, as a client that ignores the bridge may."""
    parts = urlsplit(url)
    ws = await session.ws_connect(
        f"ws://127.0.0.1:{parts.port}/.webxdc-rt/socket", max_msg_size=0,
        headers={"Host": parts.netloc, "Authorization": f"Bearer {parts.path.rsplit('/', 1)[1]}"})
    await ws.send_str('{"type":"join","epoch":1}')
    while (await ws.receive_json(timeout=10))["type"] != "joined":
        pass
    return ws


async def test_the_largest_item_of_a_page_that_does_not_stamp_crosses_whole(shared):
    """The host stamps it beside the payload: a receiver in another process that does not
    stamp gets the payload exactly, and a stamped one (the Python peer) gets it too."""
    _, (one, two, three) = shared
    carol = await joined(three.url("carol"))
    payload = bytes(range(256)) * 500  # 128,000 bytes
    async with aiohttp.ClientSession() as session:
        sender, receiver = (await unstamped(session, one.url("alice")),
                            await unstamped(session, two.url("bob")))
        await sender.send_bytes(payload)
        msg = await receiver.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.BINARY and msg.data == payload
        await carol.got(payload)
        await sender.close()
        await receiver.close()
    await close_all(carol)


async def test_ten_thousand_items_from_one_sender_arrive_in_order(shared):
    _, (one, two, three) = shared
    alice = await joined(one.url("alice"))
    bob, carol = await joined(two.url("bob")), await joined(three.url("carol"))
    sent = [i.to_bytes(4, "big") for i in range(10_000)]
    for payload in sent:
        alice.channel.send(payload)
    # An item of the burst that waited in alice's queue longer than the client lets one
    # wait (this process held up meanwhile, by a long garbage collection, say) was dropped
    # there and counted: it is never sent.
    dropped = alice.peer.stats
    for member in (bob, carol):
        stats = member.peer.stats
        await eventually(lambda s=stats: s.items_received + dropped.items_dropped
                         >= len(sent), timeout=60)
        # In order, each once; an item of the burst that reached its receiver older than
        # the age bound (a loaded machine) was dropped there and counted, not lost unseen.
        assert member.inbox == sorted(set(member.inbox))
        assert len(member.inbox) + stats.items_expired + dropped.items_dropped == len(sent)
    await close_all(alice, bob, carol)


async def test_redis_restarted_mid_stream(cluster):
    redis, (one, two, _) = cluster
    alice = await joined(one.url("alice"))
    carol = await joined(one.url("carol"))  # on the sender's own process
    bob = await joined(two.url("bob"))  # on another
    sent = 0
    stop = asyncio.Event()

    async def stream() -> None:
        nonlocal sent
        while not stop.is_set():
            sent += 1
            alice.channel.send(b"%d" % sent)
            await asyncio.sleep(0.002)  # a steady stream, not a flood

    streaming = asyncio.create_task(stream())
    try:
        await eventually(lambda: len(bob.inbox) > 10)
        redis.stop()
        await eventually(lambda: one.warnings("unreachable") and two.warnings("unreachable"))
        during = sent
        await eventually(lambda: int(carol.inbox[-1]) > during + 10)  # local pages go on
        redis.start()
        await eventually(lambda: one.warnings("reachable again")
                         and two.warnings("reachable again"))
        after = sent
        await eventually(lambda: int(bob.inbox[-1]) > after + 10)  # no host restarted
    finally:
        stop.set()
        await streaming
    numbers = [int(payload) for payload in bob.inbox]
    assert numbers == sorted(set(numbers))  # in order, none twice
    assert [int(payload) for payload in carol.inbox] == list(range(1, len(carol.inbox) + 1))
    for host in (one, two):  # one line when Redis was lost, one when it was back
        assert len(host.warnings("unreachable")) == 1
        assert len(host.warnings("reachable again")) == 1
        assert not host.warnings("Traceback")
    await close_all(alice, bob, carol)


async def test_a_killed_host_costs_only_its_own_pages(cluster):
    _, (one, two, three) = cluster
    alice = await joined(one.url("alice"))
    bob = await joined(two.url("bob"))
    carol = await joined(three.url("carol"))
    alice.channel.send(b"before")
    await bob.got(b"before")
    await carol.got(b"before")
    three.process.send_signal(signal.SIGKILL)
    three.process.wait()
    await eventually(lambda: carol.peer.closed)
    alice.channel.send(b"after the kill")
    await bob.got(b"after the kill")
    # Carol's page reconnects to another process with the same invite and rejoins.
    carol_again = await joined(on_port(three.url("carol"), two.url("carol")))
    assert carol_again.peer.self_addr == carol.peer.self_addr
    alice.channel.send(b"carol is back")
    await carol_again.got(b"carol is back")
    carol_again.channel.send(b"carol speaks")
    await alice.got(b"carol speaks")
    await bob.got(b"carol speaks")
    assert bob.inbox == [b"before", b"after the kill", b"carol is back", b"carol speaks"]
    await close_all(alice, bob, carol, carol_again)


async def test_redis_unreachable_at_start_is_a_warning_not_an_error(tmp_path):
    host = HostProcess(tmp_path, tmp_path / "data", f"redis://127.0.0.1:{free_port()}/0")
    try:
        alice, bob = await joined(host.url("alice")), await joined(host.url("bob"))
        alice.channel.send(b"within the process")
        await bob.got(b"within the process")
        lines = host.warnings("unreachable")
        assert len(lines) == 1
        assert lines[0].startswith("webxdc-rt: WARNING: broker: redis://127.0.0.1:")
        await close_all(alice, bob)
    finally:
        host.stop()
    assert host.process.returncode == 0
    assert not host.warnings("Traceback")


@pytest.mark.parametrize("url, fragment", [
    ("http://127.0.0.1:6379", "expects a redis://"),
    ("redis://127.0.0.1:6379/first", "database number"),
    ("redis://:pw@127.0.0.1:99999", "not a valid"),
    ("rediss://:pw@127.0.0.1:6380/0?ssl_ca_certs=/nonexistent/ca.pem",
     "TLS files cannot be used (ssl_ca_certs=/nonexistent/ca.pem)"),
])
def test_a_bad_broker_url_is_a_clear_error(tmp_path, url, fragment):
    result = subprocess.run(
        [sys.executable, "-m", "webxdc_rt", "serve", str(APP), "--members", "alice",
         "--port", "0", "--data-dir", str(tmp_path), "--broker", url],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("webxdc-rt: error: --broker ")
    assert result.stderr.count("\n") == 1 and fragment in result.stderr
    assert "pw" not in result.stderr
