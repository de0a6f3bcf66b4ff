"""The age bound at the receiver, over a live host: Python peers drop an item that arrives
older than `max_item_age_s` since its sender sent it (by its stamp, on the host's clock),
a client that does not stamp is stamped by the host and gets bare payloads, and a lying
stamp only costs its own item."""

from __future__ import annotations

import time

from peers import eventually, joined, next_control, raw_socket

from webxdc_rt.core import wire
from webxdc_rt.core.limits import DeliveryLimits
from webxdc_rt.host.settings import HostSettings

BOUND_S = 0.3


async def test_items_that_reach_a_blocked_receiver_past_the_bound_are_dropped_fresh_ones_not(
        hosts):
    live = await hosts(HostSettings(delivery=DeliveryLimits(max_item_age_s=BOUND_S)))
    urls = live.share(["alice", "bob"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    for n in range(5):
        alice.channel.send(b"stale %d" % n)
    await alice.channel.drain()
    # The event loop (the receiver's, and the host's with it) is held longer than the
    # bound: the items are in the sockets meanwhile, and reach bob too old to keep.
    time.sleep(BOUND_S * 2)
    alice.channel.send(b"fresh")
    await bob.got(b"fresh")
    assert bob.inbox == [b"fresh"]
    assert bob.peer.stats.items_expired == 5
    assert bob.peer.stats.items_received == 6
    for member in (alice, bob):
        await member.peer.close()


async def test_a_client_that_does_not_stamp_shares_a_channel_with_one_that_does(hosts):
    live = await hosts(HostSettings(delivery=DeliveryLimits(max_item_age_s=BOUND_S)))
    urls = live.share(["alice", "bob"])
    bob = await joined(urls["bob"])
    session, ws = await raw_socket(live.port, live.last_pages[0])
    try:
        await ws.send_json({"type": "join", "epoch": 1})  # an older client: no stamps
        assert (await next_control(ws))["type"] == "joined"
        for payload in (b"", bytes(128_000)):  # the limits of R8, on the payload
            await ws.send_bytes(payload)
            await eventually(lambda p=payload: p in bob.inbox)
        bob.channel.send(b"to the old client")
        assert await ws.receive_bytes(timeout=5) == b"to the old client"
    finally:
        await session.close()
    await bob.peer.close()


async def test_a_lying_stamp_only_costs_its_own_item(hosts):
    live = await hosts(HostSettings(delivery=DeliveryLimits(max_item_age_s=BOUND_S)))
    urls = live.share(["alice", "bob", "carol"])
    bob, carol = await joined(urls["bob"]), await joined(urls["carol"])
    session, ws = await raw_socket(live.port, live.last_pages[0])
    try:
        await ws.send_json({"type": "join", "epoch": 1, "stamped": True})
        assert (await next_control(ws))["type"] == "joined"
        await ws.send_bytes(wire.encode_stamp(float("inf")) + b"from the future")
        await ws.send_bytes(wire.encode_stamp(float("nan")) + b"not a number")
        await ws.send_bytes(wire.encode_stamp(0.0) + b"from 1970")
        await ws.send_bytes(wire.encode_stamp(time.time() * 1000) + b"honest")
        carol.channel.send(b"from carol")
        await bob.got(b"from carol")
        await bob.got(b"honest")
        assert sorted(bob.inbox) == [b"from carol", b"from the future", b"honest",
                                     b"not a number"]
        assert bob.peer.stats.items_expired == 1
    finally:
        await session.close()
    for member in (bob, carol):
        await member.peer.close()
