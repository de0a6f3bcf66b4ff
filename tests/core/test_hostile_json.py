"""Control messages that are not strict JSON, over a real socket against a live host.

A member that sends lone surrogates, non-finite numbers or deep nesting gets an `error` frame
naming the rule; its socket stays open, nothing is stored, and honest members keep receiving
realtime items and updates, live and replayed.
"""

from __future__ import annotations

import json

import aiohttp
import pytest
from peers import eventually, joined, next_control, raw_socket, stored_updates, without_time

from webxdc_rt.client import connect
from webxdc_rt.core import wire

LONE = "\\ud800"  # as JSON.stringify writes a string cut in the middle of an emoji
PAIR = "\\ud83d\\ude00"  # a whole emoji, escaped: valid


def update_send(update_json: str) -> str:
    return '{"type":"update-send","update":' + update_json + "}"


def send_to_chat(text_json: str, name_json: str = '"f.txt"') -> str:
    return ('{"type":"send-to-chat","id":1,"text":' + text_json + ',"file":{"name":'
            + name_json + ',"base64":"aGk="}}')


LONE_SURROGATES = [
    update_send('{"payload":1,"notify":{"*":"cut ' + LONE + '"}}'),
    update_send('{"payload":1,"notify":{"' + LONE + '":"key"}}'),
    update_send('{"payload":"' + LONE + '"}'),
    update_send('{"payload":{"deep":[{"' + LONE + '":1}]}}'),
    update_send('{"payload":1,"info":"' + LONE + '"}'),
    update_send('{"payload":1,"href":"a\\udc00"}'),
    update_send('{"payload":1,"document":"' + LONE + '"}'),
    update_send('{"payload":1,"summary":"\\ude00\\ud83d"}'),  # a pair in the wrong order
    send_to_chat('"' + LONE + '"'),
    send_to_chat('"hi"', '"' + LONE + '.txt"'),
]

NON_FINITE = [
    update_send('{"payload":NaN}'),
    update_send('{"payload":Infinity}'),
    update_send('{"payload":-Infinity}'),
    update_send('{"payload":1e999}'),
    update_send('{"payload":{"a":[1,-1E400]}}'),
    update_send('{"payload":' + "9" * 400 + "}"),  # Infinity in every browser
    '{"type":"join","epoch":NaN}',
]


class Honest:
    """Two members that listen to updates and to the realtime channel."""

    @classmethod
    async def start(cls, urls: dict[str, str]) -> Honest:
        self = cls()
        self.alice, self.bob = await joined(urls["alice"]), await joined(urls["bob"])
        self.updates: dict[str, list[dict]] = {"alice": [], "bob": []}
        await self.alice.peer.set_update_listener(self.updates["alice"].append)
        await self.bob.peer.set_update_listener(self.updates["bob"].append)
        return self

    async def still_receive(self, tag: str) -> None:
        """Realtime items and a live update still reach both."""
        self.alice.channel.send(tag.encode())
        await self.bob.got(tag.encode())
        self.bob.peer.send_update({"payload": tag, "info": f"{tag} 😀"})
        for inbox in self.updates.values():
            await eventually(lambda inbox=inbox: any(u["payload"] == tag for u in inbox))

    async def close(self) -> None:
        await self.alice.peer.close()
        await self.bob.peer.close()


async def refused(ws: aiohttp.ClientWebSocketResponse, frames: list[str]) -> list[dict]:
    """Send each frame and collect the host's answer to it."""
    answers = []
    for frame in frames:
        await ws.send_str(frame)
        answers.append(await next_control(ws))
    return answers


async def test_lone_surrogates_are_refused_at_the_wire_and_listeners_keep_receiving(live_host):
    urls = live_host.share(["alice", "bob", "mallory"])
    honest = await Honest.start(urls)
    session, ws = await raw_socket(live_host.port, live_host.last_pages[2])
    await ws.send_str('{"type":"join","epoch":1}')
    assert (await next_control(ws))["type"] == "joined"
    for answer in await refused(ws, LONE_SURROGATES):
        assert answer["type"] == "error" and answer["code"] == "bad-text", answer
        assert "surrogate" in answer["message"]
    await honest.still_receive("after")
    # The offender's socket is still open and works.
    await ws.send_str(update_send('{"payload":"fine ' + PAIR + '"}'))
    await ws.send_str('{"type":"update-listen","listen":1,"serial":0}')
    payloads = []
    while True:
        frame = await next_control(ws)
        if frame["type"] == "update-backlog-done":
            break
        payloads.append(frame["update"]["payload"])
    assert payloads == ["after", "fine 😀"]
    # Nothing was stored but the honest updates; the chat holds no message.
    app_id = live_host.last_pages[0].app.id
    assert len(await stored_updates(live_host.store, app_id)) == 2
    assert await honest.alice.peer.chat_messages() == []
    # A late listener replays the backlog whole.
    late = await connect(urls["alice"])
    replayed: list[dict] = []
    await late.set_update_listener(replayed.append)
    assert [u["payload"] for u in replayed] == ["after", "fine 😀"]
    await late.close()
    await session.close()
    await honest.close()


async def test_non_finite_numbers_are_refused(live_host):
    urls = live_host.share(["alice", "bob", "mallory"])
    honest = await Honest.start(urls)
    session, ws = await raw_socket(live_host.port, live_host.last_pages[2])
    for answer in await refused(ws, NON_FINITE):
        assert answer["type"] == "error" and answer["code"] == "bad-number", answer
        assert "finite" in answer["message"]
    await honest.still_receive("after")
    assert not ws.closed
    assert len(await stored_updates(live_host.store, live_host.last_pages[0].app.id)) == 1
    await session.close()
    await honest.close()


@pytest.mark.parametrize("frame", [
    "[" * 100_000,
    '{"a":[' * 50_000,
    '{"a":' * 100_000,
    update_send('{"payload":' + "[" * 1000 + "]" * 1000 + "}"),
    update_send('{"payload":' + '{"a":' * 1000 + "1" + "}" * 1000 + "}"),
    update_send('{"payload":' + "[" * 200 + "]" * 200 + "}"),
], ids=["open-lists", "open-mixed", "open-keys", "lists-1000", "objects-1000", "lists-200"])
async def test_deep_nesting_gets_an_error_frame_not_a_close(live_host, frame):
    urls = live_host.share(["alice", "bob", "mallory"])
    honest = await Honest.start(urls)
    session, ws = await raw_socket(live_host.port, live_host.last_pages[2])
    [answer] = await refused(ws, [frame])
    assert answer["type"] == "error" and answer["code"] == "nesting-too-deep", answer
    assert str(wire.MAX_JSON_DEPTH) in answer["message"]
    await ws.send_str('{"type":"join","epoch":1}')
    assert without_time(await next_control(ws)) == {"type": "joined", "epoch": 1}
    await honest.still_receive("after")
    await session.close()
    await honest.close()


async def test_payload_nested_as_deep_as_the_limit_allows_is_delivered(live_host):
    urls = live_host.share(["alice", "bob"])
    honest = await Honest.start(urls)
    levels = wire.MAX_JSON_DEPTH - 2  # the message and the update object hold the rest
    payload = json.loads("[" * levels + "]" * levels)
    honest.alice.peer.send_update({"payload": payload})
    await eventually(lambda: len(honest.updates["bob"]) == 1)
    assert honest.updates["bob"][0]["payload"] == payload
    assert not honest.alice.peer.errors
    await honest.close()
