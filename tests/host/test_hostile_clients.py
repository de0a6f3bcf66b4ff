"""Generated hostile clients against a live host over a real socket.

Hypothesis sends a member's raw socket arbitrary frames: control messages of every type
with arbitrary field values (lone surrogates, non-finite numbers, deep nesting, wrong
types, huge counters), arbitrary text and arbitrary binary frames. Whatever it sends:

- the host never raises out of a handler: no ERROR record and no traceback in its log;
- the offender gets answers, or a close with a policy code (1007, 1008, 1009), never 1011;
- two honest members keep exchanging realtime items and status updates.
"""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from peers import eventually, joined

from webxdc_rt.client import connect
from webxdc_rt.core.limits import ChatLimits, RealtimeLimits, UpdateLimits
from webxdc_rt.host.app import HostSettings

CASES = 1000
POLICY_CLOSES = {aiohttp.WSCloseCode.INVALID_TEXT, aiohttp.WSCloseCode.POLICY_VIOLATION,
                 aiohttp.WSCloseCode.MESSAGE_TOO_BIG}

# Every string a JavaScript or Python client could produce, lone surrogates included.
any_text = st.text(st.characters(exclude_categories=()), max_size=12)
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
json_like = st.recursive(
    st.none() | st.booleans() | numbers | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12)
counter = st.integers(min_value=-2, max_value=2**60) | json_like

control = st.one_of(
    st.builds(lambda epoch: {"type": "join", "epoch": epoch}, counter),
    st.just({"type": "leave"}),
    st.builds(lambda update: {"type": "update-send", "update": update},
              st.fixed_dictionaries({"payload": json_like}, optional={
                  "info": json_like, "href": any_text, "document": any_text,
                  "summary": any_text, "notify": st.dictionaries(any_text, any_text) | json_like,
              }) | json_like),
    st.builds(lambda listen, serial: {"type": "update-listen", "listen": listen,
                                      "serial": serial}, counter, counter),
    st.builds(lambda rid, text, name, data: {"type": "send-to-chat", "id": rid, "text": text,
                                             "file": {"name": name, "base64": data}},
              counter, any_text | json_like, any_text | json_like, any_text | json_like),
    st.builds(lambda rid, before: {"type": "chat-messages", "id": rid, "before": before},
              counter, counter),
    st.dictionaries(any_text, json_like, max_size=3),
    json_like,
)


def as_json(value: object) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, as JSON.stringify does.
    return json.dumps(value, ensure_ascii=True).encode()


frames = st.one_of(
    control.map(lambda value: ("text", as_json(value))),
    any_text.map(lambda text: ("text", text.encode("utf-8", "surrogatepass"))),
    st.integers(min_value=1, max_value=5000).map(lambda depth: ("text", b"[" * depth)),
    st.integers(min_value=1, max_value=2000).map(
        lambda depth: ("text", b'{"type":"update-send","update":{"payload":'
                       + b"[" * depth + b"]" * depth + b"}}")),
    st.binary(max_size=64).map(lambda data: ("binary", data)),
    st.sampled_from([129_000, 128_000, 0]).map(lambda size: ("binary", bytes(size))),
)


def generated(strategy: st.SearchStrategy[tuple[str, bytes]], count: int) -> list:
    """`count` examples of `strategy`, the same ones every run. Hypothesis cannot drive an
    async test itself, so the cases are drawn first and then played against the host; a
    failure names the frame that caused it."""
    drawn: list = []

    @settings(max_examples=count, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(example: tuple[str, bytes]) -> None:
        drawn.append(example)

    draw()
    return drawn


@pytest.fixture
async def arena(hosts):
    """A host with its rates opened up (pacing is tested elsewhere), two honest members
    with realtime and update listeners, and the page a hostile client attacks from."""
    live = await hosts(HostSettings(
        realtime=RealtimeLimits(send_items_per_s=1e6, send_items_burst=10**6),
        updates=UpdateLimits(interval_ms=1, burst=10**6, listens_per_s=1e6,
                             listens_burst=10**6),
        chat=ChatLimits(messages_per_s=1e6, messages_burst=10**6),
        control_per_s=1e6, control_burst=10**6, max_connections_per_page=10**4))
    urls = live.share(["alice", "bob", "mallory"])
    alice, bob = await joined(urls["alice"]), await joined(urls["bob"])
    updates: list[dict] = []
    await bob.peer.set_update_listener(updates.append)
    yield live, alice, bob, updates
    await alice.peer.close()
    await bob.peer.close()


class Attacker:
    """Mallory's raw socket, reopened whenever the host closed it."""

    def __init__(self, live) -> None:
        self.live = live
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def socket(self) -> aiohttp.ClientWebSocketResponse:
        if self.ws is None or self.ws.closed:
            if self.session is None:
                self.session = aiohttp.ClientSession()
            page = self.live.last_pages[2]
            self.ws = await self.session.ws_connect(
                f"ws://127.0.0.1:{self.live.port}/.webxdc-rt/socket",
                headers={"Host": f"{page.label}.localhost:{self.live.port}",
                         "Authorization": f"Bearer {page.token}"}, max_msg_size=0)
        return self.ws

    async def send_and_settle(self, kind: str, data: bytes, probe_id: int) -> None:
        """Send one frame, then a chat-messages probe, and read until its answer: the host
        handled the frame. A close is allowed only with a policy code."""
        ws = await self.socket()
        opcode = aiohttp.WSMsgType.TEXT if kind == "text" else aiohttp.WSMsgType.BINARY
        await ws.send_frame(data, opcode)
        await ws.send_str(json.dumps({"type": "chat-messages", "id": probe_id}))
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.CLOSING):
                assert ws.close_code in POLICY_CLOSES, (ws.close_code, data[:80])
                await ws.close()
                return
            assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
            if msg.type is aiohttp.WSMsgType.TEXT:
                answer = json.loads(msg.data)
                if answer.get("type") == "chat-messages" and answer.get("id") == probe_id:
                    return

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


async def test_no_input_escapes_a_handler_or_reaches_honest_members(arena, caplog):
    live, alice, bob, updates = arena
    caplog.set_level(logging.WARNING)
    attacker = Attacker(live)
    cases = generated(frames, CASES)
    for number, frame in enumerate(cases, 1):
        await attacker.send_and_settle(*frame, probe_id=number)
        marker = b"honest %d" % number
        alice.channel.send(marker)
        await bob.got(marker)
    await attacker.close()
    assert len(cases) >= CASES
    # Honest updates still flow, live, after everything the attacker stored.
    seen = len(updates)
    alice.peer.send_update({"payload": "after the attack"})
    await eventually(lambda: len(updates) > seen and
                     updates[-1]["payload"] == "after the attack")
    late: list[dict] = []
    replay = await connect(live.url(live.last_pages[1]))
    await replay.set_update_listener(late.append)  # every stored update replays cleanly
    assert late and late[-1]["payload"] == "after the attack"
    await replay.close()
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [r.getMessage()[:200] for r in problems]
