"""Unit tests of the control-message codec."""

from __future__ import annotations

import json

import pytest

from webxdc_rt import wire


def test_join_and_leave_round_trip():
    assert wire.decode_client_message(wire.encode_join(7)) == wire.Join(7)
    assert wire.decode_client_message(wire.encode_leave()) == wire.Leave()
    assert wire.decode_client_message('{"type":"join"}') == wire.Join(0)


@pytest.mark.parametrize("text, code, fragment", [
    ("not json", "malformed", "not valid JSON"),
    ("[1, 2]", "malformed", "JSON object"),
    ('{"type": "dance"}', "unknown-type", "'dance'"),
    ('{"no": "type"}', "unknown-type", "None"),
    ('{"type": "join", "epoch": "1"}', "malformed", "epoch"),
    ('{"type": "join", "epoch": -1}', "malformed", "epoch"),
    ('{"type": "join", "epoch": 1.5}', "malformed", "epoch"),
    ('{"type": "join", "epoch": true}', "malformed", "epoch"),
    ('{"type": "join", "epoch": 9007199254740992}', "malformed", "epoch"),
])
def test_bad_control_messages_get_a_clear_error(text, code, fragment):
    with pytest.raises(wire.WireError) as caught:
        wire.decode_client_message(text)
    assert caught.value.code == code
    assert fragment in str(caught.value)


def test_oversize_control_message_is_refused_before_parsing():
    text = json.dumps({"type": "leave", "pad": "x" * wire.MAX_CONTROL_BYTES})
    with pytest.raises(wire.WireError) as caught:
        wire.decode_client_message(text)
    assert caught.value.code == "too-large"


def test_multibyte_text_is_measured_in_bytes():
    text = json.dumps({"type": "leave", "pad": "é" * (wire.MAX_CONTROL_BYTES // 2)},
                      ensure_ascii=False)
    assert len(text) < wire.MAX_CONTROL_BYTES < len(text.encode())
    with pytest.raises(wire.WireError, match="over"):
        wire.decode_client_message(text)


def test_host_messages_decode():
    hello = wire.decode_host_message(wire.encode_hello("addr", "Alice", {"max_payload_bytes": 1}))
    assert hello == {"type": "hello", "self_addr": "addr", "self_name": "Alice",
                     "limits": {"max_payload_bytes": 1}}
    assert wire.decode_host_message(wire.encode_joined(3)) == {"type": "joined", "epoch": 3}
    error = wire.decode_host_message(wire.encode_error("not-joined", "why"))
    assert error == {"type": "error", "code": "not-joined", "message": "why"}
    with pytest.raises(wire.WireError):
        wire.decode_host_message('{"type": 5}')
