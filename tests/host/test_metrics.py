"""`/metrics` on the admin listener: scraped and parsed with prometheus_client's own parser
before and after traffic, the counters moved by what was sent."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
from hosting import HostProcess, make_xdc, token_of
from peers import eventually, joined, stalled_listener
from prometheus_client.parser import text_string_to_metric_families

from webxdc_rt.core import wire
from webxdc_rt.core.limits import RealtimeLimits, UpdateLimits
from webxdc_rt.host.app import HostSettings
from webxdc_rt.host.metrics import metrics_registry, render

MiB = 1024 * 1024


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_the_traffic(service: HostProcess, tmp_path):
    links = (await service.cli("chat", "create", "family", "--members", "alice,bob",
                               "--json")).json()["links"]
    shared = (await service.cli("app", "share", "family", str(make_xdc(tmp_path / "p.xdc")),
                                "--json")).json()
    alice_url, bob_url = (link["url"] for link in shared["links"])
    assert [link["member"] for link in links] == ["alice", "bob"]
    before = samples(await service.metrics())
    assert value(before, "webxdc_rt_chats") == 1 and value(before, "webxdc_rt_app_copies") == 1
    assert value(before, "webxdc_rt_connections") == 0
    assert value(before, "webxdc_rt_realtime_items_received_total") == 0

    alice, bob = await joined(alice_url), await joined(bob_url)
    for _ in range(10):
        alice.channel.send(b"x" * 100)
    await eventually(lambda: len(bob.inbox) == 10)
    # A raw client that ignores the spec's limit is refused by the host.
    parts = urlsplit(alice_url)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(
                f"ws://127.0.0.1:{parts.port}/.webxdc-rt/socket",
                headers={"Host": parts.netloc, "Authorization": f"Bearer {token_of(alice_url)}"}
        ) as ws:
            assert (await ws.receive_json())["type"] == "hello"
            await ws.send_json({"type": "join", "epoch": 1})
            assert (await ws.receive_json())["type"] == "joined"
            await ws.send_bytes(b"y" * 128_001)
            assert (await ws.receive_json())["code"] == "payload-too-large"
    updates: list = []
    await bob.peer.set_update_listener(updates.append, serial=0)
    alice.peer.send_update({"payload": 1})
    await eventually(lambda: len(updates) == 1)
    during = samples(await service.metrics())
    assert value(during, "webxdc_rt_connections") == 2  # the raw client has gone
    assert value(during, "webxdc_rt_joined_connections") == 2
    assert value(during, "webxdc_rt_realtime_items_received_total") == 10
    assert value(during, "webxdc_rt_realtime_bytes_received_total") == 1000
    assert value(during, "webxdc_rt_realtime_items_sent_total") == 10
    framed = 2 + wire.ITEM_HEADER_BYTES + 100  # a stamped item, as the Python peer gets it
    assert value(during, "webxdc_rt_realtime_bytes_sent_total") == 10 * framed
    assert value(during, "webxdc_rt_refusals_total", code="payload-too-large") == 1
    assert value(during, "webxdc_rt_status_updates_appended_total") == 1
    stored = value(during, "webxdc_rt_store_latency_seconds_count")
    assert stored > value(before, "webxdc_rt_store_latency_seconds_count")
    assert value(during, "webxdc_rt_store_latency_seconds_bucket", le="+Inf") == stored
    assert value(during, "process_resident_memory_bytes") > 0

    await alice.peer.close()
    await bob.peer.close()


async def test_rate_limited_senders_are_counted(tmp_path):
    host = await HostProcess(tmp_path / "d").start(
        "--limit", "realtime.send_items_per_s=50", "--limit", "realtime.send_items_burst=5")
    try:
        await host.cli("chat", "create", "c", "--members", "a,b")
        shared = (await host.cli("app", "share", "c", str(make_xdc(tmp_path / "p.xdc")),
                                 "--json")).json()
        sender = await joined(shared["links"][0]["url"])
        receiver = await joined(shared["links"][1]["url"])
        for _ in range(20):
            sender.channel.send(b"z")
        await eventually(lambda: len(receiver.inbox) == 20)
        scrape = samples(await host.metrics())
        assert value(scrape, "webxdc_rt_rate_limited_total", budget="items") >= 1
        await sender.peer.close()
        await receiver.peer.close()
    finally:
        assert await host.stop() == 0


async def test_slow_receivers_are_counted_as_drops_and_cut_offs(hosts):
    live = await hosts(HostSettings(
        max_outbound_bytes=256 * 1024, updates=UpdateLimits(burst=100),
        realtime=RealtimeLimits(send_bytes_per_s=1024 * MiB, send_bytes_burst=1024 * MiB,
                                send_items_per_s=10_000, send_items_burst=10_000)))
    urls = live.share(["alice", "stalled"])
    registry = metrics_registry(live.host)
    scrape = samples(render(registry).decode())
    assert value(scrape, "webxdc_rt_slow_receivers_cut_off_total") == 0
    assert value(scrape, "webxdc_rt_realtime_items_dropped_total", reason="crowded") == 0
    alice = await joined(urls["alice"])
    sock = await stalled_listener(urls["stalled"])    # from here it reads nothing
    await sock.next_control()
    await sock.send_json({"type": "join", "epoch": 1})
    item = bytes(100_000)
    for i in range(400):                              # realtime items: dropped for it
        alice.channel.send(item)
        if i % 10 == 9:
            await alice.channel.drain()
    await eventually(lambda: live.host.stats.drops.crowded > 0, timeout=30)
    scrape = samples(render(registry).decode())
    assert value(scrape, "webxdc_rt_realtime_items_dropped_total", reason="crowded") > 0
    assert value(scrape, "webxdc_rt_realtime_bytes_dropped_total") > 0
    assert value(scrape, "webxdc_rt_slow_receivers_cut_off_total") == 0
    for n in range(60):                               # status updates: never dropped, so
        alice.peer.send_update({"payload": "x" * 100_000, "info": str(n)})  # it is cut off
        await alice.peer.drain()
    await eventually(lambda: live.host.stats.slow_receivers_cut_off == 1, timeout=30)
    scrape = samples(render(registry).decode())
    assert value(scrape, "webxdc_rt_slow_receivers_cut_off_total") == 1
    assert value(scrape, "webxdc_rt_realtime_items_received_total") >= 1
    sock.close()
    await alice.peer.close()
