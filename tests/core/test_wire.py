"""Unit tests of the control-message codec."""

from __future__ import annotations

import json

import pytest

from webxdc_rt.core import wire


def test_join_and_leave_round_trip():
    assert wire.decode_client_message(wire.encode_join(7)) == wire.Join(7)
    assert wire.decode_client_message(wire.encode_leave()) == wire.Leave()
    assert wire.decode_client_message('{"type":"join"}') == wire.Join(0)


def test_a_join_says_whether_its_items_are_stamped_and_an_old_join_means_not():
    assert wire.decode_client_message(wire.encode_join(7, True)) == wire.Join(7, True)
    assert json.loads(wire.encode_join(7)) == {"type": "join", "epoch": 7}
    with pytest.raises(wire.WireError, match="'stamped' must be true or false"):
        wire.decode_client_message('{"type":"join","epoch":1,"stamped":1}')


def test_the_hello_carries_the_host_clock_and_the_age_bound_and_an_old_hello_neither():
    limits = wire.HelloLimits(1, 1.0, 1, 1.0, 1, max_item_age_ms=2000.0)
    hello = wire.Hello("a", "n", limits, time_ms=1.7e12)
    assert wire.decode_hello(wire.encode_host_message(hello)) == hello
    old = wire.decode_hello(wire.encode_hello("a", "n", wire.HelloLimits(1, 1.0, 1, 1.0, 1)))
    assert (old.time_ms, old.limits.max_item_age_ms) == (None, 0.0)
    with pytest.raises(wire.WireError, match="expected the host's hello"):
        wire.decode_hello(wire.encode_joined(1))
    with pytest.raises(wire.WireError, match="'time_ms' must be a finite number"):
        wire.decode_hello('{"type":"hello","self_addr":"a","self_name":"n","time_ms":"x",'
                          '"limits":{"max_payload_bytes":1,"send_items_per_s":1,'
                          '"send_items_burst":1,"send_bytes_per_s":1,"send_bytes_burst":1}}')


def test_the_stamp_is_eight_bytes_of_big_endian_double_before_the_payload():
    stamp = wire.encode_stamp(1.5)
    assert stamp == bytes.fromhex("3ff8000000000000") and wire.ITEM_HEADER_BYTES == 8
    assert wire.read_stamp(stamp + b"payload") == 1.5


@pytest.mark.parametrize("stamp, age", [
    (9_000.0, 1_000.0),            # sent a second before now
    (10_000.0, 0.0),
    (50_000.0, 0.0),               # in the future: counts as now
    (float("inf"), 0.0),
    (float("nan"), 0.0),           # not a number: counts as now
    (float("-inf"), float("inf")),  # as old as can be: only its own item is dropped
])
def test_a_stamp_is_clamped_so_that_it_can_only_make_its_item_older(stamp, age):
    assert wire.stamped_age_ms(stamp, 10_000.0) == age


def test_a_client_clock_stamps_by_the_host_clock_and_drops_what_is_over_the_bound():
    # The hello said 5000 ms of the host's clock; the client dialled at 100 ms of its own
    # and read the hello at 130 ms: the offset is between 4870 and 4900 ms.
    clock = wire.ItemClock(host_ms=5_000.0, dialled_ms=100.0, heard_ms=130.0,
                           max_age_ms=2_000.0)
    item = clock.stamp(b"data", local_ms=300.0)
    assert item == wire.encode_stamp(5_200.0) + b"data"  # by the higher bound
    assert clock.fresh(item, local_ms=2_330.0)        # exactly at the bound, by the lower
    assert not clock.fresh(item, local_ms=2_331.0)    # over it
    assert not clock.fresh(item[:7], local_ms=300.0)  # no whole stamp


