"""The browser bridge's status updates across a lost link, in headless Chromium: an update
whose bytes or whose answer the link lost is sent again on the next link, stored once, and
seen once by every page."""

from __future__ import annotations

from links import hold_link_down, let_link_up
from peers import stored_updates

from webxdc_rt.core.limits import UpdateLimits
from webxdc_rt.host.app import HostSettings

# Also records the payload of every update-send the page writes to a socket, and the id
# the bridge gave each payload.
LISTEN = """() => new Promise((resolve) => {
  window.seen = [];
  window.written = [];
  window.idOf = {};
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const message = typeof data === "string" ? JSON.parse(data) : null;
    if (message !== null && message.type === "update-send") {
      written.push(message.update.payload);
      idOf[message.update.payload] = message.id;
    }
    return send.call(this, data);
  };
  window.webxdc.setUpdateListener((u) => seen.push(u.payload)).then(resolve);
})"""

# The page's socket stops carrying what the bridge sends, as a link that died unnoticed
# does, and is then found dead.
LOSE_WHAT_IS_SENT = """(payload) => {
  const ws = window.__sockets.at(-1);
  ws.send = () => {};
  window.webxdc.sendUpdate({ payload });
  ws.close();
}"""

# The host's answer to this update is lost with the link that carried it.
LOSE_THE_ANSWER = """(payload) => {
  const ws = window.__sockets.at(-1);
  const bridge = ws.onmessage;
  ws.onmessage = (event) => {
    const message = typeof event.data === "string" ? JSON.parse(event.data) : null;
    if (message !== null && message.type === "update-stored" &&
        message.id === idOf[payload]) {
      ws.close();
      return;
    }
    bridge(event);
  };
  window.webxdc.sendUpdate({ payload });
}"""


async def test_an_update_the_link_lost_is_sent_again_and_stored_once(live_host, open_page):
    urls = live_host.share(["alice", "bob"])
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    for page in (alice, bob):
        await page.evaluate(LISTEN)
    await alice.evaluate(LOSE_WHAT_IS_SENT, "bytes lost")
    await alice.wait_for_function("window.__sockets.length === 2")
    await alice.evaluate(LOSE_THE_ANSWER, "answer lost")
    await alice.wait_for_function("window.__sockets.length === 3")
    await alice.evaluate("() => window.webxdc.sendUpdate({ payload: 'after' })")
    for page in (alice, bob):
        await page.wait_for_function("seen.length >= 3")
    # Updates reach a listener in serial order: a second copy of either would come first.
    for page in (alice, bob):
        assert await page.evaluate("seen") == ["bytes lost", "answer lost", "after"]
    # The second went out twice: on the link that lost its answer, and again on the next
    # (the first one's lost bytes never reached a socket).
    assert await alice.evaluate("written") == [
        "bytes lost", "answer lost", "answer lost", "after"]
    stored = await stored_updates(live_host.store, live_host.last_pages[0].app.id)
    assert [u.update.payload_json for u in stored] == [
        '"bytes lost"', '"answer lost"', '"after"']


async def test_updates_waiting_to_be_stored_are_bounded(hosts, open_page):
    live_host = await hosts(HostSettings(bridge_max_pending_items=2))
    urls = live_host.share(["alice", "bob"])
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    await bob.evaluate(LISTEN)
    await hold_link_down(alice, live_host)
    refused = await alice.evaluate("""() => {
      const refused = [];
      for (const payload of [1, 2, 3]) {
        try { window.webxdc.sendUpdate({ payload }); } catch (err) { refused.push(err.message); }
      }
      return refused;
    }""")
    assert len(refused) == 1
    assert refused[0].startswith("update not sent: 2 updates (")
    assert refused[0].endswith(" bytes) wait for the host to store them already")
    await let_link_up(alice)
    await bob.wait_for_function("seen.length >= 2")
    await alice.evaluate("() => window.webxdc.sendUpdate({ payload: 4 })")
    await bob.wait_for_function("seen.length >= 3")
    assert await bob.evaluate("seen") == [1, 2, 4]


async def test_an_update_the_host_refused_is_not_sent_again_on_the_next_link(hosts, open_page):
    live_host = await hosts(HostSettings(updates=UpdateLimits(interval_ms=600_000, burst=1)))
    urls = live_host.share(["alice"])
    alice = await open_page(urls["alice"])
    await alice.evaluate(LISTEN)
    # The second is over the allowance: refused at once, while the first is still being
    # stored, so the refusal comes before the first one's answer.
    await alice.evaluate("""() => {
      window.webxdc.sendUpdate({ payload: 1 });
      window.webxdc.sendUpdate({ payload: 2 });
    }""")
    await alice.wait_for_function("seen.length === 1")  # the answers to both came before
    await live_host.host.disconnect(live_host.last_pages[0].label)
    await alice.wait_for_function("window.__sockets.length === 2")
    # Updates not answered yet are sent first on a new link, before this one.
    await alice.evaluate("() => window.webxdc.sendUpdate({ payload: 3 })")
    await alice.wait_for_function("written.includes(3)")
    assert await alice.evaluate("written") == [1, 2, 3]
