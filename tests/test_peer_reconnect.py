"""The Python peer outlives a lost link: a host restarted on the same data folder and port,
a link cut in the network, an invite revoked while the peer was away; it reports each change
of its link, in order, and gives up only when the invite is refused or its limits run out."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hosting import HostProcess, family
from peers import Relay, eventually
from ports import free_port

from webxdc_rt.client import (
    InviteRefused,
    LinkEvent,
    LinkLost,
    LinkState,
    Peer,
    RealtimeChannel,
    Reconnect,
    UnstoredUpdatesFull,
    connect,
)
from webxdc_rt.core.errors import Refusal
from webxdc_rt.core.limits import UpdateLimits
from webxdc_rt.host.app import HostSettings

QUICK = Reconnect(first_delay_s=0.01, max_delay_s=0.2)
"""Backoff short enough that a test waits little for the peer to come back."""


class Watched:
    """A reconnecting peer with what its channel and its update listener received, and its
    link events as the callback saw them."""

    def __init__(self) -> None:
        self.events: list[LinkEvent] = []
        self.items: list[bytes] = []
        self.updates: list[dict[str, Any]] = []
        self.peer: Peer
        self.channel: RealtimeChannel

    @classmethod
    async def connect(cls, url: str, reconnect: Reconnect = QUICK) -> Watched:
        """Connect, join, wait for the join, and listen to updates from the start."""
        watched = cls()
        watched.peer = await connect(url, reconnect=reconnect, on_link=watched.events.append)
        watched.channel = watched.peer.join_realtime_channel()
        watched.channel.set_listener(watched.items.append)
        await watched.channel.joined()
        await watched.peer.set_update_listener(watched.updates.append)
        return watched

    def states(self) -> list[LinkState]:
        """The link events so far, by state."""
        return [event.state for event in self.events]

    def serials(self) -> list[int]:
        """The serials of the updates received, in order."""
        return [update["serial"] for update in self.updates]

    async def cut_off(self, relay: Relay) -> None:
        """Cut the peer's link at `relay`, which refuses it from then on (until
        `relay.refusing` is unset), and wait until the peer saw it."""
        relay.refusing = True
        await relay.cut()
        await eventually(lambda: self.states()[-1:] == [LinkState.DOWN])

    async def until_states(self, *states: LinkState) -> None:
        """Wait until the link events are exactly `states`."""
        await eventually(lambda: self.states() == list(states))


@pytest.fixture
async def relays() -> AsyncIterator[Callable[[int], Awaitable[Relay]]]:
    """Starts relays to a host's port; all closed after the test."""
    started: list[Relay] = []

    async def start(port: int) -> Relay:
        started.append(await Relay(port).start())
        return started[-1]

    yield start
    for relay in started:
        await relay.close()


def test_backoff_doubles_up_to_its_bound_with_jitter_off_the_top():
    policy = Reconnect(first_delay_s=0.1, max_delay_s=1.0, jitter=0.5, max_attempts=6)
    delays = list(policy.delays(random.Random(1)))
    assert len(delays) == 6
    for delay, bound in zip(delays, [0.1, 0.2, 0.4, 0.8, 1.0, 1.0], strict=True):
        assert bound * 0.5 <= delay <= bound
    assert list(Reconnect(jitter=0, max_attempts=3).delays()) == [0.1, 0.2, 0.4]
    with pytest.raises(ValueError, match="jitter"):
        Reconnect(jitter=2)


async def test_a_restarted_host_finds_the_peer_joined_and_listening_again(tmp_path):
    # Restarted on its port: one below the ephemeral range, which no outgoing connection
    # (the peers dialling it meanwhile among them) takes while the host is down.
    host = await HostProcess(tmp_path / "d").start(port=free_port())
    links = await family(host, tmp_path)
    alice = await Watched.connect(links["alice"]["apps"][0]["url"])
    bob = await Watched.connect(links["bob"]["apps"][0]["url"])
    alice.peer.send_update({"payload": "before"})
    await eventually(lambda: bob.serials() == [1])
    port = host.port
    assert await host.stop() == 0
    await bob.until_states(LinkState.DOWN)
    await alice.until_states(LinkState.DOWN)
    alice.channel.send(b"nobody hears this")  # no link: dropped and counted
    assert alice.peer.stats.items_dropped_offline == 1
    host = await HostProcess(tmp_path / "d").start(port=port)
    try:
        await bob.until_states(LinkState.DOWN, LinkState.UP)
        await alice.until_states(LinkState.DOWN, LinkState.UP)
        await alice.channel.joined()
        await bob.channel.joined()
        alice.channel.send(b"after")
        await eventually(lambda: bob.items == [b"after"])
        alice.peer.send_update({"payload": "after"})
        await eventually(lambda: bob.serials() == [1, 2])
        assert [u["payload"] for u in bob.updates] == ["before", "after"]
        await eventually(lambda: alice.serials() == [1, 2])
        await bob.peer.close()
        assert bob.states() == [LinkState.DOWN, LinkState.UP, LinkState.CLOSED]
        await bob.peer.wait_closed()  # closed by the program: no error
        await alice.peer.close()
    finally:
        assert await host.stop() == 0