def test_a_reading_in_a_joined_narrows_the_bounds_and_a_contradicting_one_replaces_them():
    # Busy for 3 s while its link opened: the hello gave an offset between 2000 and 5000.
    clock = wire.ItemClock(host_ms=5_000.0, dialled_ms=0.0, heard_ms=3_000.0,
                           max_age_ms=2_000.0)
    clock.narrow(host_ms=14_000.0, asked_ms=10_000.0, heard_ms=10_004.0)  # idle by now
    assert (clock.receive_offset_ms, clock.send_offset_ms) == (3_996.0, 4_000.0)
    clock.narrow(host_ms=24_005.0, asked_ms=20_000.0, heard_ms=20_010.0)  # not tighter
    assert (clock.receive_offset_ms, clock.send_offset_ms) == (3_996.0, 4_000.0)
    clock.narrow(host_ms=90_000.0, asked_ms=30_000.0, heard_ms=30_001.0)  # a jumped clock
    assert (clock.receive_offset_ms, clock.send_offset_ms) == (59_999.0, 60_000.0)


@pytest.mark.parametrize("true_offset", [4_870.0, 4_885.0, 4_900.0])
def test_whatever_the_true_offset_within_the_bounds_no_item_within_the_bound_is_dropped(
        true_offset):
    # Two clients whose hellos gave the bounds: an item sent by one and received by the
    # other within the bound, by the host's true clock, is fresh at the receiver.
    sender = wire.ItemClock(host_ms=5_000.0, dialled_ms=100.0, heard_ms=130.0,
                            max_age_ms=2_000.0)
    receiver = wire.ItemClock(host_ms=5_000.0, dialled_ms=100.0, heard_ms=130.0,
                              max_age_ms=2_000.0)
    sent_local = 1_000.0
    item = sender.stamp(b"x", sent_local)
    host_sent = sent_local + true_offset
    received_local = host_sent + 2_000.0 - true_offset  # exactly the bound later
    assert receiver.fresh(item, received_local)


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


LIMITS = wire.HelloLimits(max_payload_bytes=128_000, send_items_per_s=2000.0,
                          send_items_burst=2000, send_bytes_per_s=1.5, send_bytes_burst=10)

HOST_MESSAGES = [
    wire.Hello("addr", "Alice 😀", LIMITS),
    wire.Joined(0), wire.Joined(2**53 - 1), wire.Joined(4, 1_765_000_000_000.25),
    wire.Update(1, {"payload": {"x": [1, 2.5, None]}, "info": "é", "serial": 3,
                    "max_serial": 9}),
    wire.UpdateBacklogDone(4),
    wire.UpdateStored("a-Z_9", 11),
    wire.Reply(5, True), wire.Reply(6, False, "chat-rate", "too fast"),
    wire.ChatMessages(7, [], False),
    wire.ChatMessages(8, [{"id": 1, "member": "bob", "text": "hi", "file_name": None,
                           "file_base64": None}], True),
    wire.ErrorMessage("not-joined", "why"),
    wire.ErrorMessage("update-rate", "too fast", "a-Z_9"),
    wire.UnknownHostMessage("news", {"type": "news", "x": [1]}),
]


