"""`webxdc-rt host` on several processes (and `--workers`) over one PostgreSQL and one Redis
is one service: a management command given to any process takes effect on every one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hosting import PROBE_APP, Done, HostProcess, make_xdc, origin_of, two_workers, web_session
from peers import Member, eventually, joined

from webxdc_rt.client import InviteRefused, connect

pytestmark = pytest.mark.timeout(180)


def at(url: str, port: int) -> str:
    """Invite link `url` pointed at the process listening on `port`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


async def two_hosts(tmp_path, postgres_server, redis_server) -> tuple[HostProcess, HostProcess]:
    """Two `host` processes, each with a data folder of its own, on one store and broker."""
    shared = ("--store", postgres_server.url, "--broker", redis_server.url)
    first = await HostProcess(tmp_path / "a").start(*shared)
    second = await HostProcess(tmp_path / "b").start(*shared)
    return first, second


async def served(url: str, timeout: float = 10.0) -> Member:
    """Join with `url` as soon as its process knows the link (it learns of a change made
    elsewhere just after the command returned)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await joined(url)
        except InviteRefused:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


async def shown(host: HostProcess, predicate: Callable[[dict], bool],
                *command: str) -> dict:
    """The `--json` answer of a command to `host`, once `predicate` holds for it."""
    deadline = time.monotonic() + 10
    while True:
        done: Done = await host.cli(*command, "--json")
        if done.status == 0 and predicate(done.json()):
            return done.json()
        assert time.monotonic() < deadline, (done.stdout, done.stderr)
        await asyncio.sleep(0.05)


async def stop_all(*hosts: HostProcess) -> None:
    for host in hosts:
        assert await host.stop() == 0
        assert "Traceback" not in host.stderr, host.stderr


@dataclass
class Team:
    """Two processes A and B; chat `team` of alice and bob made on A with the probe app
    shared into it; Bob's links as A showed them, and Bob joined on B."""

    a: HostProcess
    b: HostProcess
    bob_links: dict[str, Any]
    bob_on_b: Member


@pytest.fixture
async def team(tmp_path, postgres_server, redis_server) -> AsyncIterator[Team]:
    """A `Team`; both processes must stop cleanly after the test."""
    a, b = await two_hosts(tmp_path, postgres_server, redis_server)
    try:
        await a.cli("chat", "create", "team", "--members", "alice,bob")
        await a.cli("app", "share", "team", str(PROBE_APP))
        bob_links = (await a.cli("link", "show", "team", "bob", "--json")).json()
        bob_on_b = await served(at(bob_links["apps"][0]["url"], b.port))
        yield Team(a, b, bob_links, bob_on_b)
    finally:
        await stop_all(a, b)


async def test_a_chat_made_and_an_app_shared_on_one_process_is_served_by_the_other(
        tmp_path, postgres_server, redis_server):
    a, b = await two_hosts(tmp_path, postgres_server, redis_server)
    try:
        await a.cli("chat", "create", "team", "--members", "alice,bob", "--json")
        xdc = make_xdc(tmp_path / "uploaded.xdc", name="Uploaded")
        shared = (await a.cli("app", "share", "team", str(xdc), "--json")).json()
        links = {link["member"]: link["url"] for link in shared["links"]}
        # B was told: it lists the chat, and serves the app (its files came from the store).
        team = await shown(b, lambda chat: bool(chat["apps"]), "chat", "show", "team")
        assert team["members"] == ["alice", "bob"]
        assert [(app["name"], app["served"]) for app in team["apps"]] == [("Uploaded", True)]
        alice = await served(at(links["alice"], b.port))
        bob = await joined(links["bob"])  # on A: realtime crosses through Redis
        bob.channel.send(b"from A to B")
        await alice.got(b"from A to B")
        assert alice.peer.self_addr == next(link["self_addr"] for link in shared["links"]
                                            if link["member"] == "alice")
        # A member added on B gets pages on A.
        carol = (await b.cli("member", "add", "team", "carol", "--json")).json()
        carol_on_a = await served(at(carol["apps"][0]["url"], a.port))
        await carol_on_a.peer.close()
        await alice.peer.close()
        await bob.peer.close()
    finally:
        await stop_all(a, b)


async def test_a_link_revoked_on_one_process_closes_the_socket_on_the_other(team, capsys):
    a, b, old, bob_on_b = team.a, team.b, team.bob_links, team.bob_on_b
    given = time.monotonic()
    status, body = await a.admin("POST", "/v1/link/revoke",
                                 json={"chat": "team", "member": "bob"})
    returned = time.monotonic()
    assert status == 200, body
    await eventually(lambda: bob_on_b.peer.closed, timeout=5.0)  # polled every 5 ms
    closed = time.monotonic()
    with capsys.disabled():
        print(f"\n  revoked on A through its admin socket in "
              f"{(returned - given) * 1000:.1f} ms; the socket on B was closed "
              f"{(closed - returned) * 1000:.1f} ms after that returned")
    await bob_on_b.peer.close()
    with pytest.raises(InviteRefused):
        await connect(at(old["apps"][0]["url"], b.port))
    new = json.loads(body)
    fresh = await served(at(new["apps"][0]["url"], b.port))
    await fresh.peer.close()


