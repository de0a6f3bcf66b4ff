"""The rest of the webxdc API in Chromium, with the test app served from a `.xdc` built here:
storage isolation, status updates (order, backlog, restart), sendToChat, importFiles, and
the Content-Security-Policy."""

from __future__ import annotations

import asyncio
import base64
import zipfile
from pathlib import Path

import pytest
from peers import eventually, stored_updates

from webxdc_rt.client import connect
from webxdc_rt.stores.sqlite import SqliteStore

PROBE_APP = Path(__file__).parent.parent / "apps" / "probe"
LISTEN = """async (serial) => {
  window.updates = [];
  await window.webxdc.setUpdateListener((update) => updates.push(update), serial);
  return updates.length;
}"""


@pytest.fixture
def probe_xdc(tmp_path: Path) -> Path:
    """The probe app packed as a .xdc, its own (never served) webxdc.js included."""
    xdc = tmp_path / "probe.xdc"
    with zipfile.ZipFile(xdc, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in PROBE_APP.rglob("*"):
            archive.write(path, path.relative_to(PROBE_APP).as_posix())
        archive.writestr("manifest.toml", 'name = "Probe"\n')
    return xdc


async def test_members_in_one_browser_have_separate_storage(live_host, open_page, probe_xdc):
    urls = live_host.share(["alice", "bob"], app_folder=probe_xdc)
    second_copy = live_host.share(["alice", "bob"], app_folder=probe_xdc,
                                  chat=live_host.last_chat)
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    alice_again = await open_page(second_copy["alice"])
    await alice.evaluate("""() => new Promise((resolve) => {
        localStorage.setItem("who", "alice");
        sessionStorage.setItem("who", "alice");
        const open = indexedDB.open("db", 1);
        open.onupgradeneeded = () => open.result.createObjectStore("s");
        open.onsuccess = () => resolve(); })""")
    for other in (bob, alice_again):
        seen = await other.evaluate("""() => new Promise((resolve) => {
            const local = localStorage.getItem("who");
            const session = sessionStorage.getItem("who");
            indexedDB.databases().then((dbs) => resolve([local, session, dbs.length])); })""")
        assert seen == [None, None, 0]
    assert await alice.evaluate("localStorage.getItem('who')") == "alice"
    assert await alice.evaluate("window.APP_OWN_WEBXDC_JS_WAS_SERVED") is None


async def test_api_members_are_there(live_host, open_page, probe_xdc):
    urls = live_host.share(["alice", "bob"], app_folder=probe_xdc)
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    facts = await alice.evaluate("""async () => ({
        addr: webxdc.selfAddr, name: webxdc.selfName, sender: webxdc.isAppSender,
        broadcast: webxdc.isBroadcast, interval: webxdc.sendUpdateInterval,
        maxSize: webxdc.sendUpdateMaxSize, all: await webxdc.getAllUpdates(),
        title: document.title })""")
    assert facts == {"addr": live_host.last_pages[0].self_addr, "name": "alice",
                     "sender": True, "broadcast": False, "interval": 100,
                     "maxSize": 128000, "all": [], "title": "probe"}
    assert await bob.evaluate("webxdc.isAppSender") is False


async def test_updates_reach_every_member_in_serial_order_including_sender(
        live_host, open_page, probe_xdc):
    urls = live_host.share(["alice", "bob", "carol"], app_folder=probe_xdc)
    pages = [await open_page(urls[name]) for name in ("alice", "bob", "carol")]
    for page in pages:
        assert await page.evaluate(LISTEN, 0) == 0
    await pages[0].evaluate("""() => {
        webxdc.sendUpdate({payload: {n: 1}, info: "one", summary: "s1", document: "doc",
                           href: "index.html#1", notify: {"*": "hi"}}, "");
        webxdc.sendUpdate({payload: "two"}, "");
    }""")
    await pages[1].evaluate("() => webxdc.sendUpdate({payload: [3]}, '')")
    for page in pages:
        await page.wait_for_function("updates.length === 3")
    seen = [await page.evaluate("updates") for page in pages]
    assert seen[0] == seen[1] == seen[2]
    first, second, third = seen[0]
    assert first == {"payload": {"n": 1}, "info": "one", "summary": "s1", "document": "doc",
                     "href": "index.html#1", "notify": {"*": "hi"},
                     "serial": first["serial"], "max_serial": first["serial"]}
    assert first["serial"] < second["serial"] < third["serial"]
    assert [u["payload"] for u in seen[0]] == [{"n": 1}, "two", [3]]
    errors = await pages[0].evaluate("""() => {
        const out = [];
        for (const bad of [undefined, null, {}, {payload: undefined}]) {
            try { webxdc.sendUpdate(bad, ""); } catch (e) { out.push(e.constructor.name); }
        }
        try { webxdc.sendUpdate({payload: "x".repeat(128001)}, ""); }
        catch (e) { out.push(e.constructor.name); }
        return out; }""")
    assert errors == ["TypeError"] * 4 + ["RangeError"]


async def test_a_late_listener_gets_the_backlog_before_its_promise_resolves(
        live_host, open_page, probe_xdc):
    urls = live_host.share(["alice", "bob"], app_folder=probe_xdc)
    alice = await open_page(urls["alice"])
    await alice.evaluate("""() => { for (let i = 1; i <= 30; i++)
        webxdc.sendUpdate({payload: i}, ""); }""")
    app_id = live_host.last_pages[0].app.id

    async def all_stored() -> bool:
        return len(await stored_updates(live_host.store, app_id)) == 30

    await eventually(all_stored)
    bob = await open_page(urls["bob"])
    assert await bob.evaluate(LISTEN, 0) == 30  # all delivered when the promise resolved
    updates = await bob.evaluate("updates")
    assert [u["payload"] for u in updates] == list(range(1, 31))
    assert all(u["max_serial"] == updates[-1]["serial"] for u in updates)
    # Starting after a serial replays only what came later; live ones follow.
    tenth = updates[9]["serial"]
    assert await bob.evaluate(LISTEN, tenth) == 20
    await alice.evaluate("() => webxdc.sendUpdate({payload: 'live'}, '')")
    await bob.wait_for_function("updates.length === 21")
    assert await bob.evaluate("updates[20].payload") == "live"


async def test_updates_survive_a_restart_of_the_host(hosts, open_page, tmp_path):
    database = tmp_path / "state.sqlite3"
    first = await hosts(store=SqliteStore(database))
    urls = first.share(["alice", "bob"])
    alice = await open_page(urls["alice"])
    await alice.evaluate("() => webxdc.sendUpdate({payload: 'kept'}, '')")
    app_id = first.last_pages[0].app.id
    await eventually(lambda: first.store.max_serial(app_id) > 0)
    labels = [page.label for page in first.last_pages]
    await first.stop()
    first.store.close()

    second = await hosts(store=SqliteStore(database))
    pages = second.registry.pages_of(second.registry.apps[app_id])
    assert [page.label for page in pages] == labels
    bob = await open_page(second.url(pages[1]))
    assert await bob.evaluate(LISTEN, 0) == 1
    assert await bob.evaluate("updates[0].payload") == "kept"


async def test_send_to_chat_is_recorded_for_the_python_peer(live_host, open_page, probe_xdc):
    urls = live_host.share(["alice", "bob"], app_folder=probe_xdc)
    alice = await open_page(urls["alice"])
    await alice.evaluate("""async () => {
        await webxdc.sendToChat({text: "just text"});
        await webxdc.sendToChat({file: {name: "a.txt", plainText: "plain"}, text: "with file"});
        await webxdc.sendToChat({file: {name: "b.bin", base64: btoa("\\x00\\x01")}});
        await webxdc.sendToChat({file: {name: "c.txt", blob: new Blob(["from a blob"])}});
        await webxdc.sendToChat({file: {name: "empty.txt", plainText: ""}});
    }""")
    refusals = await alice.evaluate("""async () => {
        const out = [];
        for (const bad of [{}, {text: ""}, {file: {name: "x"}},
                           {file: {name: "x", plainText: "a", base64: "YQ=="}},
                           {file: {plainText: "no name"}},
                           {file: {name: "big", base64: btoa("x".repeat(300000))}}]) {
            try { await webxdc.sendToChat(bad); out.push("accepted"); }
            catch (e) { out.push(e.message); }
        }
        return out; }""")
    assert "accepted" not in refusals and len(refusals) == 6
    assert "over the limit" in refusals[-1]
    peer = await connect(urls["bob"])
    messages = await peer.chat_messages()
    await peer.close()
    decoded = [(m["member"], m["text"], m["file_name"],
                None if m["file_base64"] is None else base64.b64decode(m["file_base64"]))
               for m in messages]
    assert decoded == [
        ("alice", "just text", None, None),
        ("alice", "with file", "a.txt", b"plain"),
        ("alice", None, "b.bin", b"\x00\x01"),
        ("alice", None, "c.txt", b"from a blob"),
        ("alice", None, "empty.txt", b""),
    ]


async def test_import_files_opens_a_file_chooser(live_host, open_page, probe_xdc, tmp_path):
    urls = live_host.share(["alice"], app_folder=probe_xdc)
    alice = await open_page(urls["alice"])
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    async with alice.expect_file_chooser() as chooser_info:
        picked = alice.evaluate("""async () => {
            const files = await webxdc.importFiles({extensions: [".txt"], multiple: true});
            return Promise.all(files.map(async (f) => [f.name, await f.text()])); }""")
        picking = asyncio.ensure_future(picked)
    chooser = await chooser_info.value
    assert chooser.is_multiple()
    await chooser.set_files(notes)
    assert await picking == [["notes.txt", "my notes"]]


async def test_pages_cannot_reach_the_internet_or_another_copy(live_host, open_page, probe_xdc):
    urls = live_host.share(["alice"], app_folder=probe_xdc)
    other = live_host.share(["alice"], app_folder=probe_xdc, chat=live_host.last_chat)
    del other
    other_origin = live_host.origin(live_host.last_pages[0])
    alice = await open_page(urls["alice"])
    assert await alice.evaluate("fetch('data.txt').then(r => r.text())") == \
        "a data file of the probe app\n"
    for target in ("http://example.com/", "https://1.1.1.1/", other_origin + "/data.txt"):
        outcome = await alice.evaluate("""async (url) => {
            const violations = [];
            document.addEventListener("securitypolicyviolation",
                (e) => violations.push([e.violatedDirective, e.blockedURI]));
            let fetched;
            try { await fetch(url); fetched = "fetched"; } catch (e) { fetched = "refused"; }
            await new Promise((r) => setTimeout(r, 50));
            return [fetched, violations]; }""", target)
        assert outcome[0] == "refused", target
        assert outcome[1] and outcome[1][0][0] == "connect-src", target
    # Chromium ignores CSP's `webrtc 'block'`; the bridge removes the constructors instead.
    webrtc = await alice.evaluate("""() => [typeof RTCPeerConnection,
        typeof webkitRTCPeerConnection, typeof RTCDataChannel]""")
    assert webrtc == ["undefined"] * 3


async def test_update_listener_resumes_after_a_lost_link_without_gaps_or_repeats(
        live_host, open_page, probe_xdc):
    urls = live_host.share(["alice", "bob"], app_folder=probe_xdc)
    alice, bob = await open_page(urls["alice"]), await open_page(urls["bob"])
    await bob.evaluate(LISTEN, 0)
    await alice.evaluate("() => webxdc.sendUpdate({payload: 1}, '')")
    await bob.wait_for_function("updates.length === 1")
    await live_host.host.disconnect(live_host.last_pages[1].label)
    await bob.wait_for_function("window.__sockets[0].readyState === WebSocket.CLOSED")
    await alice.evaluate("() => { webxdc.sendUpdate({payload: 2}, ''); "
                         "webxdc.sendUpdate({payload: 3}, ''); }")
    await bob.wait_for_function("updates.length === 3", timeout=20_000)
    await alice.evaluate("() => webxdc.sendUpdate({payload: 4}, '')")
    await bob.wait_for_function("updates.length === 4")
    assert [u["payload"] for u in await bob.evaluate("updates")] == [1, 2, 3, 4]
