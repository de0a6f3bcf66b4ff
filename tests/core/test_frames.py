"""WebSocket frames encoded once for fan-out (RFC 6455)."""

from __future__ import annotations

from webxdc_rt.core.frames import (
    binary_frame,
    encode_binary_frame,
    encode_text_frame,
    payload_part,
)


def test_binary_frame_encoding_matches_rfc6455():
    assert encode_binary_frame(b"") == b"\x82\x00"
    assert encode_binary_frame(b"x" * 125)[:2] == b"\x82\x7d"
    assert encode_binary_frame(b"x" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert encode_binary_frame(b"x" * 65536)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")


def test_large_frames_are_written_as_header_and_payload():
    small, large = bytes(8192), bytes(8193)
    assert binary_frame(small) == ((encode_binary_frame(small),), 8196)
    (header, payload), size = binary_frame(large)
    assert payload is large and header + payload == encode_binary_frame(large)
    assert size == len(encode_binary_frame(large))


def test_a_frame_puts_a_prefix_before_the_payload_without_copying_a_large_payload():
    for size in (0, 117, 118, 125, 8184, 8185, 8192, 8193, 65536):
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        parts, total = binary_frame(payload, b"stamp...")
        assert b"".join(parts) == encode_binary_frame(b"stamp..." + payload)
        assert total == len(encode_binary_frame(b"stamp..." + payload))
    assert parts[-1] is payload
    view = memoryview(payload)[8:]
    (_, written), _ = binary_frame(view)
    assert written is view
    assert encode_text_frame("é")[:2] == b"\x81\x02"


def test_a_payload_part_is_a_copy_when_small_and_a_view_when_large():
    small, large = bytes(8 + 8192), bytes(8 + 8193)
    assert type(payload_part(small, 8)) is bytes and payload_part(small, 8) == bytes(8192)
    view = payload_part(large, 8)
    assert isinstance(view, memoryview) and view.obj is large and view == bytes(8193)
