"""Unit tests of one connection's session, with no sockets: frames and the clock in,
effects out, as the I/O shell would see them. The lifecycle table is checked pair by pair."""

from __future__ import annotations

import base64
import json

import pytest

from webxdc_rt.core import wire
from webxdc_rt.core.budget import PageBudget
from webxdc_rt.core.errors import Refusal, SessionStateError
from webxdc_rt.core.fanout import Published
from webxdc_rt.core.limits import ChatLimits, RealtimeLimits, UpdateLimits
from webxdc_rt.core.realtime import RealtimeHub
from webxdc_rt.core.session import (
    IGNORED,
    INTERNAL_ERROR,
    POLICY_VIOLATION,
    REFUSED,
    TRANSITIONS,
    AwaitCommit,
    Close,
    Discard,
    Event,
    ListMessages,
    Pause,
    Publish,
    Replay,
    Send,
    Session,
    SessionRules,
    State,
    StoreMessage,
    StoreUpdate,
    Subscribe,
    Unsubscribe,
)

TOPIC = "rt/chat/app"
JOIN = '{"type":"join","epoch":1}'
STAMPED_JOIN = '{"type":"join","epoch":1,"stamped":true}'
HELLO_LIMITS = wire.HelloLimits(max_payload_bytes=128_000, send_items_per_s=2000.0,
                                send_items_burst=2000, send_bytes_per_s=1.0, send_bytes_burst=2,
                                max_item_age_ms=2000.0)
LEAVE = '{"type":"leave"}'


def new_session(hub: RealtimeHub | None = None, budget: PageBudget | None = None,
                max_errors: int = 32, **limits) -> Session:
    hub = hub or RealtimeHub(limits.pop("realtime", None) or RealtimeLimits(), node_id="here")
    updates = limits.pop("updates", UpdateLimits())
    chat = limits.pop("chat", ChatLimits())
    budget = budget or PageBudget.fresh(hub.limits, updates, chat,
                                        limits.pop("control_per_s", 100.0),
                                        limits.pop("control_burst", 200), now=0.0)
    budget.chat_stored_bytes = budget.chat_stored_bytes or 0
    conn = hub.open(TOPIC, "sink", 0.0, budget.realtime)
    return Session(hub, conn, budget, SessionRules(updates, chat, max_errors))


def sent(effects) -> list[dict]:
    return [json.loads(effect.text) for effect in effects if isinstance(effect, Send)]


def in_state(state: State) -> Session:
    """A session brought to `state` by the events that lead there."""
    session = new_session()
    if state in (State.JOINED,):
        session.receive_text(JOIN, 0.0)
    elif state is State.LEAVING:
        session.close(1001, "going away")
    elif state is State.CUT_OFF:
        session.cut_off()
    elif state is State.CLOSED:
        session.link_lost()
    assert session.state is state
    return session


FEED = {
    Event.JOIN: lambda s: s.receive_text(JOIN, 0.0),
    Event.LEAVE: lambda s: s.receive_text(LEAVE, 0.0),
    Event.ITEM: lambda s: s.receive_item(b"x", 0.0),
    Event.CONTROL: lambda s: s.receive_text('{"type":"chat-messages","id":1}', 0.0),
    Event.CLOSE: lambda s: s.close(1001, "going away"),
    Event.CUT_OFF: lambda s: s.cut_off(),
    Event.LINK_LOST: lambda s: s.link_lost(),
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(Event))
def test_every_state_and_event_follows_the_table(state, event):
    session = in_state(state)
    if (state, event) in IGNORED:
        assert FEED[event](session) == ()
        assert session.state is state
    elif (state, event) in REFUSED:
        effects = FEED[event](session)
        assert sent(effects)[0]["code"] == REFUSED[(state, event)].code
        assert session.state is state
    elif event in TRANSITIONS[state]:
        FEED[event](session)
        assert session.state is TRANSITIONS[state][event]
    elif event is Event.LINK_LOST:  # a lost link is final, whatever came before
        assert FEED[event](session) == ()
        assert session.state is State.CLOSED
    else:  # a join or leave is a control message until it is decoded
        named = Event.CONTROL if event in (Event.JOIN, Event.LEAVE) else event
        with pytest.raises(SessionStateError, match=f"{named.value!r}.*{state.value!r}"):
            FEED[event](session)


