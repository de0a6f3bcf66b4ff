"""WebSocket frames encoded once for fan-out (RFC 6455)."""

from __future__ import annotations

from webxdc_rt.core.frames import binary_frame, encode_binary_frame, encode_text_frame


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


def test_a_frame_can_leave_out_the_payloads_first_bytes_without_copying_them():
    for size in (0, 125, 126, 8192, 8193, 65536):
        stamped = b"stamp..." + bytes(range(256)) * (size // 256) + bytes(size % 256)
        parts, total = binary_frame(stamped, 8)
        assert b"".join(parts) == encode_binary_frame(stamped[8:])
        assert total == len(encode_binary_frame(stamped[8:]))
    (_, payload), _ = binary_frame(stamped, 8)
    assert isinstance(payload, memoryview) and payload.obj is stamped
    assert encode_text_frame("é")[:2] == b"\x81\x02"
