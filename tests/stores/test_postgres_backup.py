"""The PostgreSQL procedures of docs/deploy.md, run as written against a real server: the
role and database made with createuser/createdb, the password from PGPASSWORD, a pg_dump
taken while a host runs, pg_restore and docs/deploy/rotate-links.sql, after which a link
revoked after the dump stays refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hosting import HostProcess, only_new_links_work
from pg_server import _bin

ROTATE = Path(__file__).parent.parent.parent / "docs" / "deploy" / "rotate-links.sql"
PROBE = str(Path(__file__).parent.parent / "apps" / "probe")


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


async def test_pg_dump_restore_and_rotation_keep_a_revoked_link_refused(
        tmp_path, postgres_server, monkeypatch):
    server = ["-h", "127.0.0.1", "-p", str(postgres_server.port), "-U", "postgres"]
    _run(_bin("createuser"), *server, "webxdc")
    _run(_bin("createdb"), *server, "-O", "webxdc", "webxdc_ops")
    url = f"postgresql://webxdc@127.0.0.1:{postgres_server.port}/webxdc_ops"
    monkeypatch.setenv("PGPASSWORD", "kept-out-of-the-command-line")
    host = await HostProcess(tmp_path / "d").start("--store", url)
    try:
        await host.cli("chat", "create", "team", "--members", "alice,bob")
        shared = (await host.cli("app", "share", "team", PROBE, "--json")).json()
        old = {link["member"]: link["url"] for link in shared["links"]}
        _run(_bin("pg_dump"), "--format=custom", f"--file={tmp_path / 'dump'}", url)
        await host.cli("link", "revoke", "team", "bob")
    finally:
        assert await host.stop() == 0
    _run(_bin("pg_restore"), "--clean", "--if-exists", "--single-transaction",
         f"--dbname={url}", str(tmp_path / "dump"))
    _run(_bin("psql"), "-v", "ON_ERROR_STOP=1", "-q", "-f", str(ROTATE), url)
    again = await HostProcess(tmp_path / "d").start("--store", url, port=host.port)
    try:
        await only_new_links_work(again, old, "team", "bob")
    finally:
        assert await again.stop() == 0