def test_the_table_leaves_no_state_and_event_undecided():
    for state in State:
        for event in Event:
            decided = ((state, event) in IGNORED, (state, event) in REFUSED,
                       event in TRANSITIONS[state])
            assert sum(decided) <= 1, (state, event)
    assert TRANSITIONS[State.CLOSED] == {}


def test_join_is_acknowledged_before_anything_of_the_channel():
    first, second = new_session(), None
    effects = first.receive_text(JOIN, 0.0)
    assert effects == (Subscribe(TOPIC), Send('{"type":"joined","epoch":1,"time_ms":0.0}'))
    second = new_session(hub=first.hub)
    # The channel is already listened to. The answer reads the host's clock (`now`, in ms).
    assert second.receive_text('{"type":"join","epoch":7}', 2.5) == (
        Send('{"type":"joined","epoch":7,"time_ms":2500.0}'),)
    # Leaving forgets what waits for the connection, then stops listening when it was the
    # last member here.
    assert first.receive_text(LEAVE, 0.0) == (Discard(),)
    assert second.receive_text(LEAVE, 0.0) == (Discard(), Unsubscribe(TOPIC))


def test_items_are_published_as_they_arrived_and_never_echoed():
    alice = new_session()
    bob = new_session(hub=alice.hub)
    alice.receive_text(STAMPED_JOIN, 0.0)
    bob.receive_text(JOIN, 0.0)
    stamped = wire.encode_stamp(5.0) + b"\x00raw"
    (publish,) = alice.receive_item(stamped, 0.0)
    assert publish == Publish(TOPIC, Published("here", alice.conn.id, stamped[:8], b"\x00raw"))
    assert alice.hub.receivers(TOPIC, publish.item) == (bob.conn,)


def test_the_items_of_a_connection_that_does_not_stamp_them_are_stamped_by_the_host_clock():
    alice = new_session()
    # The host's clock read 1000000 ms when the connection opened at 10 s of `now`.
    alice.greet("addr", "alice", HELLO_LIMITS, host_ms=1_000_000.0, now=10.0)
    alice.receive_text(JOIN, 10.0)
    (publish,) = alice.receive_item(b"raw", 12.5)
    assert publish.item.stamp == wire.encode_stamp(1_002_500.0)
    assert publish.item.payload == b"raw"
    assert not alice.conn.stamped


def test_a_payload_is_published_without_a_copy_whether_or_not_its_sender_stamps_it():
    """The stamp travels beside the payload: a 128,000-byte item is never copied to put the
    host's stamp in front of it, nor to take the sender's own off."""
    bare, stamped = new_session(), new_session()
    bare.receive_text(JOIN, 0.0)
    stamped.receive_text(STAMPED_JOIN, 0.0)
    payload = bytes(128_000)
    assert bare.receive_item(payload, 0.0)[0].item.payload is payload
    data = wire.encode_stamp(5.0) + payload
    item = stamped.receive_item(data, 0.0)[0].item
    assert item.stamp == wire.encode_stamp(5.0)
    assert isinstance(item.payload, memoryview) and item.payload.obj is data
    assert item.payload == payload


def test_a_stamped_join_makes_the_connection_stamped_and_its_items_need_a_whole_stamp():
    session = new_session()
    session.receive_text(STAMPED_JOIN, 0.0)
    assert session.conn.stamped
    assert sent(session.receive_item(bytes(7), 0.0))[0]["code"] == "item-too-short"
    stamped_limit = bytes(wire.ITEM_HEADER_BYTES + 128_000)  # the limit is on the payload
    item = session.receive_item(stamped_limit, 0.0)[0].item
    assert item.stamp + item.payload == stamped_limit
    too_large = bytes(wire.ITEM_HEADER_BYTES + 128_001)
    assert sent(session.receive_item(too_large, 0.0))[0]["code"] == "payload-too-large"


