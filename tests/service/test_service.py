"""`webxdc-rt host` as a service, over real sockets and the real command line: chats,
members, apps and links changed while it runs, the admin listener, restarts."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from hosting import (
    HostProcess,
    assert_one_line_error,
    family,
    make_xdc,
    names_are_kept_as_checked,
    origin_of,
    web_session,
    zip_bytes,
)
from peers import eventually, joined
from ports import free_port

from webxdc_rt.client import InviteRefused, connect
from webxdc_rt.host.app import Host
from webxdc_rt.model.chats import Chat
from webxdc_rt.service.manage import ManageError, Manager
from webxdc_rt.stores.sqlite import SqliteStore

PROBE = str(Path(__file__).parent.parent / "apps" / "probe")


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
    # The host closed bob's socket before the command returned (sockets_closed): the close
    # is there to read, as soon as this process gets to it.
    await eventually(lambda: bob.peer.closed)
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
    assert removed == {"chat": "family", "removed": "carol",
                       "member_id": links["carol"]["member_id"], "sockets_closed": 1}
    await eventually(lambda: carol.peer.closed)
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
    removed = (await service.cli("app", "remove", "family", app_id, "--id", "--json")).json()
    assert removed["removed"]["name"] == "probe" and removed["sockets_closed"] == 1
    await eventually(lambda: alice.closed)
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
    (["member", "add", "family", "Alice"], "has a member 'alice' already"),
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
    # Restarted on its port: one below the ephemeral range, which no outgoing connection
    # takes while the host is down.
    first = await HostProcess(tmp_path / "d").start("--log-format", "json", port=free_port())
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


async def upload(home: str, data: bytes, name: str = "app.xdc") -> tuple[int, dict]:
    """Share `data` from a member's home page (logged in by its link) as the page does:
    the answer's status and JSON."""
    origin = origin_of(home)
    async with web_session() as session:
        async with session.get(home) as response:
            assert response.status == 200
        async with session.post(origin + "/.webxdc-rt/home/share", data=data, headers={
                "Origin": origin, "X-File-Name": name}) as response:
            return response.status, await response.json()


async def test_app_quotas_per_member_chat_and_host_refuse_uploads_and_shares(tmp_path):
    quotas = ("--limit", "home.max_apps_per_member=1", "--limit", "home.max_apps_per_chat=2",
              "--limit", "home.max_stored_apps=3")
    host = await HostProcess(tmp_path / "d").start(*quotas)
    xdc = make_xdc(tmp_path / "small.xdc")
    small = xdc.read_bytes()
    try:
        homes = {}
        for chat, members in (("one", "ann,ben,dan"), ("two", "cid"), ("three", "eve")):
            created = await host.cli("chat", "create", chat, "--members", members, "--json")
            homes |= {link["member"]: link["url"] for link in created.json()["links"]}
        assert (await upload(homes["ann"], small))[0] == 201
        status, answer = await upload(homes["ann"], small)
        assert (status, answer["error"]["code"]) == (403, "member-app-quota")
        assert "member 'ann' has 1 app stored" in answer["error"]["message"]
        assert "home.max_apps_per_member = 1" in answer["error"]["message"]
        assert (await upload(homes["ben"], small))[0] == 201
        status, answer = await upload(homes["dan"], small)
        assert (status, answer["error"]["code"]) == (403, "chat-app-quota")
        assert "chat 'one' has 2 apps stored" in answer["error"]["message"]
        assert_one_line_error(await host.cli("app", "share", "one", str(xdc), "--from", "dan"),
                              "(home.max_apps_per_chat = 2)")
        assert (await upload(homes["cid"], small))[0] == 201
        status, answer = await upload(homes["eve"], small)
        assert (status, answer["error"]["code"]) == (507, "host-app-quota")
        assert "the host has 3 apps stored" in answer["error"]["message"]
        assert_one_line_error(await host.cli("app", "share", "three", str(xdc)),
                              "(home.max_stored_apps = 3)")
        status, body = await host.admin("POST", "/v1/app/share", json={
            "chat": "three", "file_name": "a.xdc",
            "data_base64": base64.b64encode(small).decode()})
        assert (status, json.loads(body)["error"]["code"]) == (507, "host-app-quota")
    finally:
        assert await host.stop() == 0
    # The store counts: a restarted host refuses the same.
    host = await HostProcess(tmp_path / "d").start(*quotas, port=host.port)
    try:
        status, answer = await upload(homes["eve"], small)
        assert (status, answer["error"]["code"]) == (507, "host-app-quota")
        for chat, count in (("one", 2), ("two", 1), ("three", 0)):
            listed = (await host.cli("app", "list", chat, "--json")).json()["apps"]
            assert len(listed) == count
    finally:
        assert await host.stop() == 0


