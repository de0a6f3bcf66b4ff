"""Unit tests of realtime items as bytes between host processes (no I/O), hostile input
included: whatever arrives from the broker decodes to an item or to None, never raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webxdc_rt.brokers.items import (
    FORMAT,
    MAX_ORIGIN_BYTES,
    decode_item,
    encode_header,
    origin_prefix,
)
from webxdc_rt.core import wire
from webxdc_rt.core.fanout import Published, new_node_id

LIMIT = 128_000
STAMP = wire.encode_stamp(1234.5)


def encoded(origin: str, sender: int, payload: bytes) -> bytes:
    """An item as a process publishes it: header, then the stamp and payload it got."""
    return encode_header(origin_prefix(origin), sender, STAMP) + payload


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)), b"\0" * LIMIT])
def test_an_item_crosses_unchanged(payload):
    origin = new_node_id()
    data = encoded(origin, 2**64 - 1, payload)
    assert decode_item(data, LIMIT) == Published(origin, 2**64 - 1, STAMP, payload)


def test_the_header_is_compact_binary():
    data = encoded("abc123", 7, b"payload")
    assert data == (bytes([FORMAT, 6]) + b"abc123" + (7).to_bytes(8, "big") + STAMP
                    + b"payload")
    # A node id of the host: 16 hex digits, so 26 bytes of header.
    assert len(encode_header(origin_prefix(new_node_id()), 1, STAMP)) == 26 + len(STAMP)


def test_an_items_own_prefix_tells_its_process():
    mine, other = origin_prefix("abc"), origin_prefix("abcd")
    assert encoded("abc", 1, b"x").startswith(mine)
    assert not encoded("abcd", 1, b"x").startswith(mine)
    assert not encoded("abc", 1, b"x").startswith(other)


@pytest.mark.parametrize("origin", ["", "a" * (MAX_ORIGIN_BYTES + 1), "a b", "é", "a\0"])
def test_origins_that_cannot_be_named_are_refused(origin):
    with pytest.raises(ValueError, match="origin"):
        origin_prefix(origin)


@pytest.mark.parametrize("data", [
    b"",
    b"\x01",
    bytes([FORMAT, 3]) + b"abc" + b"\0" * 7,  # sender cut short
    bytes([1, 3]) + b"abc" + b"\0" * 16,  # another format (1: items without a stamp)
    bytes([FORMAT, 3]) + b"abc" + b"\0" * 15,  # stamp cut short
    bytes([FORMAT, 0]) + b"\0" * 8,  # no origin
    bytes([FORMAT, 200]) + b"a" * 200 + b"\0" * 8,  # origin too long
    bytes([FORMAT, 3]) + b"a\xffc" + b"\0" * 8,  # origin not ASCII
    bytes([FORMAT, 3]) + b"a:c" + b"\0" * 8,  # origin not letters and digits
    bytes([FORMAT, 9]) + b"abc" + b"\0" * 8,  # origin length past the end
])
def test_malformed_messages_decode_to_none(data):
    assert decode_item(data, LIMIT) is None


def test_a_payload_over_the_limit_is_refused():
    assert decode_item(encoded("abc", 1, b"x" * 11), 10) is None
    assert decode_item(encoded("abc", 1, b"x" * 10), 10) is not None


@given(st.binary(max_size=300))
def test_any_bytes_decode_to_an_item_or_none(data):
    item = decode_item(data, 100)
    if item is not None:
        assert encode_header(origin_prefix(item.origin), item.sender, item.stamp) \
            + item.payload == data
        assert len(item.stamp) == wire.ITEM_HEADER_BYTES and len(item.payload) <= 100


@given(st.text(alphabet="abcdef0123456789XYZ", min_size=1, max_size=MAX_ORIGIN_BYTES),
       st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=200))
def test_every_item_round_trips(origin, sender, payload):
    assert decode_item(encoded(origin, sender, payload), LIMIT) == (origin, sender, STAMP,
                                                                    payload)
