"""The simulator over real sockets, driven through the `webxdc_rt.testing` pytest plugin's
`webxdc_sim` fixture with Python peers: faults applied by the host, the log's batches, peers
added, removed and reset."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from ports import free_port

from webxdc_rt.client import InviteRefused, connect
from webxdc_rt.testing import Simulation

PROBE = Path(__file__).parent.parent / "apps" / "probe"


async def test_items_pass_between_members_and_the_log_names_sender_receivers_and_size(
        webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE, peers=3)
    assert sim.members == ["alice", "bob", "carol"]
    alice, bob, carol = [await sim.member(name) for name in sim.members]
    alice.channel.send(b"hello")
    await sim.eventually(lambda: bob.inbox == [b"hello"] and carol.inbox == [b"hello"])
    await sim.eventually(lambda: len(sim.logged("item")) == 1)
    item = sim.logged("item")[0]
    assert item == {"kind": "item", "t": item["t"], "sender": "alice",
                    "receivers": ["bob", "carol"], "size": 5, "text": "hello"}
    batch = sim.simulator.batch()
    assert batch["rates"]["alice"]["items_sent"] == 1
    assert batch["rates"]["bob"]["items_received"] == 1
    assert batch["joined"] == ["alice", "bob", "carol"]


async def test_an_offline_member_loses_items_and_gets_updates_when_back(webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE)
    alice, bob = await sim.member("alice"), await sim.member("bob")
    await bob.listen()
    sim.set_faults("bob", offline=True)
    for i in range(10):
        alice.channel.send(b"item %d" % i)
    alice.peer.send_update({"payload": {"move": 1}})
    await sim.eventually(lambda: sim.lost("bob") == 10)
    await alice.listen()  # alice's own update reaches her; bob's waits
    await sim.eventually(lambda: len(alice.updates) == 1)
    assert bob.updates == [] and bob.inbox == []
    sim.set_faults("bob")
    await sim.eventually(lambda: len(bob.updates) == 1)
    assert bob.updates[0]["payload"] == {"move": 1}
    alice.channel.send(b"after")
    await sim.eventually(lambda: bob.inbox == [b"after"])


async def test_latency_delays_every_item_by_at_least_its_amount(webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE)
    alice, bob = await sim.member("alice"), await sim.member("bob")
    sim.set_faults("bob", latency_ms=200)
    loop = asyncio.get_running_loop()
    arrived: list[float] = []
    bob.channel.set_listener(lambda data: arrived.append(loop.time()))
    sent = loop.time()
    alice.channel.send(b"slow")
    await sim.eventually(lambda: len(arrived) == 1)
    assert arrived[0] - sent >= 0.2


async def test_loss_with_a_seed_keeps_the_delivered_count_within_binomial_bounds(
        webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE)
    alice, bob = await sim.member("alice"), await sim.member("bob")
    sim.set_faults("bob", loss_percent=50, seed=42)
    for i in range(1000):
        alice.channel.send(b"%d" % i)
        if i % 100 == 99:
            await alice.channel.drain()
    await sim.eventually(lambda: sim.delivered("bob") + sim.lost("bob") == 1000)
    delivered = sim.delivered("bob")
    await sim.eventually(lambda: len(bob.inbox) == delivered)
    # Binomial(1000, 0.5): mean 500, standard deviation 15.8; five of them either way.
    assert abs(delivered - 500) < 5 * math.sqrt(1000 * 0.25)


async def test_a_partition_keeps_items_within_each_group(webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE, peers=3)
    alice, bob, carol = [await sim.member(name) for name in sim.members]
    sim.partition(["alice"], ["bob", "carol"])
    alice.channel.send(b"from alice")
    bob.channel.send(b"from bob")
    await sim.eventually(lambda: carol.inbox == [b"from bob"])
    await sim.eventually(lambda: sim.lost("bob") == 1 and sim.lost("carol") == 1)
    assert alice.inbox == [] and bob.inbox == []
    sim.partition()
    alice.channel.send(b"healed")
    await sim.eventually(lambda: bob.inbox == [b"healed"] and carol.inbox[-1] == b"healed")


async def test_a_bandwidth_cap_loses_what_queues_too_long(webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE)
    alice = await sim.member("alice")
    await sim.member("bob")
    sim.set_faults("bob", bandwidth_bytes_per_s=20_000)
    for _ in range(100):
        alice.channel.send(bytes(1000))  # 100 kB: 5 s at the cap, 2 s are queued
    await sim.eventually(lambda: sim.lost("bob") > 0)
    await sim.eventually(lambda: sim.delivered("bob") + sim.lost("bob") == 100)
    assert sim.delivered("bob") < 100


async def test_reset_is_a_fresh_chat(webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE)
    alice = await sim.member("alice")
    await alice.listen()
    alice.peer.send_update({"payload": 1})
    await sim.eventually(lambda: len(alice.updates) == 1)
    old_url = sim.simulator.peer("alice").url
    await sim.simulator.reset()
    assert sim.members == ["alice", "bob"]
    assert sim.simulator.peer("alice").url != old_url
    await sim.eventually(lambda: alice.peer.closed)
    with pytest.raises(InviteRefused):
        await connect(old_url)
    fresh = await sim.member("alice")
    await fresh.listen()
    assert fresh.updates == []


async def test_members_are_added_and_removed(webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE, peers=1)
    alice = await sim.member("alice")
    sim.simulator.add_peer()
    assert sim.members == ["alice", "bob"]
    bob = await sim.member("bob")
    alice.channel.send(b"hi bob")
    await sim.eventually(lambda: bob.inbox == [b"hi bob"])
    await sim.simulator.remove_peer("bob")
    await sim.eventually(lambda: bob.peer.closed)
    assert sim.members == ["alice"]
    await sim.eventually(lambda: {"bob"} == {e["peer"] for e in sim.logged("leave")})


async def test_dashboard_commands_need_its_link_and_refuse_bad_input(webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE)
    port = sim.simulator.port
    host = {"Host": f"dashboard.sim.localhost:{port}"}
    cookie = {"Cookie": f"webxdc_rt={sim.simulator.dashboard_token}"}
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/api"
        async with session.post(url, headers=host, data=b'{"op":"add"}') as response:
            assert response.status == 403
        for body in (b"[", b'{"op":"faults","member":"bob","faults":{"loss_percent":"x"}}',
                     b'{"op":"nope"}', b'{"op":"remove","member":"zed"}', b"\xff",
                     b'{"op":"partition","groups":[["alice"],["alice"]]}', b"x" * 20000,
                     b'{"op":"add","member":"\\u0000"}', b'{"op":"add","member":""}',
                     b'{"op":"add","member":"bob"}', b'{"op":"add","member":"\\ud800"}',
                     b'{"op":"faults","member":"bob","faults":{"latency_ms":1e309}}'):
            async with session.post(url, headers={**host, **cookie}, data=body) as response:
                assert response.status in (400, 413), body
                assert "error" in await response.json()
        async with session.post(url, headers={**host, **cookie},
                                data=json.dumps({"op": "faults", "member": "bob",
                                                 "faults": {"latency_ms": 50}})) as response:
            assert response.status == 200
            state = await response.json()
    assert state["peers"][1]["shown_faults"] == "50±0 ms"


async def test_dev_command_prints_one_json_line_before_serving(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webxdc_rt", "dev", str(PROBE), "--peers", "3", "--no-open",
        "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert [peer["member"] for peer in line["peers"]] == ["alice", "bob", "carol"]
        assert line["dashboard"].startswith("http://dashboard.sim.localhost:")
        peer = await connect(line["peers"][0]["url"])
        assert peer.self_addr == line["peers"][0]["self_addr"]
        await peer.close()
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0


async def test_dev_command_refuses_a_missing_app() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webxdc_rt", "dev", "/nonexistent", "--no-open",
        stderr=asyncio.subprocess.PIPE)
    _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"app not found" in stderr


async def test_the_readme_example_of_ten_percent_loss(webxdc_sim) -> None:
    sim = await webxdc_sim(PROBE, peers=2)
    sim.set_faults("bob", loss_percent=10, seed=1)
    alice, bob = await sim.member("alice"), await sim.member("bob")
    for i in range(200):
        alice.channel.send(b"move %d" % i)
    await sim.eventually(lambda: sim.delivered("bob") + sim.lost("bob") == 200)
    await sim.eventually(lambda: len(bob.inbox) == sim.delivered("bob"))
    assert 150 <= len(bob.inbox) < 200


async def test_an_xdc_file_is_simulated_too(webxdc_sim, tmp_path: Path) -> None:
    from hosting import make_xdc

    sim: Simulation = await webxdc_sim(make_xdc(tmp_path / "probe.xdc", name="Probe"))
    assert sim.simulator.state()["app"] == "Probe"
    alice, bob = await sim.member("alice"), await sim.member("bob")
    bob.channel.send(b"zipped")
    await sim.eventually(lambda: alice.inbox == [b"zipped"])


async def test_held_updates_keep_their_order_behind_latency(webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE)
    alice, bob = await sim.member("alice"), await sim.member("bob")
    await bob.listen()
    sim.set_faults("bob", latency_ms=100)
    for i in range(20):
        alice.peer.send_update({"payload": i})
    await sim.eventually(lambda: len(bob.updates) == 20)
    assert [update["payload"] for update in bob.updates] == list(range(20))


async def test_an_unreachable_dev_server_is_a_502_and_the_bridge_is_still_the_hosts() -> None:
    from webxdc_rt.dev.simulator import Simulator

    # Below the ephemeral range: no server of this run or another listens there by chance
    # (ports of servers started on port 0 are drawn from that range).
    nothing_listens = free_port()
    async with Simulator(f"http://127.0.0.1:{nothing_listens}", 1) as simulator:
        info = simulator.peer("alice")
        page = simulator.host.registry.page(info.label)  # type: ignore[union-attr]
        headers = {"Host": f"{info.label}.sim.localhost:{simulator.port}",
                   "Authorization": f"Bearer {page.token}"}
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{simulator.port}"
            async with session.get(base + "/", headers=headers) as response:
                assert response.status == 502
                assert "did not answer" in await response.text()
            async with session.get(base + "/webxdc.js", headers=headers) as response:
                assert response.status == 200
                assert info.self_addr in await response.text()


BIG_SCRIPT = b"// " + b"x" * 300_000 + b"\n"
ZERO_BOMB = gzip.compress(bytes(65 * 1024 * 1024), 9)  # 65 MiB of zeros in 64 KiB


@pytest.fixture
async def dev_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A dev server as Vite is one (plain HTTP and a WebSocket) that compresses whatever it
    may: it offers permessage-deflate and gzips its `bomb.js`. Yields its URL and the
    headers of every request it received."""
    seen: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.headers))
        if request.path == "/hmr":
            ws = web.WebSocketResponse(compress=True)
            await ws.prepare(request)
            async for message in ws:
                await ws.send_str(message.data)
            return ws
        if request.path == "/bomb.js":
            return web.Response(body=ZERO_BOMB, content_type="text/javascript",
                                headers={"Content-Encoding": "gzip"})
        return web.Response(body=BIG_SCRIPT, content_type="text/javascript")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