@pytest.mark.parametrize("frame, code", [
    ("{", "malformed"),
    ('{"type":"fly"}', "unknown-type"),
    ('{"type":"join","epoch":-1}', "malformed"),
    ('{"type":"update-send","update":{"payload":"\\ud800"}}', "bad-text"),
    ('{"type":"update-send","update":{"payload":NaN}}', "bad-number"),
    ("[" * 1000, "nesting-too-deep"),
    ('{"type":"update-send","update":{"info":"no payload"}}', "bad-update"),
])
def test_bad_control_messages_are_refused_with_their_code(frame, code):
    session = new_session()
    assert sent(session.receive_text(frame, 0.0))[0]["code"] == code
    assert session.state is State.OPEN


def test_an_item_too_large_is_refused():
    session = new_session()
    session.receive_text(JOIN, 0.0)
    assert sent(session.receive_item(bytes(128_001), 0.0))[0]["code"] == "payload-too-large"
    assert session.receive_item(bytes(128_000), 0.0)[0].item.payload == bytes(128_000)


def test_too_many_refusals_close_the_connection():
    session = new_session(max_errors=3)
    for _ in range(2):
        assert len(session.receive_text(LEAVE, 0.0)) == 1
    effects = session.receive_text(LEAVE, 0.0)
    assert sent(effects)[0]["code"] == "not-joined"
    assert effects[-1] == Close(POLICY_VIOLATION, "too many refused requests")
    assert session.state is State.LEAVING
    assert session.receive_text(JOIN, 0.0) == ()  # nothing more is read


def test_a_page_over_its_send_budget_is_paced_and_told_once_per_episode():
    session = new_session(realtime=RealtimeLimits(send_items_per_s=10, send_items_burst=2))
    session.receive_text(JOIN, 0.0)
    assert [type(e) for e in session.receive_item(b"1", 0.0)] == [Publish]
    assert [type(e) for e in session.receive_item(b"2", 0.0)] == [Publish]
    effects = session.receive_item(b"3", 0.0)
    assert [type(e) for e in effects] == [Publish, Send, Pause]
    assert sent(effects)[0]["code"] == "rate-limited"
    assert effects[2].seconds == pytest.approx(0.1)
    assert [type(e) for e in session.receive_item(b"4", 0.0)] == [Publish, Pause]
    assert [type(e) for e in session.receive_item(b"5", 10.0)] == [Publish]  # episode over


def test_the_read_paths_item_or_effects_decides_as_receive_item_does():
    """The same sequence (before the join, within and over the budget, refused sizes,
    after a leave, past the refusal cap) through `receive_item` and through
    `item_or_effects`, whose lone item stands for `(Publish(topic, item),)`."""
    limits = RealtimeLimits(send_items_per_s=10, send_items_burst=3, max_payload_bytes=64)
    general, quick = (new_session(realtime=limits, max_errors=6) for _ in range(2))

    def through_quick(payload: bytes, now: float):
        taken = quick.item_or_effects(payload, now)
        if isinstance(taken, Published):
            return (Publish(quick.conn.topic, taken),)
        return taken

    steps = [("item", b"early", 0.0), ("text", JOIN, 0.0), ("item", b"1", 0.0),
             ("item", bytes(64), 0.0), ("item", b"3", 0.0), ("item", b"4", 0.0),
             ("item", b"5", 0.01), ("item", bytes(65), 0.02), ("item", b"6", 5.0),
             ("item", b"7", 5.0), ("text", LEAVE, 5.0), ("item", b"8", 5.0),
             ("text", STAMPED_JOIN, 5.0), ("item", bytes(7), 5.0),
             ("item", wire.encode_stamp(1.0) + b"9", 5.0), ("item", bytes(7), 5.0),
             ("item", bytes(7), 5.0), ("item", b"after the cap", 5.0)]
    for kind, data, now in steps:
        if kind == "text":
            assert general.receive_text(data, now) == quick.receive_text(data, now)
        else:
            expected = general.receive_item(data, now)
            got = through_quick(data, now)
            # Items of the two sessions differ in their sender only (another connection).
            assert [e._replace(item=e.item._replace(sender=0)) if isinstance(e, Publish)
                    else e for e in got] == [
                e._replace(item=e.item._replace(sender=0)) if isinstance(e, Publish) else e
                for e in expected], (data, now)
        assert general.state is quick.state
    assert general.rules.counts == quick.rules.counts
    assert general.state is State.LEAVING


