"""Unit tests of the status-update rules."""

from __future__ import annotations

import json

import pytest

from webxdc_rt.core.updates import (
    Update,
    UpdateError,
    UpdateLimits,
    delivered_json,
    validate_update,
)

LIMITS = UpdateLimits()


def test_valid_update_keeps_every_field():
    update = validate_update({"payload": {"a": [1, "é"]}, "info": "i", "href": "h",
                              "document": "d", "summary": "s", "notify": {"*": "n"}}, LIMITS)
    assert update == Update('{"a":[1,"é"]}', "i", "h", "d", "s", {"*": "n"})
    assert json.loads(delivered_json(update, 7, 9)) == {
        "payload": {"a": [1, "é"]}, "info": "i", "href": "h", "document": "d",
        "summary": "s", "notify": {"*": "n"}, "serial": 7, "max_serial": 9}


@pytest.mark.parametrize("payload", [None, 0, "", [], False])
def test_falsy_payloads_are_payloads(payload):
    update = validate_update({"payload": payload}, LIMITS)
    assert json.loads(delivered_json(update, 1, 1)) == {"payload": payload, "serial": 1,
                                                        "max_serial": 1}


@pytest.mark.parametrize("raw, fragment", [
    ("text", "object"), ({}, "payload is missing"), ({"payload": 1, "info": 5}, "info"),
    ({"payload": 1, "notify": {"a": 1}}, "notify"), ({"payload": 1, "notify": []}, "notify"),
    ({"payload": 1, "summary": "x" * 10_001}, "longer than"),
])
def test_bad_updates_are_refused_with_reason(raw, fragment):
    with pytest.raises(UpdateError, match=fragment):
        validate_update(raw, LIMITS)


def test_payload_size_limit_counts_encoded_bytes():
    validate_update({"payload": "x" * 127_998}, LIMITS)  # 128000 bytes with the quotes
    with pytest.raises(UpdateError) as caught:
        validate_update({"payload": "x" * 127_999}, LIMITS)
    assert caught.value.code == "update-too-large"


@pytest.mark.parametrize("raw, code", [
    ({"payload": float("nan")}, "bad-number"),
    ({"payload": [1, float("inf")]}, "bad-number"),
    ({"payload": "cut \ud83d"}, "bad-text"),
    ({"payload": {"\udc00": 1}}, "bad-text"),
    ({"payload": 1, "info": "\ud800"}, "bad-text"),
    ({"payload": 1, "summary": "a\udfffb"}, "bad-text"),
    ({"payload": 1, "notify": {"*": "cut \ud83d"}}, "bad-text"),
    ({"payload": 1, "notify": {"\ud800": "key"}}, "bad-text"),
    ({"payload": {1, 2}}, "bad-update"),
])
def test_updates_that_are_not_strict_json_text_are_refused(raw, code):
    with pytest.raises(UpdateError) as caught:
        validate_update(raw, LIMITS)
    assert caught.value.code == code


def test_payload_nested_beyond_what_json_can_encode_is_refused():
    payload: list = []
    for _ in range(100_000):
        payload = [payload]
    with pytest.raises(UpdateError) as caught:
        validate_update({"payload": payload}, LIMITS)
    assert caught.value.code == "nesting-too-deep"


def test_delivered_json_always_encodes_as_utf8():
    # An update made by hand, not by validate_update: its bad text is sent as U+FFFD.
    update = Update('"p\ud800"', info="i\udfff", notify={"\ud83d": "n\ud83d"})
    text = delivered_json(update, 1, 1)
    text.encode()
    assert json.loads(text) == {"payload": "p\ufffd", "info": "i\ufffd",
                                "notify": {"\ufffd": "n\ufffd"}, "serial": 1, "max_serial": 1}
