"""Property tests of the wire's decoders: whatever text arrives, only `WireError` is raised,
and whatever is accepted re-encodes as UTF-8 JSON that the strict decoder accepts again.

Cases: arbitrary text, JSON-ish values (NaN, infinities, huge integers, lone surrogates,
deep nesting) written as browsers and Python write them, and valid messages mutated. The
profile in conftest.py fixes the cases (`HYPOTHESIS_PROFILE=explore` draws new ones); the
`max_examples` below add up to 21,000 cases a run, each decoded as from a client and as from
the host, but for the typed host messages, which are encoded and decoded back.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from webxdc_rt.core import wire
from webxdc_rt.core.limits import UpdateLimits
from webxdc_rt.core.updates import UpdateError, delivered_json, validate_update

CODES = {"malformed", "too-large", "unknown-type", "bad-text", "bad-number",
         "nesting-too-deep"}

ALPHABET = list('{}[]",:0123456789.eE+-tfnNaIyul\\/ \n\x00\x1féü😀') + [
    "\ud800", "\udbff", "\udc00", "\udfff"]  # lone surrogates, as in a cut emoji
"""Characters that make JSON and break it; `st.characters()` adds the rest of Unicode."""


def strings(max_size: int) -> st.SearchStrategy[str]:
    """Text of JSON's own characters with some lone surrogates, or of any characters.
    (`st.text` over a union of alphabets would leave the surrogates out.)"""
    return (st.text(st.sampled_from(ALPHABET), max_size=max_size)
            | st.text(st.characters(), max_size=max_size))


texts = strings(6)
numbers = st.integers() | st.floats() | st.sampled_from(
    [10**400, -(10**400), 2**1024 - 2**970, 2**1024 - 2**970 - 1, 1e308, -0.0, 2**53 + 1])
leaves = st.none() | st.booleans() | numbers | texts
values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6)
counters = st.integers(0, wire.MAX_EPOCH) | numbers

FIELDS = {
    "join": {"epoch": counters}, "leave": {},
    "update-send": {"update": st.fixed_dictionaries({"payload": values}, optional={
        "info": texts, "notify": st.dictionaries(texts, texts, max_size=2)}) | values,
        "id": st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True) | texts | values},
    "update-listen": {"listen": counters, "serial": counters},
    "send-to-chat": {"id": counters, "text": texts, "file": st.fixed_dictionaries(
        {"name": texts, "base64": st.just("aGk=") | texts})},
    "chat-messages": {"id": counters, "before": counters,  # the request, and the answer:
                      "messages": st.lists(st.dictionaries(texts, values, max_size=2)) | values,
                      "more": st.booleans() | values},
    "hello": {"self_addr": texts, "self_name": texts,
              "limits": st.fixed_dictionaries({}, optional={
                  name: counters | values for name in (
                      "max_payload_bytes", "send_items_per_s", "send_items_burst",
                      "send_bytes_per_s", "send_bytes_burst")}) | values},
    "joined": {"epoch": counters, "time_ms": st.floats() | values},
    "update": {"listen": counters, "update": st.fixed_dictionaries(
        {"payload": values, "serial": counters, "max_serial": counters})},
    "update-backlog-done": {"listen": counters},
    "update-stored": {"id": texts, "serial": counters},
    "reply": {"id": counters, "ok": st.booleans(), "code": texts, "message": texts},
    "error": {"code": texts, "message": texts}, "a-type-nobody-knows": {},
}
"""The fields of each type of control message, with values of every kind."""


@st.composite
def message_values(draw: st.DrawFn) -> dict[str, Any]:
    """An object shaped like a control message: its type's fields (any of which may be
    left out), arbitrary values in them, and maybe an extra field."""
    kind = draw(st.sampled_from(sorted(FIELDS)))
    message: dict[str, Any] = {"type": kind}
    for name, strategy in FIELDS[kind].items():
        if draw(st.integers(0, 9)):  # mostly present
            message[name] = draw(strategy)
    if not draw(st.integers(0, 4)):
        message[draw(texts)] = draw(values)
    return message


def json_text(value: Any, ensure_ascii: bool) -> str:
    """`value` as JSON the lax way: NaN and Infinity as words, surrogates escaped (like
    `JSON.stringify`) or raw (only Python can pass those)."""
    return json.dumps(value, ensure_ascii=ensure_ascii)


def check_client(text: str) -> None:
    """`decode_client_message` raises only `WireError`; what it accepts round-trips."""
    try:
        message = wire.decode_client_message(text)
    except wire.WireError as exc:
        assert exc.code in CODES and str(exc)
        event(f"client: {exc.code}")  # shown by --hypothesis-show-statistics
        return
    event("client: accepted")
    again = wire.encode_client_message(message)
    again.encode("utf-8")
    assert wire.decode_client_message(again) == message
    if isinstance(message, wire.UpdateSend):  # and what is stored is sent as valid text
        try:
            update = validate_update(message.update, UpdateLimits())
        except UpdateError:
            return
        frame = wire.encode_update(1, delivered_json(update, 1, 1))
        frame.encode("utf-8")
        delivered = wire.decode_host_message(frame)
        assert isinstance(delivered, wire.Update) and delivered.serial == 1


def check_host(text: str) -> None:
    """`decode_host_message` raises only `WireError`; what it accepts round-trips."""
    try:
        message = wire.decode_host_message(text)
    except wire.WireError as exc:
        assert exc.code in CODES and str(exc)
        event(f"host: {exc.code}")
        return
    event(f"host: accepted {type(message).__name__}")
    again = wire.encode_host_message(message)
    again.encode("utf-8")
    assert wire.decode_host_message(again) == message


def check_both(text: str) -> None:
    check_client(text)
    check_host(text)


_BYTE_TO_CHAR = dict(enumerate(([c for c in ALPHABET if wire.is_text(c)] * 6)[:232] + [
    "\ud800", "\x80", "\xa0", "\xad", "\u2028", "\u2029", "\ufeff", "\ufffd", "\uffff",
    "\U0010ffff", "\u4e2d", "\u0627", "\U0001f469\u200d\U0001f4bb", "\\u", "\\ud800",
    "\\ud83d\\ude00", "\\udfff", "NaN", "Infinity", "1e999", '{"type":', '"update-send"',
    '"payload"', "true"]))
"""What each byte of a drawn byte string stands for: arbitrary text in one cheap draw."""


@settings(max_examples=10500)
@given(st.binary(max_size=80).map(lambda raw: raw.decode("latin-1").translate(_BYTE_TO_CHAR)))
def test_arbitrary_text(text: str) -> None:
    check_both(text)


@settings(max_examples=3000)
@given(message_values(), st.booleans())
def test_message_shaped_values(value: dict[str, Any], ensure_ascii: bool) -> None:
    check_both(json_text(value, ensure_ascii))


@settings(max_examples=1500)
@given(values, st.booleans())
def test_any_json_ish_value(value: Any, ensure_ascii: bool) -> None:
    check_both(json_text(value, ensure_ascii))


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(['[', '{"k":', '{"\\ud800":', '[1,']), min_size=1,
                max_size=4),
       st.integers(1, 3 * wire.MAX_JSON_DEPTH) | st.integers(900, 1100) | st.just(50_000),
       leaves,
       st.booleans(), st.sampled_from(["update-send", "leave", "update"]))
def test_deep_nesting(openers: list[str], depth: int, leaf: Any, closed: bool,
                      kind: str) -> None:
    # `depth` levels, the openers taken in turn; built by repetition (50,000 levels is big).
    rounds, rest = divmod(depth, len(openers))
    closer = {"[": "]", "{": "}"}
    opened = "".join(openers) * rounds + "".join(openers[:rest])
    closers = ("".join(closer[opener[0]] for opener in reversed(openers[:rest]))
               + "".join(closer[opener[0]] for opener in reversed(openers)) * rounds)
    nested = opened + json.dumps(leaf) + (closers if closed else "")
    for text in (nested, '{"type":"' + kind + '","update":{"payload":' + nested + "}}"):
        check_both(text)


TOKENS = ["NaN", "Infinity", "-Infinity", "1e999", "-1E400", "9" * 400, "\\ud800", "\\udfff",
          "\\ud83d\\ude00", "\\ud83d", "\ud800", "[" * 200, "]", "{", "}", ",", ":", '"',
          "\\", "\\u", "null", '"type"', "é", "😀", "\x00", "1e308", "0.5"]


def valid_messages() -> st.SearchStrategy[str]:
    """Encoded messages a client or the host really sends, with payloads of every shape."""
    counters = st.integers(0, wire.MAX_EPOCH)
    safe_text = st.text(max_size=6)
    safe_values = st.recursive(
        st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=False,
                                                                        allow_infinity=False)
        | safe_text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(safe_text, inner,
                                                                    max_size=3),
        max_leaves=3)
    return st.one_of(
        counters.map(wire.encode_join), st.just(wire.encode_leave()),
        st.builds(lambda p, i, n: wire.encode_update_send({"payload": p, "info": i}, n),
                  safe_values, safe_text,
                  st.none() | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)),
        st.builds(wire.encode_update_listen, counters, counters),
        st.builds(wire.encode_send_to_chat, counters, safe_text, safe_text, st.just("aGk=")),
        counters.map(wire.encode_chat_messages_request),
        st.builds(lambda p, s: wire.encode_update(1, json.dumps(
            {"payload": p, "serial": s, "max_serial": s})), safe_values, counters),
        host_messages().map(wire.encode_host_message),
    )


def host_messages() -> st.SearchStrategy[wire.HostMessage]:
    """Every kind of message the host sends, typed, with values of every shape."""
    counters = st.integers(0, wire.MAX_EPOCH)
    positive = st.integers(1, wire.MAX_EPOCH)
    rates = st.floats(min_value=1e-300, allow_nan=False, allow_infinity=False) | positive
    safe_text = st.text(max_size=6)
    safe_values = st.recursive(
        st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=False,
                                                                        allow_infinity=False)
        | safe_text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(safe_text, inner,
                                                                    max_size=3),
        max_leaves=3)
    objects = st.dictionaries(safe_text, safe_values, max_size=3)
    return st.one_of(
        st.builds(wire.Hello, safe_text, safe_text,
                  st.builds(wire.HelloLimits, positive, rates, positive, rates, positive)),
        st.builds(wire.Joined, counters),
        st.builds(lambda listen, fields, serial, top: wire.Update(
            listen, {**fields, "serial": serial, "max_serial": top}),
            counters, objects, counters, counters),
        st.builds(wire.UpdateBacklogDone, counters),
        st.builds(wire.UpdateStored, safe_text, counters),
        st.builds(wire.Reply, counters, st.just(True)),
        st.builds(wire.Reply, counters, st.just(False), safe_text, safe_text),
        st.builds(wire.ChatMessages, counters, st.lists(objects, max_size=3), st.booleans()),
        st.builds(wire.ErrorMessage, safe_text, safe_text),
        st.builds(lambda kind, fields: wire.UnknownHostMessage(kind, {**fields, "type": kind}),
                  safe_text.filter(lambda kind: kind not in HOST_TYPES), objects),
    )


HOST_TYPES = {"hello", "joined", "update", "update-backlog-done", "update-stored", "reply",
              "chat-messages", "error"}


@settings(max_examples=1000)
@given(host_messages())
def test_every_host_message_round_trips(message: wire.HostMessage) -> None:
    assert wire.decode_host_message(wire.encode_host_message(message)) == message


mutations = st.lists(st.tuples(
    st.sampled_from(["insert", "delete", "replace", "repeat", "cut"]),
    st.integers(0, 2**16),  # where, taken modulo the length of the text
    st.sampled_from(TOKENS) | texts,  # what is inserted or put in place
    st.integers(1, 300),  # how much is deleted or how often repeated
), min_size=1, max_size=3)


@settings(max_examples=4000)
@given(valid_messages(), mutations)
def test_mutated_valid_messages(text: str, changes: list[tuple[str, int, str, int]]) -> None:
    for how, where, token, amount in changes:
        at = where % (len(text) + 1)
        if how == "insert":
            text = text[:at] + token + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + amount:]
        elif how == "replace":
            text = text[:at] + token[:1] + text[at + 1:]
        elif how == "repeat":
            text = text[:at] + text[at:at + 6] * amount + text[at:]
        else:
            text = text[:at]
    check_both(text)