def test_control_messages_are_paced_per_page_after_they_took_effect():
    first = new_session(control_per_s=1.0, control_burst=2)
    second = new_session(hub=first.hub, budget=first.budget)
    first.receive_text(LEAVE, 0.0)
    first.receive_text(LEAVE, 0.0)
    effects = second.receive_text(JOIN, 0.0)  # the page's burst went on the first socket
    assert [type(e) for e in effects] == [Subscribe, Send, Send, Pause]
    assert [m["type"] for m in sent(effects)] == ["joined", "error"]


def test_updates_are_validated_then_stored_and_their_rate_is_per_page():
    limits = UpdateLimits(interval_ms=60_000, burst=2)
    first = new_session(updates=limits)
    second = new_session(hub=first.hub, budget=first.budget, updates=limits)
    update = '{"type":"update-send","update":{"payload":{"n":1},"info":"hi"}}'
    (store,) = first.receive_text(update, 0.0)
    assert isinstance(store, StoreUpdate) and store.update.payload_json == '{"n":1}'
    assert isinstance(second.receive_text(update, 0.0)[0], StoreUpdate)
    assert sent(second.receive_text(update, 0.0))[0]["code"] == "update-rate"


UPDATE = '{"type":"update-send","update":{"payload":1}}'


def test_updates_go_to_the_store_in_a_window_and_the_full_window_stops_the_reading():
    session = new_session(updates=UpdateLimits(max_in_flight_per_socket=3, interval_ms=1))
    kinds = [[type(e) for e in session.receive_text(UPDATE, 0.0)] for _ in range(3)]
    assert kinds == [[StoreUpdate], [StoreUpdate], [StoreUpdate, AwaitCommit]]
    assert session.updates_in_flight == 3
    (oldest,) = [e for e in session.receive_text(UPDATE, 0.0) if isinstance(e, StoreUpdate)]
    assert session.update_stored(oldest, 1) == ()  # the sender hears of it as a listener
    assert session.updates_in_flight == 3  # one stored, the fourth in flight
    assert session.storage_failed(oldest, STORE_DOWN) != ()
    assert session.updates_in_flight == 2
    assert [type(e) for e in session.receive_text(UPDATE, 0.0)] == [StoreUpdate, AwaitCommit]


def test_a_window_of_one_waits_for_each_commit():
    session = new_session(updates=UpdateLimits(max_in_flight_per_socket=1, interval_ms=1))
    for _ in range(3):
        store, wait = session.receive_text(UPDATE, 0.0)
        assert isinstance(store, StoreUpdate) and wait == AwaitCommit(1)
        session.update_stored(store, 1)
    assert session.updates_in_flight == 0


def test_a_listener_started_with_updates_in_flight_waits_for_all_of_them():
    session = new_session(updates=UpdateLimits(max_in_flight_per_socket=8, interval_ms=1))
    listen = '{"type":"update-listen","listen":4,"serial":0}'
    assert session.receive_text(listen, 0.0) == (Replay(4, 0),)
    session.receive_text(UPDATE, 0.0)
    session.receive_text(UPDATE, 0.0)
    assert session.receive_text(listen, 0.0) == (AwaitCommit(1), Replay(4, 0))


def test_an_update_the_store_failed_to_keep_is_told_to_its_sender_and_frees_its_place():
    session = new_session(updates=UpdateLimits(max_in_flight_per_socket=2))
    (store,) = session.receive_text(UPDATE, 0.0)
    answer = session.storage_failed(store, STORE_DOWN)
    assert sent(answer) == [{"type": "error", "code": "storage-failed",
                             "message": "the store is down"}]
    assert session.updates_in_flight == 0 and session.state is State.OPEN
    assert session.rules.counts.refused["storage-failed"] == 1


def test_a_refused_update_takes_no_place_in_the_window():
    session = new_session(updates=UpdateLimits(max_in_flight_per_socket=1, burst=1,
                                               interval_ms=60_000))
    session.receive_text(UPDATE, 0.0)
    assert sent(session.receive_text(UPDATE, 0.0))[0]["code"] == "update-rate"
    assert session.updates_in_flight == 1


