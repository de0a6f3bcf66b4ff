"""The frame bound leaves room for an item's stamp: a stamped item carrying the largest
payload (the bridge and the Python peer stamp every item) is one frame of the payload
limit plus the 8-byte stamp, and a host whose `max_frame_bytes` is below that would close
the sender's socket for a payload the contract says is delivered. (A frame must be shorter
than the bound, as aiohttp reads it.)"""

from __future__ import annotations

import pytest
from peers import joined

from webxdc_rt.core.limits import RealtimeLimits
from webxdc_rt.core.wire import ITEM_HEADER_BYTES
from webxdc_rt.host.settings import HostSettings

PAYLOAD = 128_000


def test_a_frame_bound_without_room_for_the_stamp_is_refused():
    with pytest.raises(ValueError, match="max_frame_bytes.*stamp"):
        # Before, anything above the payload limit was taken: a socket that sent the
        # largest stamped item then was closed (1009, message too big).
        HostSettings(max_frame_bytes=PAYLOAD + ITEM_HEADER_BYTES,
                     realtime=RealtimeLimits(max_payload_bytes=PAYLOAD))


async def test_the_largest_stamped_item_fits_the_smallest_frame_bound(hosts):
    live = await hosts(HostSettings(max_frame_bytes=PAYLOAD + ITEM_HEADER_BYTES + 1,
                                    realtime=RealtimeLimits(max_payload_bytes=PAYLOAD)))
    urls = live.share(["alice", "bob"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    alice.channel.send(bytes(PAYLOAD))
    await bob.got(bytes(PAYLOAD))
    assert not alice.peer.errors
    for member in (alice, bob):
        await member.peer.close()