async def test_app_byte_quotas_count_the_stored_archives(tmp_path):
    xdc = make_xdc(tmp_path / "small.xdc")
    size = xdc.stat().st_size
    host = await HostProcess(tmp_path / "d").start(
        "--limit", f"home.max_app_bytes_per_member={2 * size}",
        "--limit", f"home.max_app_bytes_per_chat={3 * size}",
        "--limit", f"home.max_stored_app_bytes={4 * size}")
    try:
        homes = {}
        for chat, members in (("one", "ann,ben"), ("two", "cid")):
            created = await host.cli("chat", "create", chat, "--members", members, "--json")
            homes |= {link["member"]: link["url"] for link in created.json()["links"]}
        for _ in range(2):
            assert (await upload(homes["ann"], xdc.read_bytes()))[0] == 201
        status, answer = await upload(homes["ann"], xdc.read_bytes())
        assert (status, answer["error"]["code"]) == (403, "member-app-quota")
        assert (f"member 'ann' has {2 * size} bytes of apps stored; with these {size} it "
                f"would pass the {2 * size} allowed (home.max_app_bytes_per_member)"
                ) in answer["error"]["message"]
        assert (await host.cli("app", "share", "one", str(xdc), "--from", "ben")).status == 0
        assert_one_line_error(await host.cli("app", "share", "one", str(xdc), "--from", "ben"),
                              "(home.max_app_bytes_per_chat)")
        assert (await upload(homes["cid"], xdc.read_bytes()))[0] == 201
        status, answer = await upload(homes["cid"], xdc.read_bytes())
        assert (status, answer["error"]["code"]) == (507, "host-app-quota")
        assert "(home.max_stored_app_bytes)" in answer["error"]["message"]
    finally:
        assert await host.stop() == 0


# -- the data folder is private --------------------------------------------------------------

async def test_the_data_folder_and_the_database_are_the_users_alone(tmp_path):
    host = await HostProcess(tmp_path / "d").start()
    try:
        await host.cli("chat", "create", "family", "--members", "alice")
        folder = host.data_dir
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        for name in ("webxdc-rt.sqlite3", "webxdc-rt.sqlite3-wal", "webxdc-rt.sqlite3-shm",
                     "admin.sock"):
            assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600, name
    finally:
        assert await host.stop() == 0
    assert "WARNING" not in host.stderr
    # A database opened by path is made the same way, whatever the umask.
    previous = os.umask(0o022)
    try:
        store = SqliteStore(tmp_path / "other.sqlite3")
        store.save_chat(Chat("c", "c"))
        for suffix in ("", "-wal", "-shm"):
            mode = os.stat(tmp_path / f"other.sqlite3{suffix}").st_mode
            assert stat.S_IMODE(mode) == 0o600, suffix
        store.close()
    finally:
        os.umask(previous)


