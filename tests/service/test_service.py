"""`webxdc-rt host` as a service, over real sockets and the real command line: chats,
members, apps and links changed while it runs, the admin listener, restarts."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from hosting import (
    HostProcess,
    assert_one_line_error,
    make_xdc,
    origin_of,
    web_session,
    zip_bytes,
)
from peers import eventually, joined

from webxdc_rt.client import InviteRefused, connect
from webxdc_rt.host.app import Host
from webxdc_rt.service.manage import ManageError, Manager
from webxdc_rt.stores.sqlite import SqliteStore

PROBE = str(Path(__file__).parent.parent / "apps" / "probe")


async def family(service: HostProcess, tmp_path: Path) -> dict:
    """A chat of alice and bob, then carol added, with two apps shared; the links of each
    member by name."""
    created = (await service.cli("chat", "create", "family", "--members", "alice,bob",
                                 "--json")).json()
    assert [links["member"] for links in created["links"]] == ["alice", "bob"]
    carol = (await service.cli("member", "add", "family", "carol", "--json")).json()
    assert carol["member"] == "carol" and carol["url"]
    await service.cli("app", "share", "family", PROBE, "--json")
    xdc = make_xdc(tmp_path / "second.xdc", name="Second", icon=True)
    shared = (await service.cli("app", "share", "family", str(xdc), "--from", "bob",
                                "--json")).json()
    assert shared["name"] == "Second" and shared["shared_by"] == "bob"
    assert [link["member"] for link in shared["links"]] == ["alice", "bob", "carol"]
    return {name: (await service.cli("link", "show", "family", name, "--json")).json()
            for name in ("alice", "bob", "carol")}


async def test_a_chat_of_three_with_two_apps_is_built_while_the_host_runs(service, tmp_path):
    links = await family(service, tmp_path)
    listed = (await service.cli("app", "list", "family", "--json")).json()
    assert [app["name"] for app in listed["apps"]] == ["probe", "Second"]
    shown = (await service.cli("chat", "show", "family", "--json")).json()
    assert shown["members"] == ["alice", "bob", "carol"]
    chats = (await service.cli("chat", "list", "--json")).json()["chats"]
    assert [chat["name"] for chat in chats] == ["family"]
    # Every member's page of each app works, and the copies are separate channels.
    second = {name: links[name]["apps"][1]["url"] for name in links}
    alice, carol = await joined(second["alice"]), await joined(second["carol"])
    assert carol.peer.self_addr == links["carol"]["apps"][1]["self_addr"]
    alice.channel.send(b"to the second copy")
    await carol.got(b"to the second copy")
    other = await joined(links["bob"]["apps"][0]["url"])
    assert other.inbox == []
    for member in (alice, carol, other):
        await member.peer.close()
    # Plain output, as an operator reads it.
    text = await service.cli("link", "show", "family", "bob")
    assert text.stdout == f"bob: {links['bob']['url']}\n"


async def test_revoking_a_link_closes_the_members_socket_and_refuses_the_old_link(
        service, tmp_path):
    links = await family(service, tmp_path)
    old_page_url = links["bob"]["apps"][0]["url"]
    old_home_url = links["bob"]["url"]
    bob = await joined(old_page_url)
    alice = await joined(links["alice"]["apps"][0]["url"])
    revoked = (await service.cli("link", "revoke", "family", "bob", "--json")).json()
    assert revoked["sockets_closed"] == 1
    # The host closed bob's socket before the command returned: the close is there to read.
    await eventually(lambda: bob.peer.closed, timeout=1.0)
    with pytest.raises(InviteRefused):
        await connect(old_page_url)
    async with web_session() as session:
        for old in (old_page_url, old_home_url):
            async with session.get(old, allow_redirects=False) as response:
                assert response.status == 403
    assert revoked["url"] != old_home_url and revoked["apps"][0]["url"] != old_page_url
    assert revoked["apps"][0]["self_addr"] == links["bob"]["apps"][0]["self_addr"]
    bob_again = await joined(revoked["apps"][0]["url"])
    alice.channel.send(b"welcome back")
    await bob_again.got(b"welcome back")
    await alice.peer.close()
    await bob_again.peer.close()


async def test_removing_a_member_closes_their_sockets_and_their_pages_are_gone(
        service, tmp_path):
    links = await family(service, tmp_path)
    carol = await joined(links["carol"]["apps"][0]["url"])
    removed = (await service.cli("member", "remove", "family", "carol", "--json")).json()
    assert removed == {"chat": "family", "removed": "carol", "sockets_closed": 1}
    await eventually(lambda: carol.peer.closed, timeout=1.0)
    async with web_session() as session:
        for url in (links["carol"]["url"], links["carol"]["apps"][0]["url"]):
            async with session.get(url, allow_redirects=False) as response:
                assert response.status == 404
    shown = (await service.cli("chat", "show", "family", "--json")).json()
    assert shown["members"] == ["alice", "bob"]


async def test_removing_an_app_copy_wipes_its_updates_and_closes_its_pages(service, tmp_path):
    links = await family(service, tmp_path)
    alice = await connect(links["alice"]["apps"][0]["url"])
    seen: list = []
    await alice.set_update_listener(seen.append, serial=0)
    alice.send_update({"payload": {"n": 1}})
    await eventually(lambda: len(seen) == 1)
    app_id = links["alice"]["apps"][0]["id"]
    database = service.data_dir / "webxdc-rt.sqlite3"

    def updates_of(app: str) -> int:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM updates WHERE app_id = ?",
                              (app,)).fetchone()[0]

    assert updates_of(app_id) == 1
    removed = (await service.cli("app", "remove", "family", app_id, "--json")).json()
    assert removed["removed"]["name"] == "probe" and removed["sockets_closed"] == 1
    await eventually(lambda: alice.closed, timeout=1.0)
    assert updates_of(app_id) == 0
    with pytest.raises(InviteRefused):
        await connect(links["alice"]["apps"][0]["url"])
    listed = (await service.cli("app", "list", "family", "--json")).json()
    assert [app["name"] for app in listed["apps"]] == ["Second"]


BAD_COMMANDS = [
    (["chat", "show", "nowhere"], "no chat is named 'nowhere'"),
    (["member", "add", "nowhere", "dave"], "no chat is named 'nowhere'"),
    (["member", "remove", "family", "dave"], "has no member 'dave'"),
    (["link", "revoke", "family", "dave"], "has no member 'dave'"),
    (["app", "remove", "family", "nothing"], "has no app 'nothing'"),
    (["member", "add", "family", "Alice"], "has a member 'Alice' already"),
    (["member", "add", "family", "a\x07b"], "control characters"),
    (["member", "add", "family", " "], "must not be empty"),
    (["chat", "create", "family"], "exists already"),
    (["chat", "create", "x" * 65], "longer than 64"),
    (["chat", "create", "new", "--members", "a,A"], "listed twice"),
    (["app", "share", "family", "/no/such.xdc"], "app not found"),
    (["app", "share", "family", PROBE, "--from", "zoe"], "has no member 'zoe'"),
]
BAD_APPS = [
    (None, "not a ZIP archive"),
    ({"readme.txt": b"hi"}, "no index.html"),
    ({"index.html": b"", "../evil": b"x"}, "path traversal"),
    ({"index.html": b"", "manifest.toml": b"name = ["}, "not valid TOML"),
]


async def test_unknown_and_bad_names_and_bad_files_are_one_line_errors_that_change_nothing(
        service, tmp_path):
    await service.cli("chat", "create", "family", "--members", "alice")
    before = (await service.cli("chat", "list", "--json")).json()
    for args, fragment in BAD_COMMANDS:
        assert_one_line_error(await service.cli(*args), fragment)
    for files, fragment in BAD_APPS:
        bad = tmp_path / "bad.xdc"
        bad.write_bytes(b"not a zip at all" if files is None else zip_bytes(files))
        assert_one_line_error(await service.cli("app", "share", "family", str(bad)), fragment)
    assert (await service.cli("chat", "list", "--json")).json() == before


async def test_management_without_a_running_host_is_a_one_line_error(tmp_path):
    done = await HostProcess(tmp_path / "empty").cli("chat", "list")
    assert_one_line_error(done, "no webxdc-rt host is running")


async def test_a_second_host_on_the_same_data_folder_is_refused(service):
    second = HostProcess(service.data_dir)
    with pytest.raises(AssertionError, match="another webxdc-rt host"):
        await second.start()
    await second.stop()


async def test_the_admin_listener_is_a_private_socket_and_not_on_the_public_port(
        service, tmp_path):
    links = await family(service, tmp_path)
    mode = os.stat(service.admin_socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    home = links["alice"]["url"]
    async with web_session() as session:
        async with session.get(home) as response:  # logged in on the home origin
            assert response.status == 200
        for base in (origin_of(home), f"http://127.0.0.1:{service.port}",
                     f"http://localhost:{service.port}"):
            for method, path in (("GET", "/metrics"), ("POST", "/v1/chat/list"),
                                 ("POST", "/v1/chat/delete")):
                async with session.request(method, base + path, json={"chat": "family"},
                                           allow_redirects=False) as response:
                    body = await response.text()
                    assert response.status in (403, 404, 405), (base, path)
                    assert "webxdc_rt_" not in body and "family" not in body
    assert (await service.cli("chat", "list", "--json")).json()["chats"][0]["name"] == "family"


BAD_REQUESTS = [
    (b"not json", "not valid"),
    (b"[1]", "must be a JSON object"),
    (b'{"name": "x", "extra": 1}', "unknown field 'extra'"),
    (b'{"name": 5}', "must be a str"),
    (b'{"name": "x", "members": [1]}', "list of names"),
    (b'{"name": "\\ud800"}', "lone surrogate"),
    (b'{"name": "x", "members": ' + b"[" * 200 + b"]" * 200 + b"}", "nest"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"name": "' + b"x" * 70_000 + b'"}', "over the limit"),
]


async def test_the_admin_api_checks_every_request(service):
    for body, fragment in BAD_REQUESTS:
        status, answer = await service.admin("POST", "/v1/chat/create", data=body)
        assert 400 <= status < 500, body[:40]
        error = json.loads(answer)["error"]
        assert fragment in error["message"], (body[:40], error)
    assert (await service.cli("chat", "list", "--json")).json()["chats"] == []
    status, answer = await service.admin("POST", "/v1/chat/explode", json={})
    assert status == 404 and json.loads(answer)["error"]["code"] == "unknown-command"


async def test_a_restarted_host_serves_the_same_chats_links_and_uploaded_apps(tmp_path):
    first = await HostProcess(tmp_path / "d").start("--log-format", "json")
    links = await family(first, tmp_path)
    (tmp_path / "second.xdc").unlink()  # the host kept its own copy
    assert await first.stop() == 0
    records = [json.loads(line) for line in first.stderr.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any("shared into chat 'family'" in record["message"] for record in records)
    second = await HostProcess(tmp_path / "d").start(port=first.port)
    try:
        alice = await joined(links["alice"]["apps"][1]["url"])
        bob = await joined(links["bob"]["apps"][1]["url"])
        bob.channel.send(b"after a restart")
        await alice.got(b"after a restart")
        assert alice.peer.self_addr == links["alice"]["apps"][1]["self_addr"]
        await alice.peer.close()
        await bob.peer.close()
        async with web_session() as session:
            async with session.get(links["carol"]["url"]) as response:
                assert response.status == 200 and "text/html" in response.content_type
    finally:
        assert await second.stop() == 0


async def test_a_failed_store_leaves_nothing_half_done(tmp_path):
    store = SqliteStore(tmp_path / "db.sqlite3")
    host = Host(store.load_registry(), {}, store=store)
    manager = Manager(host, store)
    chat = manager.create_chat("family", ["alice"])
    store._db.execute("PRAGMA query_only = ON")  # every write fails from here on
    with pytest.raises(ManageError, match="could not store"):
        manager.add_member(chat, "bob")
    with pytest.raises(ManageError, match="could not store"):
        await manager.share(chat, "probe.xdc", make_xdc(tmp_path / "p.xdc").read_bytes(),
                            None)
    assert [member.name for member in chat.members] == ["alice"]
    assert manager.registry.apps == {} and host.sources == {}
    with pytest.raises(ManageError, match="could not store"):
        await manager.remove_member(chat, chat.members[0])
    assert [member.name for member in chat.members] == ["alice"]
    assert manager.registry.home_of(chat, chat.members[0]) is not None
    store.close()


async def test_home_page_uploads_are_bounded_and_accepted_from_the_home_page_only(tmp_path):
    host = await HostProcess(tmp_path / "d").start("--limit", "home.max_upload_bytes=4000")
    try:
        links = (await host.cli("chat", "create", "c", "--members", "ann",
                                "--json")).json()["links"]
        home = links[0]["url"]
        origin = origin_of(home)
        small = make_xdc(tmp_path / "small.xdc").read_bytes()
        large = make_xdc(tmp_path / "large.xdc", extra={"noise.bin": os.urandom(5000)})
        async with web_session() as session:
            async with session.get(origin + "/.webxdc-rt/home/state") as response:
                assert response.status == 403  # not logged in yet
            async with session.get(home) as response:
                assert response.status == 200
            async with session.get(origin + "/.webxdc-rt/home/state") as response:
                state = await response.json()
                assert (state["chat"], state["member"], state["apps"]) == ("c", "ann", [])
            share = origin + "/.webxdc-rt/home/share"
            for headers in ({}, {"Origin": "http://elsewhere.localhost:1"}):
                async with session.post(share, data=small, headers=headers) as response:
                    assert response.status == 403
            async with session.post(share, data=large.read_bytes(),
                                    headers={"Origin": origin}) as response:
                assert response.status == 413
                assert (await response.json())["error"]["code"] == "too-large"
            async with session.post(share, data=small, headers={
                    "Origin": origin, "X-File-Name": "my%20app.xdc"}) as response:
                assert response.status == 201
                assert (await response.json())["app"]["name"] == "my app"
        assert_one_line_error(await host.cli("app", "share", "c", str(large)),
                              "more than the 4000 allowed")
    finally:
        assert await host.stop() == 0