@pytest.mark.parametrize("message", HOST_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_host_message_round_trips(message):
    text = wire.encode_host_message(message)
    assert wire.decode_host_message(text) == message
    assert json.loads(text)["type"] == {
        wire.Hello: "hello", wire.Joined: "joined", wire.Update: "update",
        wire.UpdateBacklogDone: "update-backlog-done", wire.UpdateStored: "update-stored",
        wire.Reply: "reply",
        wire.ChatMessages: "chat-messages", wire.ErrorMessage: "error",
        wire.UnknownHostMessage: "news"}[type(message)]


def test_the_host_writes_what_the_bridge_reads():
    """static/webxdc.js reads these fields as they are: a change here breaks pages."""
    assert json.loads(wire.encode_joined(3)) == {"type": "joined", "epoch": 3}
    assert json.loads(wire.encode_joined(3, 5_000.5)) == {"type": "joined", "epoch": 3,
                                                           "time_ms": 5_000.5}
    assert json.loads(wire.encode_update(2, '{"serial":1}')) == {
        "type": "update", "listen": 2, "update": {"serial": 1}}
    assert json.loads(wire.encode_backlog_done(2)) == {"type": "update-backlog-done",
                                                       "listen": 2}
    assert json.loads(wire.encode_update_stored("u1", 9)) == {"type": "update-stored",
                                                             "id": "u1", "serial": 9}
    assert json.loads(wire.encode_reply(4)) == {"type": "reply", "id": 4, "ok": True}
    assert json.loads(wire.encode_reply(4, ("c", "m"))) == {
        "type": "reply", "id": 4, "ok": False, "code": "c", "message": "m"}
    assert json.loads(wire.encode_error("c", "m")) == {"type": "error", "code": "c",
                                                       "message": "m"}
    assert json.loads(wire.encode_error("c", "m", "u1")) == {"type": "error", "code": "c",
                                                             "message": "m", "id": "u1"}
    assert json.loads(wire.encode_hello("a", "n", LIMITS)) == {
        "type": "hello", "self_addr": "a", "self_name": "n",
        "limits": {"max_payload_bytes": 128_000, "send_items_per_s": 2000.0,
                   "send_items_burst": 2000, "send_bytes_per_s": 1.5, "send_bytes_burst": 10,
                   "receive_window_bytes": 0}}
    assert json.loads(wire.encode_received(12)) == {"type": "received", "bytes": 12}


def test_every_client_message_round_trips():
    for message in (wire.Join(3), wire.Leave(), wire.Received(7), wire.UpdateSend({"payload": 1}),
                    wire.UpdateListen(1, 2), wire.SendToChat(1, "t", "f.txt", "aGk="),
                    wire.SendToChat(2, "t", None, None), wire.ChatMessagesRequest(3),
                    wire.ChatMessagesRequest(4, before=7)):
        assert wire.decode_client_message(wire.encode_client_message(message)) == message


# -- the strict JSON decoder -------------------------------------------------------------

NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1E400", "1.8e308", "9" * 400,
              "-" + "9" * 400, "9" * 5000, "1" + "0" * 210 + "e99"]


@pytest.mark.parametrize("number", NOT_FINITE)
def test_numbers_a_browser_cannot_read_as_finite_are_refused(number):
    for text in (number, f"[{number}]", f'{{"a":{{"b":[1,{number}]}}}}'):
        with pytest.raises(wire.WireError) as caught:
            wire.decode_json(text)
        assert caught.value.code == "bad-number"
        assert "finite" in str(caught.value) and "1.8e308" in str(caught.value)


@pytest.mark.parametrize("number", ["1.7976931348623157e308", "-1.7976931348623157e308",
                                    "1e-999", "0", "-0", "9007199254740993", "9" * 308])
def test_finite_numbers_are_kept(number):
    assert wire.decode_json(f"[{number}]") == [json.loads(number)]


@pytest.mark.parametrize("text", [
    '"\\ud800"', '"\\udfff"', '"a\\ud83d"', '"\\ude00\\ud83d"', '"\\ud83d\\ud83d"',
    '{"\\udc00": 1}', '{"a": {"b": ["ok", "\\ud800x"]}}', '{"\\ud800": {"k": 1}}',
    '"\ud800"', '["\udc00"]',  # unescaped: only a caller in Python can pass these
])
def test_lone_surrogates_are_refused_in_strings_and_keys(text):
    with pytest.raises(wire.WireError) as caught:
        wire.decode_json(text)
    assert caught.value.code == "bad-text"
    assert "lone surrogate" in str(caught.value)


def test_escaped_surrogate_pairs_and_escaped_backslashes_are_text():
    assert wire.decode_json('["\\ud83d\\ude00", {"\\uD83D\\uDE00": "é"}]') == ["😀", {"😀": "é"}]
    assert wire.decode_json('"\\\\ud800"') == "\\ud800"  # a backslash, then "ud800"