async def test_a_data_folder_others_can_read_is_warned_about_once_and_left_as_it_is(tmp_path):
    folder = tmp_path / "shared folder"
    folder.mkdir()
    folder.chmod(0o755)
    host = await HostProcess(folder).start()
    assert await host.stop() == 0
    warnings = [line for line in host.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, host.stderr
    assert f"chmod 700 '{folder}'" in warnings[0] and "0755" in warnings[0]
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755


# -- names and ids -------------------------------------------------------------------------

async def test_deleting_commands_take_names_and_ids_only_with_id(service, tmp_path):
    created = (await service.cli("chat", "create", "team", "--members", "alice,m1,bob",
                                 "--json")).json()
    assert created["member_ids"][0] == "m1" and created["members"][1] == "m1"
    removed = (await service.cli("member", "remove", "team", "m1", "--json")).json()
    assert removed["removed"] == "m1" and removed["member_id"] != "m1"
    assert (await service.cli("chat", "show", "team", "--json")).json()["members"] == \
        ["alice", "bob"]
    assert_one_line_error(await service.cli("link", "revoke", "team", "m1"), "no member 'm1'")
    revoked = (await service.cli("link", "revoke", "team", "m1", "--id", "--json")).json()
    assert revoked["member"] == "alice"
    removed = (await service.cli("member", "remove", "team", "m1", "--id", "--json")).json()
    assert removed["removed"] == "alice" and removed["member_id"] == "m1"
    # An app named like another copy's id, and a chat named like another chat's id.
    first = (await service.cli("app", "share", "team", PROBE, "--json")).json()
    named = make_xdc(tmp_path / "named.xdc", name=first["id"])
    second = (await service.cli("app", "share", "team", str(named), "--json")).json()
    gone = (await service.cli("app", "remove", "team", first["id"], "--json")).json()
    assert gone["removed"]["id"] == second["id"]
    gone = (await service.cli("app", "remove", "team", first["id"], "--id", "--json")).json()
    assert gone["removed"]["id"] == first["id"]
    team_id = created["id"]
    (await service.cli("chat", "create", team_id, "--json")).json()
    assert_one_line_error(await service.cli("member", "remove", team_id, "bob"),
                          "has no member 'bob'")
    removed = (await service.cli("member", "remove", team_id, "bob", "--chat-id",
                                 "--json")).json()
    assert removed["chat"] == "team"
    deleted = (await service.cli("chat", "delete", team_id, "--json")).json()
    assert deleted["deleted"]["name"] == team_id
    deleted = (await service.cli("chat", "delete", team_id, "--id", "--json")).json()
    assert deleted["deleted"]["name"] == "team"
    assert (await service.cli("chat", "list", "--json")).json()["chats"] == []
    for body in ({"chat": "x", "chat_id": "y", "member": "m1"}, {"member": "m1"}):
        status, answer = await service.admin("POST", "/v1/member/remove", json=body)
        assert status == 400 and "give either 'chat' (a name) or chat_id" in answer.decode()


LOOKALIKES = [
    ("Zoe\u0308", "has a member 'Zoë' already"),  # decomposed: the same name
    ("\u0430lice", "looks like 'alice'"),  # Cyrillic a
    ("\uff41lice", "has a member 'alice' already"),  # fullwidth a
    ("\u3164", "shows nothing"),  # Hangul filler
    ("\u2800", "shows nothing"),  # blank Braille pattern
    ("\u2800\u200b\u3164", "control characters"),
    ("bob\u202e", "control characters"),
]


async def test_names_that_look_like_a_members_or_show_nothing_are_refused(service):
    await service.cli("chat", "create", "c", "--members", "alice,Zo\u00eb")
    for name, fragment in LOOKALIKES:
        assert_one_line_error(await service.cli("member", "add", "c", name), fragment)
    coder = (await service.cli("member", "add", "c", "👩‍💻", "--json")).json()
    assert coder["member"] == "\U0001f469\u200d\U0001f4bb"
    assert_one_line_error(await service.cli("chat", "create", "C"), "already")
    assert_one_line_error(await service.cli("chat", "create", "\u0441"), "looks like 'c'")
    assert (await service.cli("chat", "show", "c", "--json")).json()["members"] == \
        ["alice", "Zoë", "👩‍💻"]


async def test_app_names_reach_the_terminal_escaped_and_bounded(tmp_path):
    # A copy stored by an older version, whose name holds an escape sequence and a newline.
    store = SqliteStore.in_directory(tmp_path / "d")
    registry = store.load_registry()
    store.share(registry, "c", ["alice"], "Evil\x1b[2J\nroot# ", PROBE)
    store.close()
    service = await HostProcess(tmp_path / "d").start()
    try:
        evil = make_xdc(tmp_path / "evil.xdc", name="Evil\\u001b[2J\\nroot# ")
        shared = (await service.cli("app", "share", "c", str(evil), "--json")).json()
        assert shared["name"] == "Evil[2J root#"
        long = make_xdc(tmp_path / "long.xdc", name="x" * 60_000)
        shared = (await service.cli("app", "share", "c", str(long), "--json")).json()
        assert shared["name"] == "x" * 99 + "…"
        apps = (await service.cli("app", "list", "c", "--json")).json()["apps"]
        shown = ["Evil\\x1b[2J\\nroot# ", "Evil[2J root#", "x" * 99 + "…"]
        listed = await service.cli("app", "list", "c")
        assert listed.stdout.splitlines() == [
            f"  {name} ({app['id']}), shared by alice"
            for name, app in zip(shown, apps, strict=True)]
    finally:
        assert await service.stop() == 0


async def test_names_are_kept_as_checked_in_sqlite(tmp_path):
    await names_are_kept_as_checked(lambda: SqliteStore(tmp_path / "db.sqlite3"))
