"""`webxdc-rt backup` and `restore` against a real running host, and the SQLite schema's
version: an online copy keeps every acknowledged update, a restore keeps revoked links
refused, a database of the previous release is upgraded and a newer one refused."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hosting import HostProcess, assert_one_line_error, only_new_links_work, web_session
from peers import eventually
from ports import free_port

from webxdc_rt.client import connect
from webxdc_rt.stores.api import StoreError
from webxdc_rt.stores.sqlite import DB_FILE_NAME, SCHEMA_VERSION, SqliteStore

PROBE = str(Path(__file__).parent.parent / "apps" / "probe")
ROOT = Path(__file__).parent.parent.parent
PREVIOUS_RELEASE = "36613d4"
"""The last release whose SQLite database has no schema version."""


async def _chat(service: HostProcess) -> dict[str, str]:
    """A chat of alice and bob with the probe app: each one's page link."""
    await service.cli("chat", "create", "team", "--members", "alice,bob")
    shared = (await service.cli("app", "share", "team", PROBE, "--json")).json()
    return {link["member"]: link["url"] for link in shared["links"]}


async def test_a_backup_under_write_load_restores_every_acknowledged_update(tmp_path):
    # Updates as fast as the host stores them: the rate limit is lifted for the load.
    service = await HostProcess(tmp_path / "d").start("--limit", "updates.burst=1000000")
    try:
        links = await _chat(service)
        alice = await connect(links["alice"])
        acknowledged: list[dict] = []
        await alice.set_update_listener(acknowledged.append, serial=0)
        stop = asyncio.Event()

        async def write() -> None:
            # One update at a time, each sent once the previous one came back stored.
            while not stop.is_set():
                alice.send_update({"payload": {"n": len(acknowledged)}})
                count = len(acknowledged)
                await eventually(lambda count=count: len(acknowledged) > count)

        writer = asyncio.create_task(write())
        await eventually(lambda: len(acknowledged) >= 20)
        before = len(acknowledged)
        made = await service.cli("backup", str(tmp_path / "copy.sqlite3"), "--json")
        assert made.json()["backup"] == str(tmp_path / "copy.sqlite3")
        await eventually(lambda: len(acknowledged) >= before + 10)  # still writing
        stop.set()
        await writer
        await alice.close()
        # A running host refuses a restore over its data folder.
        refused = await service.cli("restore", str(tmp_path / "copy.sqlite3"))
        assert_one_line_error(refused, "another webxdc-rt host is using the data folder")
    finally:
        assert await service.stop() == 0
    restored = await HostProcess(tmp_path / "r").cli("restore", str(tmp_path / "copy.sqlite3"),
                                                     "--json")
    assert restored.json()["links_replaced"] == 2 + 2  # two pages, two home pages
    with sqlite3.connect(tmp_path / "r" / DB_FILE_NAME) as db:
        payloads = [row[0] for row in db.execute("SELECT payload FROM updates ORDER BY serial")]
    kept = [update["payload"] for update in acknowledged[:len(payloads)]]
    assert len(payloads) >= before and [f'{{"n":{p["n"]}}}'.replace(" ", "")
                                         for p in kept] == [p.replace(" ", "") for p in payloads]


async def test_a_restore_after_a_revocation_keeps_the_old_link_refused(tmp_path):
    # Restarted on its port: one below the ephemeral range, which no outgoing connection
    # takes while the host is down.
    service = await HostProcess(tmp_path / "d").start(port=free_port())
    try:
        links = await _chat(service)
        assert (await service.cli("backup", str(tmp_path / "copy"))).status == 0
        await service.cli("link", "revoke", "team", "bob")
    finally:
        assert await service.stop() == 0
    done = await service.cli("restore", str(tmp_path / "copy"))
    assert done.status == 0 and "invite links were replaced" in done.stdout, done.stderr
    again = await HostProcess(tmp_path / "d").start(port=service.port)
    try:
        # bob's link was valid in the backup; it stays refused, as does every old link.
        await only_new_links_work(again, links, "team", "bob")
        async with web_session() as session:
            async with session.get(links["bob"], allow_redirects=False) as response:
                assert response.status == 403
    finally:
        assert await again.stop() == 0


async def test_backup_and_restore_refuse_what_they_cannot_do_in_one_line(tmp_path):
    service = HostProcess(tmp_path / "d")
    assert_one_line_error(await service.cli("restore", str(tmp_path / "missing")),
                          "does not exist")
    (tmp_path / "not-a-db").write_bytes(b"hello" * 100)
    assert_one_line_error(await service.cli("restore", str(tmp_path / "not-a-db")),
                          "restore: ")
    SqliteStore.in_directory(tmp_path / "d").close()
    (tmp_path / "taken").write_bytes(b"")
    assert_one_line_error(await service.cli("backup", str(tmp_path / "taken")), "exists")


def _previous_release_schema() -> str:
    source = subprocess.run(["git", "-C", str(ROOT), "show",
                             f"{PREVIOUS_RELEASE}:src/webxdc_rt/store.py"],
                            capture_output=True, text=True, check=False)
    if source.returncode != 0:
        pytest.skip(f"the previous release {PREVIOUS_RELEASE} is not in this clone's history")
    namespace: dict = {}
    start = source.stdout.index('SCHEMA = """')
    exec(source.stdout[start:source.stdout.index('"""\n', start + 12) + 3], namespace)
    return namespace["SCHEMA"]


def test_a_database_of_the_previous_release_is_upgraded_in_place(tmp_path):
    path = tmp_path / DB_FILE_NAME
    with sqlite3.connect(path) as db:
        db.executescript(_previous_release_schema())
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("INSERT INTO meta VALUES ('secret', ?)", (b"s" * 32,))
        db.execute("""INSERT INTO chats VALUES ('c1', 'team',
                      '[{"id": "m-1", "name": "alice"}]')""")
    store = SqliteStore(path)
    try:
        registry = store.load_registry()
        assert [chat.name for chat in registry.chats.values()] == ["team"]
        assert store.secret() == b"s" * 32
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_database_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "d"
    SqliteStore.in_directory(folder).close()
    with sqlite3.connect(folder / DB_FILE_NAME) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError) as refused:
        SqliteStore.in_directory(folder)
    assert refused.value.code == "too-new"
    done = subprocess.run([sys.executable, "-m", "webxdc_rt", "host", "--data-dir",
                           str(folder), "--port", "0"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this webxdc-rt" in done.stderr


async def test_a_restore_is_refused_while_any_process_has_the_database_open(tmp_path):
    folder = tmp_path / "d"
    store = SqliteStore.in_directory(folder)  # as `serve` holds it: no admin socket
    try:
        store.load_registry()
        copy = await HostProcess(folder).cli("backup", str(tmp_path / "copy"))
        assert copy.status == 0, copy.stderr
        refused = await HostProcess(folder).cli("restore", str(tmp_path / "copy"))
        assert_one_line_error(refused, "has " + str(folder / DB_FILE_NAME) + " open")
    finally:
        store.close()
    assert (await HostProcess(folder).cli("restore", str(tmp_path / "copy"))).status == 0