def test_nesting_is_limited_by_an_iterative_walk():
    limit = wire.MAX_JSON_DEPTH
    assert wire.decode_json("[" * limit + "]" * limit) is not None
    assert wire.decode_json('{"a":' * (limit - 1) + "{}" + "}" * (limit - 1)) is not None
    for text in ("[" * (limit + 1) + "]" * (limit + 1),
                 '{"a":' * limit + "{}" + "}" * limit,
                 "[" * 900 + "]" * 900,  # within CPython's recursion limit: the walk catches it
                 "[" * 100_000, '{"a":' * 100_000):  # beyond it: json's RecursionError
        with pytest.raises(wire.WireError) as caught:
            wire.decode_json(text)
        assert caught.value.code == "nesting-too-deep"
        assert str(limit) in str(caught.value)
    assert wire.decode_json("[[1]]", max_depth=2) == [[1]]
    with pytest.raises(wire.WireError, match="deeper than 1 level"):
        wire.decode_json("[[1]]", max_depth=1)


def test_client_messages_are_decoded_strictly():
    bad = {
        '{"type":"update-send","update":{"payload":NaN}}': "bad-number",
        '{"type":"update-send","update":{"payload":1,"notify":{"\\ud800":"x"}}}': "bad-text",
        '{"type":"join","epoch":1,"x":"\ud800"}': "bad-text",
        "[" * 100_000: "nesting-too-deep",
    }
    for text, code in bad.items():
        with pytest.raises(wire.WireError) as caught:
            wire.decode_client_message(text)
        assert caught.value.code == code


def test_send_to_chat_text_and_file_name_are_checked_at_the_wire():
    good = wire.encode_send_to_chat(3, "hi 😀", "ü.txt", "aGk=")
    assert wire.decode_client_message(good) == wire.SendToChat(3, "hi 😀", "ü.txt", "aGk=")
    for text, name in (("\ud800", "f.txt"), ("hi", "\udfff.txt")):
        escaped = json.dumps({"type": "send-to-chat", "id": 1, "text": text,
                              "file": {"name": name, "base64": "aGk="}})
        assert "\\ud" in escaped  # as a browser's JSON.stringify writes them
        with pytest.raises(wire.WireError) as caught:
            wire.decode_client_message(escaped)
        assert caught.value.code == "bad-text"


def test_unknown_type_is_quoted_short():
    with pytest.raises(wire.WireError) as caught:
        wire.decode_client_message(json.dumps({"type": "x" * 100_000}))
    assert caught.value.code == "unknown-type" and len(str(caught.value)) < 120


@pytest.mark.parametrize("message", [
    wire.Join(3), wire.Leave(), wire.UpdateSend({"payload": [1, "é"], "info": "i"}),
    wire.UpdateSend({"payload": 1}, "x" * 64), wire.UpdateSend({"payload": 1}, "a-b_C9"),
    wire.UpdateListen(2, 40), wire.SendToChat(5, "t", None, None),
    wire.SendToChat(6, None, "f.txt", "aGk="), wire.ChatMessagesRequest(9),
])
def test_client_messages_encode_and_decode_back(message):
    assert wire.decode_client_message(wire.encode_client_message(message)) == message


@pytest.mark.parametrize("update_id", ["", "x" * 65, "a b", "a.b", "é", "a\n", 5, None, []])
def test_an_update_id_is_1_to_64_plain_characters_or_absent(update_id):
    text = json.dumps({"type": "update-send", "update": {"payload": 1}, "id": update_id})
    if update_id is None:  # null is as absent
        assert wire.decode_client_message(text) == wire.UpdateSend({"payload": 1})
        return
    with pytest.raises(wire.WireError, match="update-send: 'id' must be 1 to 64") as caught:
        wire.decode_client_message(text)
    assert caught.value.code == "malformed"