async def test_a_member_removed_on_one_process_is_refused_and_closed_on_the_other(
        tmp_path, postgres_server, redis_server):
    a, b = await two_hosts(tmp_path, postgres_server, redis_server)
    try:
        await b.cli("chat", "create", "team", "--members", "alice,bob")
        await b.cli("app", "share", "team", str(PROBE_APP))
        bob_links = (await b.cli("link", "show", "team", "bob", "--json")).json()
        bob_on_b = await joined(bob_links["apps"][0]["url"])
        await shown(a, lambda chat: bool(chat["apps"]), "chat", "show", "team")
        removed = await a.cli("member", "remove", "team", "bob", "--json")
        assert removed.status == 0, removed.stderr
        await eventually(lambda: bob_on_b.peer.closed, timeout=5.0)
        await bob_on_b.peer.close()
        with pytest.raises(InviteRefused):
            await connect(bob_links["apps"][0]["url"])
        assert (await b.cli("chat", "show", "team", "--json")).json()["members"] == ["alice"]
        # The app removed on B is gone from A too.
        await b.cli("app", "remove", "team", "probe")
        await shown(a, lambda links: links["apps"] == [], "link", "show", "team", "alice")
    finally:
        await stop_all(a, b)


async def test_home_pages_show_the_same_chat_on_every_process(
        tmp_path, postgres_server, redis_server):
    a, b = await two_hosts(tmp_path, postgres_server, redis_server)
    try:
        created = (await a.cli("chat", "create", "team", "--members", "alice,bob",
                               "--json")).json()
        homes = {links["member"]: links["url"] for links in created["links"]}
        xdc = make_xdc(tmp_path / "mine.xdc", name="Mine").read_bytes()
        async with web_session() as session:
            async def state(home: str) -> dict:
                async with session.get(origin_of(home) + "/.webxdc-rt/home/state") as got:
                    assert got.status == 200
                    return await got.json()

            alice_on_b, bob_on_a = at(homes["alice"], b.port), homes["bob"]
            for home in (alice_on_b, bob_on_a):
                async with session.get(home) as response:  # logs in: a cookie per origin
                    assert response.status == 200
            # Alice shares an app from her home page on B; Bob's home page on A lists it.
            async with session.post(origin_of(alice_on_b) + "/.webxdc-rt/home/share",
                                    data=xdc, headers={"Origin": origin_of(alice_on_b)}
                                    ) as response:
                assert response.status == 201, await response.text()
            deadline = time.monotonic() + 10
            while not (await state(bob_on_a))["apps"]:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            seen = [await state(home) for home in (alice_on_b, bob_on_a)]
            assert [[app["name"] for app in view["apps"]] for view in seen] == [["Mine"]] * 2
            assert seen[1]["apps"][0]["shared_by"] == "alice"
            bob = await joined(seen[1]["apps"][0]["url"])  # served on A, uploaded on B
            await bob.peer.close()
    finally:
        await stop_all(a, b)


async def test_a_process_that_missed_announcements_reads_every_chat_again(
        team, postgres_server):
    a, b, old, bob_on_b = team.a, team.b, team.bob_links, team.bob_on_b
    admin_url = postgres_server.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as db:
        # Connections already made stay; the announcements' ones, cut, cannot come back.
        db.execute("ALTER DATABASE webxdc WITH ALLOW_CONNECTIONS false")
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE query LIKE 'LISTEN webxdc_rt_chats%'")
        revoked = await a.cli("link", "revoke", "team", "bob")
        assert revoked.status == 0, revoked.stderr
        assert not bob_on_b.peer.closed  # B missed the announcement...
        db.execute("ALTER DATABASE webxdc WITH ALLOW_CONNECTIONS true")
    # ...and reads every chat again once its announcements' connection is back.
    await eventually(lambda: bob_on_b.peer.closed, timeout=30.0)
    await bob_on_b.peer.close()
    with pytest.raises(InviteRefused):
        await connect(at(old["apps"][0]["url"], b.port))


async def test_host_workers_serve_one_port_and_a_command_reaches_every_worker(
        tmp_path, postgres_server, redis_server):
    host, metrics = await two_workers(tmp_path / "w", postgres_server.url, redis_server.url)
    try:
        await host.cli("chat", "create", "team", "--members", "alice,bob")
        await host.cli("app", "share", "team", str(PROBE_APP))
        links = (await host.cli("link", "show", "team", "alice", "--json")).json()
        url = links["apps"][0]["url"]
        peers = [await served(url) for _ in range(16)]  # the kernel spreads them
        counts = [await _connections(metrics + index) for index in (0, 1)]
        assert sum(counts) == 16 and all(counts), counts  # both workers serve the chat
        revoked = await host.cli("link", "revoke", "team", "alice")
        assert revoked.status == 0, revoked.stderr
        await eventually(lambda: all(peer.peer.closed for peer in peers), timeout=5.0)
        for peer in peers:
            await peer.peer.close()
    finally:
        assert await host.stop() == 0, host.stderr
    assert "Traceback" not in host.stderr, host.stderr


async def _connections(port: int) -> int:
    """The WebSocket connections open in the worker whose metrics listen on `port`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    line = next(line for line in body.splitlines()
                if line.startswith("webxdc_rt_connections "))
    return int(float(line.split()[1]))
