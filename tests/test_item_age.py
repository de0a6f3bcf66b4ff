"""The age bound at the receiver, over a live host: Python peers drop an item that arrives
older than `max_item_age_s` since its sender sent it (by its stamp, on the host's clock),
a client that does not stamp is stamped by the host and gets bare payloads, and a lying
stamp only costs its own item."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from peers import HANG_S, eventually, joined, next_control, raw_socket

from webxdc_rt.core import wire
from webxdc_rt.core.limits import DeliveryLimits
from webxdc_rt.host.settings import HostSettings

BOUND_S = 2.0
"""The age bound of the tests that need items to go stale: an item sent when nothing holds
the event loop must arrive within it even when this process is held up meanwhile (a long
garbage collection of a big test session on a busy machine takes over a second)."""
STALE_S = BOUND_S + 0.5
"""Long enough past the bound that an item is stale whatever the clocks' estimates."""
LOOSE_BOUND_S = 60.0
"""The age bound of the tests where no honest item may go stale."""


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
    time.sleep(STALE_S)
    alice.channel.send(b"fresh")
    await bob.got(b"fresh")
    assert bob.inbox == [b"fresh"]
    assert bob.peer.stats.items_expired == 5
    assert bob.peer.stats.items_received == 6
    for member in (alice, bob):
        await member.peer.close()


async def test_a_client_that_does_not_stamp_shares_a_channel_with_one_that_does(hosts):
    live = await hosts(HostSettings(delivery=DeliveryLimits(max_item_age_s=LOOSE_BOUND_S)))
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
        assert await ws.receive_bytes(timeout=HANG_S) == b"to the old client"
    finally:
        await session.close()
    await bob.peer.close()


async def test_a_lying_stamp_only_costs_its_own_item(hosts):
    live = await hosts(HostSettings(delivery=DeliveryLimits(max_item_age_s=LOOSE_BOUND_S)))
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


async def test_a_connection_slow_to_open_does_not_make_its_items_look_old(hosts):
    # Bob's link takes longer to open than the bound (a slow network, a loaded machine):
    # his estimate of the host's clock must not count that time, or every item he
    # receives would look that much older and be dropped.
    live = await hosts(HostSettings(delivery=DeliveryLimits(max_item_age_s=BOUND_S)))
    urls = live.share(["alice", "bob"])
    alice = await joined(urls["alice"])
    async with slow_opening_proxy(live.port, delay_s=STALE_S) as port:
        bob = await joined(urls["bob"].replace(f":{live.port}/", f":{port}/"))
        alice.channel.send(b"fresh")
        await bob.got(b"fresh")
        assert bob.peer.stats.items_expired == 0
        bob.channel.send(b"back")
        await alice.got(b"back")
        assert alice.peer.stats.items_expired == 0
        for member in (alice, bob):
            await member.peer.close()


@asynccontextmanager
async def slow_opening_proxy(port: int, delay_s: float) -> AsyncIterator[int]:
    """A loopback TCP proxy to `port` that holds each connection's first bytes for
    `delay_s` before passing them on (and everything after as it comes)."""
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def carry(client_reader: asyncio.StreamReader,
                    client_writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay_s)
        host_reader, host_writer = await asyncio.open_connection("127.0.0.1", port)
        for task in (pipe(client_reader, host_writer), pipe(host_reader, client_writer)):
            tasks.add(asyncio.create_task(task))

    server = await asyncio.start_server(carry, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