def test_encoders_of_app_data_refuse_what_is_not_strict_json_text():
    for update in ({"payload": float("nan")}, {"payload": "\ud800"}, {"payload": 1,
                                                                       "info": "\udfff"}):
        with pytest.raises(ValueError):
            wire.encode_update_send(update)
    with pytest.raises(ValueError):
        wire.encode_send_to_chat(1, "cut \ud83d")
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValueError, match="deep"):
        wire.encode_update_send({"payload": deep})


GOOD_LIMITS = ('{"max_payload_bytes":1,"send_items_per_s":1,"send_items_burst":1,'
               '"send_bytes_per_s":1,"send_bytes_burst":1}')


def hello_with_limits(**changes: object) -> str:
    limits = json.loads(GOOD_LIMITS)
    limits.update(changes)
    return json.dumps({"type": "hello", "self_addr": "a", "self_name": "n", "limits": limits})


BAD_HOST_MESSAGES = {
    "hello": ['{"type":"hello","self_addr":"a"}', '{"type":"hello","self_name":"n"}',
              '{"type":"hello","self_addr":1,"self_name":"n","limits":' + GOOD_LIMITS + "}",
              '{"type":"hello","self_addr":"a","self_name":"n"}',
              '{"type":"hello","self_addr":"a","self_name":"n","limits":[]}',
              hello_with_limits(max_payload_bytes="1"), hello_with_limits(max_payload_bytes=0),
              hello_with_limits(send_items_burst=1.5), hello_with_limits(send_bytes_burst=True),
              hello_with_limits(send_items_per_s=0), hello_with_limits(send_bytes_per_s="1"),
              hello_with_limits(send_bytes_per_s=None), hello_with_limits(send_items_per_s=-1),
              '{"type":"hello","self_addr":"a","self_name":"n","limits":{"x":1}}'],
    "joined": ['{"type":"joined"}', '{"type":"joined","epoch":"1"}',
               '{"type":"joined","epoch":true}', '{"type":"joined","epoch":-1}',
               '{"type":"joined","epoch":1.5}', '{"type":"joined","epoch":9007199254740992}',
               '{"type":"joined","epoch":1,"time_ms":"5"}',
               '{"type":"joined","epoch":1,"time_ms":NaN}',
               '{"type":"joined","epoch":1,"time_ms":Infinity}'],
    "update": ['{"type":"update","listen":1}', '{"type":"update","listen":1,"update":[]}',
               '{"type":"update","update":{"serial":1,"max_serial":1}}',
               '{"type":"update","listen":"1","update":{"serial":1,"max_serial":1}}',
               '{"type":"update","listen":1,"update":{"serial":1}}',
               '{"type":"update","listen":1,"update":{"serial":"1","max_serial":1}}',
               '{"type":"update","listen":1,"update":{"serial":1,"max_serial":-2}}'],
    "update-backlog-done": ['{"type":"update-backlog-done"}',
                            '{"type":"update-backlog-done","listen":null}'],
    "update-stored": ['{"type":"update-stored","serial":1}',
                      '{"type":"update-stored","id":"a"}',
                      '{"type":"update-stored","id":7,"serial":1}',
                      '{"type":"update-stored","id":"a","serial":-1}'],
    "reply": ['{"type":"reply","ok":true}', '{"type":"reply","id":1}',
              '{"type":"reply","id":1,"ok":"yes"}', '{"type":"reply","id":1,"ok":false}',
              '{"type":"reply","id":1,"ok":false,"code":"c"}',
              '{"type":"reply","id":1,"ok":false,"code":1,"message":"m"}'],
    "chat-messages": ['{"type":"chat-messages","id":1,"messages":{},"more":false}',
                      '{"type":"chat-messages","id":1,"messages":[1],"more":false}',
                      '{"type":"chat-messages","id":1,"messages":[]}',
                      '{"type":"chat-messages","id":1,"messages":[],"more":0}',
                      '{"type":"chat-messages","messages":[],"more":false}'],
    "error": ['{"type":"error","code":5,"message":"m"}', '{"type":"error","code":"c"}',
              '{"type":"error","code":"c","message":NaN}', '{"type":"error","code":"\\ud800"}',
              '{"type":"error","code":"c","message":"\\udfff"}'],
    "no type": ['{"type": 5}', '{"no": "type"}', "[1]", "not json", '"hello"'],
}