def test_update_listening_is_replayed_and_paced_per_page():
    session = new_session(updates=UpdateLimits(listens_per_s=1.0, listens_burst=1))
    listen = '{"type":"update-listen","listen":4,"serial":17}'
    assert session.receive_text(listen, 0.0) == (Replay(4, 17),)
    effects = session.receive_text(listen, 0.0)
    assert [type(e) for e in effects] == [Pause, Replay]


def test_send_to_chat_is_answered_once_and_never_counts_as_a_refusal():
    session = new_session(max_errors=2, chat=ChatLimits(max_stored_bytes=10,
                                                        messages_burst=2))
    data = base64.b64encode(b"12345").decode()
    post = ('{"type":"send-to-chat","id":%d,"text":"hi","file":{"name":"f","base64":"%s"}}')
    (store,) = session.receive_text(post % (1, data), 0.0)
    assert store == StoreMessage(1, store.message) and store.message.file_data == b"12345"
    for request_id in range(2, 6):  # over the quota: a reply each time, no error frame
        replies = sent(session.receive_text(post % (request_id, data), 0.0))
        assert replies == [{"type": "reply", "id": request_id, "ok": False,
                            "code": "chat-quota", "message": replies[0]["message"]}]
    assert session.state is State.OPEN
    session.storage_failed(store, StorageFailed("no store"))  # its bytes come back
    assert isinstance(session.receive_text(post % (6, data), 0.0)[0], StoreMessage)
    text_only = '{"type":"send-to-chat","id":7,"text":"h"}'
    assert sent(session.receive_text(text_only, 0.0))[0]["code"] == "chat-rate"


def test_chat_messages_are_listed_by_the_shell_and_answered_by_the_session():
    session = new_session()
    (listing,) = session.receive_text('{"type":"chat-messages","id":3,"before":9}', 0.0)
    assert listing == ListMessages(3, 9)
    messages = [{"id": 8, "text": "hi"}]
    assert sent(session.messages_listed(listing, messages, True)) == [
        {"type": "chat-messages", "id": 3, "messages": messages, "more": True}]


class StorageFailed(Refusal):
    """What the host raises when its store fails (`host.feed.StorageFailed`)."""

    code = "storage-failed"


STORE_DOWN = StorageFailed("the store is down")


def test_a_stored_chat_message_is_answered_ok():
    session = new_session()
    (store,) = session.receive_text('{"type":"send-to-chat","id":5,"text":"hi"}', 0.0)
    assert sent(session.message_stored(store)) == [{"type": "reply", "id": 5, "ok": True}]


def test_a_chat_message_the_store_failed_to_keep_is_refused_and_its_quota_refunded():
    session = new_session(chat=ChatLimits(max_stored_bytes=100))
    (store,) = session.receive_text('{"type":"send-to-chat","id":5,"text":"hello"}', 0.0)
    assert session.budget.chat_stored_bytes == store.message.size > 0
    answer = session.storage_failed(store, STORE_DOWN)
    assert sent(answer) == [{"type": "reply", "id": 5, "ok": False,
                             "code": "storage-failed", "message": "the store is down"}]
    assert len(answer) == 1 and session.state is State.OPEN
    assert session.budget.chat_stored_bytes == 0
    assert session.rules.counts.refused["storage-failed"] == 1


def test_a_chat_listing_the_store_failed_to_read_is_refused_in_its_reply():
    session = new_session()
    (listing,) = session.receive_text('{"type":"chat-messages","id":3}', 0.0)
    answer = session.storage_failed(listing, STORE_DOWN)
    assert sent(answer) == [{"type": "reply", "id": 3, "ok": False,
                             "code": "storage-failed", "message": "the store is down"}]
    assert len(answer) == 1 and session.state is State.OPEN


def test_a_stored_update_is_answered_to_its_sender_only_when_it_named_it():
    session = in_state(State.JOINED)
    (named,) = session.receive_text(
        '{"type":"update-send","update":{"payload":1},"id":"u-1"}', 0.0)
    assert isinstance(named, StoreUpdate) and named.id == "u-1"
    assert sent(session.update_stored(named, 7)) == [
        {"type": "update-stored", "id": "u-1", "serial": 7}]
    (unnamed,) = session.receive_text('{"type":"update-send","update":{"payload":2}}', 0.0)
    assert isinstance(unnamed, StoreUpdate) and unnamed.id is None
    assert session.update_stored(unnamed, 8) == ()
    assert session.updates_in_flight == 0  # answered or not, each freed its place


