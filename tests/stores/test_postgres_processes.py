"""Several `webxdc-rt serve` processes sharing one chat through one PostgreSQL (`--store`) and
one Redis (`--broker`): status updates sent on any process reach the pages on every process
in one serial order, none lost or duplicated; a backlog answers the same everywhere;
PostgreSQL restarted: clear errors meanwhile, recovery without restarting a host;
`--workers N` serves from N processes on one port; and `webxdc-rt host --store` keeps what
is built while it runs in the database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from typing import Any

import pytest
from hosting import HostProcess, family
from peers import eventually, joined
from ports import free_port
from serving import APP, MEMBERS, ServeProcess, listening, on_port, serving

from webxdc_rt.client import connect


async def test_processes_serve_the_same_chat_with_one_serial_order(
        tmp_path, postgres_server, redis_server):
    with serving(tmp_path, postgres_server, redis_server) as hosts:
        # The same invite tokens and selfAddrs on every process.
        paths = {tuple(u.split("/", 3)[3] for u in host.urls.values()) for host in hosts}
        assert len(paths) == 1
        # Every member listening on every process; each member sends on its own process.
        listeners = [[await listening(on_port(hosts[0].urls[m], host.urls[m]))
                      for m in MEMBERS] for host in hosts]
        senders = [listeners[index][index][0] for index in range(3)]
        per_sender = 100

        for n in range(per_sender):
            for index, sender in enumerate(senders):
                sender.send_update({"payload": {"from": index, "n": n}})
        total = per_sender * len(senders)
        everyone = [seen for row in listeners for _, seen in row]
        await eventually(lambda: all(len(seen) >= total for seen in everyone), timeout=60)
        reference = [(u["serial"], u["payload"]) for u in everyone[0]]
        for seen in everyone:
            assert [(u["serial"], u["payload"]) for u in seen] == reference  # one order
        serials = [serial for serial, _ in reference]
        assert serials == sorted(set(serials))  # increasing, no duplicates
        for index in range(3):  # each sender's own order kept
            assert [p["n"] for _, p in reference if p["from"] == index] == \
                list(range(per_sender))

        # A backlog answers the same on every process.
        for host in hosts:
            peer, seen = await listening(host.urls["alice"])
            assert [(u["serial"], u["payload"]) for u in seen] == reference
            await peer.close()
        for row in listeners:
            for peer, _ in row:
                await peer.close()


async def test_postgres_restarted_clear_errors_then_recovery_without_restart(
        tmp_path, postgres_server, redis_server):
    with serving(tmp_path, postgres_server, redis_server, count=2) as hosts:
        # Alice's peer keeps her updates until her host confirms them stored, which shows
        # when the commit's answer reached that host: bob may receive an update (announced
        # at the commit) before it does, and a PostgreSQL stopped in between leaves the
        # update stored yet refused to her (`storage-failed`), the documented ambiguity.
        alice = await connect(hosts[0].urls["alice"], reconnect=True)
        alice_seen: list[dict[str, Any]] = []
        await alice.set_update_listener(alice_seen.append)
        bob, bob_seen = await listening(hosts[1].urls["bob"])
        alice.send_update({"payload": "before"})
        await eventually(lambda: len(bob_seen) == 1 and alice.unstored_updates == 0)

        postgres_server.stop()
        alice.send_update({"payload": "while down"})
        await eventually(lambda: len(alice.errors) == 1)
        assert alice.errors[0].code == "storage-failed"
        # A page that has never connected cannot be counted against its quota: refused,
        # clearly, until the store is back.
        with pytest.raises(ConnectionError, match="503"):
            await connect(hosts[1].urls["carol"])
        postgres_server.start()

        for n in range(600):  # bounded: the host reconnects within seconds
            if any(str(u["payload"]).startswith("after") for u in bob_seen):
                break
            errors, seen = len(alice.errors), len(alice_seen)
            alice.send_update({"payload": f"after {n}"})
            await eventually(lambda errors=errors, seen=seen: len(alice.errors) > errors
                             or len(alice_seen) > seen, timeout=30)
        else:
            raise AssertionError("updates did not resume")
        # Nothing acknowledged was lost; what was refused was never delivered.
        assert bob_seen[0]["payload"] == "before"
        assert all(u["payload"] != "while down" for u in bob_seen)
        await eventually(lambda: [u["serial"] for u in alice_seen] ==
                         [u["serial"] for u in bob_seen])
        carol, carol_seen = await listening(hosts[1].urls["carol"])
        assert [u["serial"] for u in carol_seen] == [u["serial"] for u in bob_seen]
        for host in hosts:
            assert host.stderr().count("PostgreSQL unreachable") <= 1
        assert hosts[0].stderr().count("PostgreSQL unreachable") == 1
        await carol.close()
        await alice.close()
        await bob.close()


def test_workers_without_broker_and_store_are_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "webxdc_rt", "serve", str(APP), "--members", "a,b",
         "--port", "0", "--data-dir", str(tmp_path), "--workers", "2"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--workers 2 needs --broker redis://... and --store postgresql://..." \
        in result.stderr
    assert "Traceback" not in result.stderr


async def test_workers_share_one_port(tmp_path, postgres_server, redis_server):
    host = ServeProcess(tmp_path, postgres_server.url, redis_server.url, "--workers", "3")
    try:
        await eventually(lambda: host.stderr().count("worker") >= 3, timeout=60)
        peers = []
        for _ in range(12):  # the kernel spreads connections over the workers
            peer, seen = await listening(host.urls["alice"])
            peers.append((peer, seen))
        bob, bob_seen = await listening(host.urls["bob"])
        bob.send_update({"payload": "hi"})
        await eventually(lambda: all(len(seen) == 1 for _, seen in peers))
        for peer, _ in peers:
            await peer.close()
        await bob.close()
    finally:
        assert host.stop() == 0
    assert "Traceback" not in host.stderr()
    # Each worker names itself in its lines, so lines of workers stopping together differ.
    assert sorted(re.findall(r"worker (\d+): stopping", host.stderr())) == ["0", "1", "2"]
    assert "chats and updates in PostgreSQL" in host.stderr()


async def test_a_worker_killed_is_replaced_and_the_others_serve_on(
        tmp_path, postgres_server, redis_server):
    host = ServeProcess(tmp_path, postgres_server.url, redis_server.url, "--workers", "2")

    def serving_pids() -> list[int]:
        started = re.findall(r"worker \d+: serving .*, pid (\d+);", host.stderr())
        return [int(pid) for pid in started]

    try:
        await eventually(lambda: len(serving_pids()) == 2, timeout=60)
        victim = serving_pids()[0]
        alice, alice_seen = await listening(host.urls["alice"])
        os.kill(victim, signal.SIGKILL)
        await eventually(lambda: "starting another, 1 still serving" in host.stderr(),
                         timeout=30)
        await eventually(lambda: len(serving_pids()) == 3, timeout=60)  # the replacement
        # Connections made now reach the workers alive; their pages exchange updates.
        bob, bob_seen = await listening(host.urls["bob"])
        carol, carol_seen = await listening(host.urls["carol"])
        bob.send_update({"payload": "still here"})
        await eventually(lambda: len(bob_seen) == 1 and len(carol_seen) == 1)
        for peer in (alice, bob, carol):
            await peer.close()
    finally:
        assert host.stop() == 0
    assert "Traceback" not in host.stderr()


async def test_a_host_on_postgres_keeps_chats_and_uploaded_apps_there(
        tmp_path, postgres_server):
    # Chats built while the host runs, an uploaded app among them, are all in the database:
    # a host started on another data folder with the same --store serves them alike.
    # The second is started on the first one's port: one below the ephemeral range, which
    # no outgoing connection takes in between.
    first = await HostProcess(tmp_path / "one").start("--store", postgres_server.url,
                                                      port=free_port())
    links = await family(first, tmp_path)
    (tmp_path / "second.xdc").unlink()  # the uploaded copy is kept in PostgreSQL
    assert await first.stop() == 0
    second = await HostProcess(tmp_path / "two").start("--store", postgres_server.url,
                                                       port=first.port)
    try:
        alice = await joined(links["alice"]["apps"][1]["url"])
        bob = await joined(links["bob"]["apps"][1]["url"])
        bob.channel.send(b"from the database")
        await alice.got(b"from the database")
        assert alice.peer.self_addr == links["alice"]["apps"][1]["self_addr"]
        await alice.peer.close()
        await bob.peer.close()
    finally:
        assert await second.stop() == 0
    assert "Traceback" not in first.stderr + second.stderr


@pytest.mark.parametrize("store, message", [
    ("mysql://db/x", "--store must be a postgresql:// URL"),
    ("postgresql://nobody@127.0.0.1:1/none", "--store: cannot connect to PostgreSQL"),
])
def test_a_bad_or_unreachable_store_is_a_one_line_error(tmp_path, store, message):
    result = subprocess.run(
        [sys.executable, "-m", "webxdc_rt", "serve", str(APP), "--members", "a,b",
         "--port", "0", "--data-dir", str(tmp_path), "--store", store],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"webxdc-rt: error: {message}"), lines


async def test_status_updates_cross_processes_through_the_store_alone(tmp_path,
                                                                     postgres_server):
    # Without --broker realtime items stay in each process, but status updates are the
    # store's: they reach every process.
    hosts = [ServeProcess(tmp_path, postgres_server.url, None) for _ in range(2)]
    try:
        alice, alice_seen = await listening(hosts[0].urls["alice"])
        bob, bob_seen = await listening(hosts[1].urls["bob"])
        alice.send_update({"payload": "one"})
        bob.send_update({"payload": "two"})
        await eventually(lambda: len(alice_seen) == 2 and len(bob_seen) == 2)
        # max_serial may differ: it is the newest serial a process knew when it sent one.
        assert [(u["serial"], u["payload"]) for u in alice_seen] == \
            [(u["serial"], u["payload"]) for u in bob_seen]
        await alice.close()
        await bob.close()
    finally:
        for host in hosts:
            assert host.stop() == 0