@pytest.mark.parametrize("text", [text for texts in BAD_HOST_MESSAGES.values()
                                  for text in texts])
def test_malformed_host_messages_are_refused(text):
    with pytest.raises(wire.WireError) as caught:
        wire.decode_host_message(text)
    assert caught.value.code in ("malformed", "bad-text", "bad-number")


def test_every_host_message_type_has_malformed_cases():
    known = {json.loads(wire.encode_host_message(m))["type"] for m in HOST_MESSAGES
             if not isinstance(m, wire.UnknownHostMessage)}
    assert known <= set(BAD_HOST_MESSAGES)


def test_host_messages_of_unknown_types_and_fields_pass_for_newer_hosts():
    assert wire.decode_host_message('{"type":"news","x":[1]}') == wire.UnknownHostMessage(
        "news", {"type": "news", "x": [1]})
    hello = json.loads(hello_with_limits(mode="fast"))
    hello["x"] = 1
    decoded = wire.decode_host_message(json.dumps(hello))
    assert decoded == wire.Hello("a", "n", wire.HelloLimits(1, 1.0, 1, 1.0, 1))
    # Unknown types are still strict JSON: nothing a browser would read otherwise passes.
    with pytest.raises(wire.WireError):
        wire.decode_host_message('{"type":"news","x":NaN}')


def test_text_helpers():
    assert wire.is_text("é😀") and not wire.is_text("a\ud800")
    assert wire.as_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert wire.as_text("ok") == "ok"


def test_received_counts_frames_as_the_host_sends_them():
    assert [wire.frame_bytes(n) for n in (0, 125, 126, 65535, 65536, 128_000)] == [
        2, 127, 130, 65539, 65546, 128_010]
    assert wire.decode_client_message('{"type":"received","bytes":5}') == wire.Received(5)
    for bad in ('{"type":"received"}', '{"type":"received","bytes":-1}',
                '{"type":"received","bytes":1.5}', '{"type":"received","bytes":true}'):
        with pytest.raises(wire.WireError):
            wire.decode_client_message(bad)


@pytest.mark.parametrize("text", [
    '{"type":"received","bytes":0}', '{"type":"received","bytes":9007199254740991}',
    '{"type":"received","bytes":9007199254740992}', '{"type":"received","bytes":007}',
    '{"type":"received","bytes":12,"x":1}', '{"type":"received","bytes":1e3}',
    '{"type":"received","bytes":+3}', '{"type":"received","bytes":٣}',
    '{"type":"received","bytes":}', '{"type":"received","bytes":12}}',
    '{"type":"received","bytes":12 }', '{"type":"received","bytes": 12}',
    '{"type":"received","bytes":99999999999999999999}',
])
def test_received_reports_in_their_usual_form_decode_as_the_json_decoder_says(text):
    # The compact form the bridge and the Python peer send is read without the JSON
    # decoder; every other spelling, valid or not, must come out the same as through it.
    try:
        expected: object = json.loads(text)
    except ValueError:
        expected = None
    valid = (type(expected) is dict and type(expected.get("bytes")) is int
             and 0 <= expected["bytes"] <= 2**53 - 1)
    if valid:
        assert wire.decode_client_message(text) == wire.Received(expected["bytes"])
    else:
        with pytest.raises(wire.WireError):
            wire.decode_client_message(text)