def test_an_update_the_store_failed_to_keep_is_an_error_and_the_link_stays():
    session = in_state(State.JOINED)
    (store,) = session.receive_text('{"type":"update-send","update":{"payload":1}}', 0.0)
    answer = session.storage_failed(store, STORE_DOWN)
    assert sent(answer) == [{"type": "error", "code": "storage-failed",
                             "message": "the store is down"}]
    assert len(answer) == 1 and session.state is State.JOINED


def test_a_replay_the_store_failed_to_read_leaves_the_channel_then_tells_then_closes():
    # The page would wait for its backlog forever: it reconnects and listens again.
    session = in_state(State.JOINED)
    (replay,) = session.receive_text('{"type":"update-listen","listen":1,"serial":0}', 0.0)
    answer = session.storage_failed(replay, STORE_DOWN)
    assert [type(e) for e in answer] == [Unsubscribe, Send, Close]
    assert sent(answer)[0]["code"] == "storage-failed"
    assert answer[-1] == Close(INTERNAL_ERROR, "storage unavailable")
    assert session.state is State.LEAVING and session.hub.joined_count(TOPIC) == 0
    assert session.rules.counts.refused["storage-failed"] == 1
    session.close(1001, "going away")  # the host closing it as well changes nothing
    assert session.storage_failed(replay, STORE_DOWN) == ()  # already going away


def test_a_cut_off_or_lost_connection_leaves_its_channel_at_once():
    alice, bob = new_session(), None
    bob = new_session(hub=alice.hub)
    alice.receive_text(JOIN, 0.0)
    bob.receive_text(JOIN, 0.0)
    assert alice.cut_off() == ()
    assert alice.hub.joined_count(TOPIC) == 1
    assert alice.receive_item(b"late", 0.0) == ()
    assert bob.link_lost() == (Unsubscribe(TOPIC),)
    assert alice.link_lost() == () and alice.state is State.CLOSED


def test_a_closed_session_refuses_further_events_as_a_host_bug():
    session = in_state(State.CLOSED)
    with pytest.raises(SessionStateError, match="'control' is not allowed in state 'closed'"):
        session.receive_text(JOIN, 0.0)


def test_the_first_frame_says_who_the_page_is():
    session = new_session()
    (hello,) = session.greet("addr", "alice", HELLO_LIMITS, host_ms=1.5e12, now=3.0)
    assert wire.decode_host_message(hello.text) == wire.Hello("addr", "alice", HELLO_LIMITS,
                                                              1.5e12)


def test_a_connection_closed_for_its_refusals_leaves_its_channel_before_anything_waits():
    session = new_session(max_errors=1)
    session.receive_text(JOIN, 0.0)
    effects = session.receive_text(JOIN, 0.0)  # refused: already joined, and the cap is 1
    assert [type(e) for e in effects] == [Unsubscribe, Send, Close]
    assert session.hub.joined_count(TOPIC) == 0


NAMED = '{"type":"update-send","update":{"payload":1},"id":"u-7"}'


def test_a_refusal_of_a_named_update_names_it_and_one_of_an_unnamed_one_does_not():
    # A refusal may come before the answers to updates sent earlier (still in their
    # commit): its sender tells which one it answers by the id alone.
    session = new_session(updates=UpdateLimits(burst=1, interval_ms=60_000))
    (first,) = session.receive_text(NAMED, 0.0)
    assert sent(session.receive_text(NAMED, 0.0)) == [{
        "type": "error", "code": "update-rate", "id": "u-7",
        "message": "updates sent faster than one per 60000 ms (after a burst of 1): this "
                   "one was refused"}]
    assert "id" not in sent(session.receive_text(UPDATE, 0.0))[0]
    assert sent(session.storage_failed(first, STORE_DOWN)) == [{
        "type": "error", "code": "storage-failed", "message": "the store is down",
        "id": "u-7"}]