async def test_a_link_cut_mid_stream_comes_back_without_a_gap_in_updates(live_host, relays):
    urls = live_host.share(["alice", "bob"])
    relay = await relays(live_host.port)
    alice = await Watched.connect(relay.invite(urls["alice"]))
    bob = await Watched.connect(urls["bob"])
    for n in range(50):
        bob.channel.send(b"%d" % n)
    await eventually(lambda: len(alice.items) >= 10)
    await alice.cut_off(relay)
    assert len(set(alice.items)) == len(alice.items)  # whatever arrived, once
    for n in range(3):  # sent while alice is away: her listener must get them later
        bob.peer.send_update({"payload": n})
    await eventually(lambda: bob.serials() == [1, 2, 3])
    relay.refusing = False
    await alice.until_states(LinkState.DOWN, LinkState.UP)
    assert alice.events[1].attempt >= 1
    await eventually(lambda: alice.serials() == [1, 2, 3])
    await alice.channel.joined()
    bob.channel.send(b"again")
    await eventually(lambda: alice.items[-1:] == [b"again"])
    bob.peer.send_update({"payload": 3})
    await eventually(lambda: alice.serials() == [1, 2, 3, 4])
    await alice.peer.close()
    await bob.peer.close()


async def test_an_invite_revoked_while_the_peer_is_away_ends_it_with_invite_refused(
        service, tmp_path, relays):
    links = await family(service, tmp_path)
    relay = await relays(service.port)
    bob = await Watched.connect(relay.invite(links["bob"]["apps"][0]["url"]))
    await bob.cut_off(relay)
    await service.cli("link", "revoke", "family", "bob", "--json")
    relay.refusing = False
    await bob.until_states(LinkState.DOWN, LinkState.CLOSED)
    closed = bob.events[-1]
    assert isinstance(closed.error, InviteRefused) and closed.error.code == "invite-refused"
    assert isinstance(closed.error, Refusal) and isinstance(closed.error, PermissionError)
    assert bob.peer.closed and bob.peer.error is closed.error
    with pytest.raises(InviteRefused):
        await bob.peer.wait_closed()
    with pytest.raises(ConnectionError):
        bob.channel.send(b"x")


async def test_the_peer_gives_up_when_its_attempts_run_out(live_host, relays):
    urls = live_host.share(["alice"])
    relay = await relays(live_host.port)
    peer = await connect(relay.invite(urls["alice"]),
                         reconnect=Reconnect(first_delay_s=0.01, max_attempts=3))
    events = peer.link_events()
    relay.refusing = True
    await relay.cut()
    assert (await anext(events)).state is LinkState.DOWN
    closed = await anext(events)
    assert closed.state is LinkState.CLOSED and isinstance(closed.error, LinkLost)
    assert closed.error.code == "link-lost" and "3 attempts" in str(closed.error)
    with pytest.raises(StopAsyncIteration):
        await anext(events)
    with pytest.raises(LinkLost):
        await peer.wait_closed()


async def test_updates_kept_while_away_are_bounded(live_host, relays):
    urls = live_host.share(["alice"])
    relay = await relays(live_host.port)
    policy = Reconnect(first_delay_s=0.01, max_unstored_update_bytes=1000)
    alice = await Watched.connect(relay.invite(urls["alice"]), policy)
    await alice.cut_off(relay)
    kept = 0
    with pytest.raises(UnstoredUpdatesFull, match="1000 bytes") as refused:
        while True:
            alice.peer.send_update({"payload": "x" * 100})
            kept += 1
    assert refused.value.code == "unstored-updates-full" and 0 < kept < 10
    assert alice.peer.unstored_updates == kept
    await alice.peer.close()


# -- resending: these need a host that answers `update-stored` ---------------------------


async def _confirming(peer: Watched) -> None:
    """Skip the test unless the host answers an update with `update-stored`: send one, wait
    until it comes back to the listener and one more request was answered after it."""
    peer.peer.send_update({"payload": "probe"})
    await eventually(lambda: peer.serials()[-1:] == [1])
    await peer.peer.chat_messages()
    if peer.peer.unstored_updates:
        pytest.skip("this host does not answer update-send's id with update-stored")


async def test_updates_sent_while_away_are_sent_on_return_in_order(live_host, relays):
    urls = live_host.share(["alice", "bob"])
    relay = await relays(live_host.port)
    alice = await Watched.connect(relay.invite(urls["alice"]))
    bob = await Watched.connect(urls["bob"])
    await _confirming(alice)
    await alice.cut_off(relay)
    for n in range(5):
        alice.peer.send_update({"payload": n})
    assert alice.peer.unstored_updates == 5
    relay.refusing = False
    await eventually(lambda: bob.serials() == [1, 2, 3, 4, 5, 6])
    assert [u["payload"] for u in bob.updates] == ["probe", 0, 1, 2, 3, 4]
    await eventually(lambda: alice.serials() == [1, 2, 3, 4, 5, 6])
    await eventually(lambda: alice.peer.unstored_updates == 0)
    await alice.peer.close()
    await bob.peer.close()