async def test_the_dev_server_proxy_negotiates_no_compression_and_inflates_nothing(
        dev_server: tuple[str, list[dict[str, str]]]) -> None:
    from webxdc_rt.dev.simulator import Simulator

    url, seen = dev_server
    async with Simulator(url, 1) as simulator:
        info = simulator.peer("alice")
        page = simulator.host.registry.page(info.label)  # type: ignore[union-attr]
        headers = {"Host": f"{info.label}.sim.localhost:{simulator.port}",
                   "Authorization": f"Bearer {page.token}"}
        base = f"http://127.0.0.1:{simulator.port}"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(base + "/hmr", headers=headers,
                                          compress=15) as ws:  # offers permessage-deflate
                assert ws.compress == 0  # the host accepted no extension
                await ws.send_str("hot update")
                assert (await ws.receive_str()) == "hot update"
            assert "Sec-WebSocket-Extensions" not in seen[-1]  # nor offered one upstream
            async with session.get(base + "/big.js", headers=headers) as response:
                assert response.status == 200
                assert await response.read() == BIG_SCRIPT  # whole, past the first chunk
            async with session.get(base + "/bomb.js", headers=headers) as response:
                assert response.status == 502
                assert "Content-Encoding: gzip" in await response.text()
            assert seen[-1]["Accept-Encoding"] == "identity"
        dashboard = {"Host": f"dashboard.sim.localhost:{simulator.port}",
                     "Cookie": f"webxdc_rt={simulator.dashboard_token}"}
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(base + "/socket", headers=dashboard,
                                          compress=15) as ws:
                assert ws.compress == 0


async def test_too_many_held_updates_close_the_listener_to_read_them_from_the_store() -> None:
    from webxdc_rt.dev.faults import FaultLimits
    from webxdc_rt.dev.limits import SimulatorLimits
    from webxdc_rt.dev.simulator import Simulator
    from webxdc_rt.testing import SimMember

    limits = SimulatorLimits(faults=FaultLimits(max_held_updates=3))
    simulator = Simulator(PROBE, 2, limits=limits)
    await simulator.start()
    sim = Simulation(simulator)  # closes the simulator with its peers
    try:
        alice, bob = await sim.member("alice"), await sim.member("bob")
        await bob.listen()
        sim.set_faults("bob", offline=True)
        for i in range(5):
            alice.peer.send_update({"payload": i})
        await alice.listen()
        await sim.eventually(lambda: len(alice.updates) == 5)
        assert bob.updates == []
        sim.set_faults("bob")
        await sim.eventually(lambda: bob.peer.closed)
        again = await connect(simulator.peer("bob").url)
        member = SimMember("bob", again, again.join_realtime_channel())
        await member.listen()
        assert [update["payload"] for update in member.updates] == [0, 1, 2, 3, 4]
        await again.close()
    finally:
        await sim.close()