async def test_an_update_the_host_refused_is_not_kept(live_host):
    urls = live_host.share(["alice"])
    alice = await Watched.connect(urls["alice"])
    await _confirming(alice)
    alice.peer.send_update({"payload": "x" * 130_000})  # over updates.max_payload_bytes
    alice.peer.send_update({"payload": "fits"})
    await eventually(lambda: alice.serials() == [1, 2])
    await eventually(lambda: alice.peer.unstored_updates == 0)
    assert [error.code for error in alice.peer.errors] != []
    await alice.peer.close()


async def test_an_update_stored_but_not_confirmed_is_stored_once(live_host, relays):
    urls = live_host.share(["alice", "bob"])
    relay = await relays(live_host.port)
    alice = await Watched.connect(relay.invite(urls["alice"]))
    bob = await Watched.connect(urls["bob"])
    await _confirming(alice)
    relay.hold()  # the host's answers to alice stay in the relay
    alice.peer.send_update({"payload": "once"})
    await eventually(lambda: bob.serials() == [1, 2])  # stored, not confirmed to alice
    relay.refusing = True
    await relay.cut()  # what the relay held is lost with the link
    relay.release()
    await alice.until_states(LinkState.DOWN)
    assert alice.peer.unstored_updates == 1
    relay.refusing = False
    await alice.until_states(LinkState.DOWN, LinkState.UP)
    await eventually(lambda: alice.peer.unstored_updates == 0)
    await eventually(lambda: alice.serials() == [1, 2])
    bob.peer.send_update({"payload": "next"})
    # The resend stored nothing and was sent to no one: each has each update once.
    for member in (alice, bob):
        await eventually(lambda m=member: len(m.updates) == 3)
        assert [u["payload"] for u in member.updates] == ["probe", "once", "next"]
    await alice.peer.close()
    await bob.peer.close()


async def _cancelled_after(closing: asyncio.Task[None], turns: int) -> bool:
    """Let `closing` run for `turns` turns of the event loop (each a yield, not a wait on
    time), then cancel it and wait until it ends; whether it had ended before the cancel."""
    for _ in range(turns):
        await asyncio.sleep(0)
    ended_before = closing.done()
    closing.cancel()
    await asyncio.wait((closing,))
    return ended_before


async def test_close_cancelled_while_the_peer_stops_dialling_ends_cancelled(
        live_host, relays):
    urls = live_host.share(["alice", "bob"])
    relay = await relays(live_host.port)
    # Every turn of close() is tried: cancelled after 0, 1, 2, ... turns until one ends
    # before its cancel. Each time the peer is dialling again and the host's answer is held
    # back, so close() cancels a dialling that takes a few turns to unwind.
    for turns in itertools.count():
        peer = await connect(relay.invite(urls["alice"]), reconnect=QUICK)
        relay.hold()
        await relay.cut()
        await eventually(lambda: relay.connections == 1)  # dialling again, answer held
        closing = asyncio.create_task(peer.close())
        if await _cancelled_after(closing, turns):
            break
        assert closing.cancelled(), f"a close() cancelled after {turns} turns returned"
        await peer.close()  # a second call finishes what the first began
        assert peer.closed
        relay.release()
        await relay.cut()
    assert turns > 1  # the cancel fell while close() waited for the dialling to end


async def test_close_cancelled_while_it_closes_a_lost_link_ends_cancelled(
        live_host, relays):
    urls = live_host.share(["alice", "bob"])
    relay = await relays(live_host.port)
    # The link is cut, close() is called after 0..5 turns (while the peer notices the loss,
    # or after), and cancelled after 0..3 turns of its own: whatever it is waiting for then
    # (the lost link's tasks among them), it ends cancelled unless it had returned.
    for reconnect in (None, QUICK):
        for before_close, turns in itertools.product(range(6), range(4)):
            peer = await connect(relay.invite(urls["alice"]), reconnect=reconnect)
            await relay.cut()
            for _ in range(before_close):
                await asyncio.sleep(0)
            closing = asyncio.create_task(peer.close())
            if not await _cancelled_after(closing, turns):
                assert closing.cancelled(), (reconnect, before_close, turns)
            await peer.close()
            assert peer.closed


async def test_an_update_the_host_refused_is_not_kept_to_be_sent_again(hosts):
    live = await hosts(HostSettings(updates=UpdateLimits(interval_ms=600_000, burst=1)))
    urls = live.share(["alice"])
    alice = await Watched.connect(urls["alice"])
    alice.peer.send_update({"payload": "stored"})
    # Over the allowance: refused at once, while the first is still being stored, so the
    # refusal comes before the first one's answer.
    alice.peer.send_update({"payload": "refused"})
    await eventually(lambda: [error.code for error in alice.peer.errors] == ["update-rate"])
    await eventually(lambda: alice.serials() == [1])
    await eventually(lambda: alice.peer.unstored_updates == 0)
    await alice.peer.close()
