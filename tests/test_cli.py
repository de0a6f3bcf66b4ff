"""Tests of the `webxdc-rt` command, run as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from peers import joined

from webxdc_rt.cli import example_path
from webxdc_rt.client import InviteRefused, connect
from webxdc_rt.host.app import HostSettings
from webxdc_rt.service.options import UsageError, apply_limits, settable_limits
from webxdc_rt.stores.sqlite import SqliteStore

COMMAND = [sys.executable, "-m", "webxdc_rt"]
EXAMPLE = os.path.join(os.path.dirname(__file__), "apps", "probe")


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """Keep every command's data directory inside the test's own temporary folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def run(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30,
                          **options)


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2
    assert result.stderr.startswith("webxdc-rt: error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr and "Traceback" not in result.stderr


async def test_serve_prints_json_invites_and_stops_on_sigterm():
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "serve", EXAMPLE, "--members", "alice,bob,carol", "--port", "0", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        lines = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
                 for _ in range(3)]
        assert [line["member"] for line in lines] == ["alice", "bob", "carol"]
        assert len({line["self_addr"] for line in lines}) == 3
        alice, bob = await joined(lines[0]["url"]), await joined(lines[1]["url"])
        alice.channel.send(b"over the command line host")
        await bob.got(b"over the command line host")
        assert bob.peer.self_addr == lines[1]["self_addr"]
        await alice.peer.close()
        await bob.peer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(proc.wait(), 20)
    assert status == 0
    stderr = (await proc.stderr.read()).decode()
    assert "Traceback" not in stderr and "stopping" in stderr


def test_serve_prints_plain_links_without_json():
    proc = subprocess.Popen([*COMMAND, "demo", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert [line.split(":", 1)[0] for line in lines] == ["alice", "bob", "carol"]
    assert all("/.webxdc-rt/invite/" in line for line in lines)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr.read()


def test_missing_app_is_a_clear_error():
    result = run("serve", "/no/such/app", "--members", "alice")
    assert result.returncode == 2
    assert result.stderr.strip() == "webxdc-rt: error: app not found: /no/such/app"


def test_taken_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", EXAMPLE, "--members", "alice", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["serve", EXAMPLE, "--members", "alice,,bob"], "--members"),
    (["serve", EXAMPLE, "--members", "a,A"], "listed twice"),
    (["serve", EXAMPLE, "--members", "a", "--port", "70000"], "--port"),
])
def test_bad_options_are_clear_errors(args, fragment):
    result = run(*args)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_argparse_errors_do_not_trace():
    result = run("serve", EXAMPLE)
    assert result.returncode == 2
    assert "--members" in result.stderr and "Traceback" not in result.stderr


def pack_example(tmp_path) -> str:
    xdc = tmp_path / "sketch.xdc"
    root = example_path()
    with zipfile.ZipFile(xdc, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in root.rglob("*"):
            archive.write(path, path.relative_to(root).as_posix())
    return str(xdc)


def serve_once(*args: str) -> list[dict]:
    """Start `serve --json`, read its invites, stop it; return the invites."""
    proc = subprocess.Popen([*COMMAND, "serve", *args, "--port", "0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0, proc.stderr.read()
    return lines


def test_serve_takes_an_xdc_and_keeps_links_across_restarts(tmp_path):
    xdc = pack_example(tmp_path)
    first = serve_once(xdc, "--members", "alice,bob", "--data-dir", str(tmp_path / "d"))
    again = serve_once(xdc, "--members", "alice,bob", "--data-dir", str(tmp_path / "d"))
    assert first[0]["app"] == "Sketch"
    def without_port(url: str) -> str:
        return re.sub(r":\d+/", "/", url)
    assert [without_port(x["url"]) for x in first] == [without_port(x["url"]) for x in again]
    assert [x["self_addr"] for x in first] == [x["self_addr"] for x in again]
    elsewhere = serve_once(xdc, "--members", "alice,bob", "--data-dir", str(tmp_path / "e"))
    assert elsewhere[0]["self_addr"] != first[0]["self_addr"]


async def test_links_of_an_earlier_run_are_refused_by_a_run_with_other_members(tmp_path):
    data = str(tmp_path / "d")
    earlier = serve_once(EXAMPLE, "--members", "alice,bob", "--data-dir", data)
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "serve", EXAMPLE, "--members", "alice,carol", "--data-dir", data,
        "--port", "0", "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        now = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
               for _ in range(2)]
        port = re.search(r":(\d+)/", now[0]["url"]).group(1)
        for old in earlier:  # bob was dropped; alice's old link was for the old chat
            with pytest.raises(InviteRefused):
                await connect(re.sub(r":\d+/", f":{port}/", old["url"], count=1))
        alice, carol = await joined(now[0]["url"]), await joined(now[1]["url"])
        alice.channel.send(b"the current chat")
        await carol.got(b"the current chat")
        await alice.peer.close()
        await carol.peer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert "Traceback" not in (await proc.stderr.read()).decode()


def test_broken_xdc_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.xdc"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    result = run("serve", str(broken), "--members", "alice")
    assert result.returncode == 2
    assert "not a ZIP archive" in result.stderr and "Traceback" not in result.stderr


def test_limits_are_set_by_qualified_name():
    settings = apply_limits(HostSettings(), [
        "realtime.send_items_per_s=5000", "max_connections=7", "updates.interval_ms=250",
        "chat.max_file_bytes=1e6", "chat.max_text_chars=5", "updates.max_text_chars=6",
        "control_per_s = 2.5", "max_headers=10", "max_headers=11"])
    assert settings.realtime.send_items_per_s == 5000.0
    assert settings.max_connections == 7
    assert settings.updates.interval_ms == 250
    assert settings.chat.max_file_bytes == 1_000_000
    assert (settings.chat.max_text_chars, settings.updates.max_text_chars) == (5, 6)
    assert settings.control_per_s == 2.5
    assert settings.max_headers == 11  # the last one wins
    assert settings.realtime.max_payload_bytes == HostSettings().realtime.max_payload_bytes


def test_limits_are_checked_together_whatever_their_order():
    # Each alone breaks "max_frame_bytes must exceed realtime.max_payload_bytes".
    for order in (1, -1):
        settings = apply_limits(HostSettings(), ["realtime.max_payload_bytes=2000000",
                                                 "realtime.send_bytes_burst=2000000",
                                                 "max_frame_bytes=3000000"][::order])
        assert (settings.realtime.max_payload_bytes, settings.max_frame_bytes) == (2_000_000,
                                                                                    3_000_000)


@pytest.mark.parametrize("assignment, message", [
    ("nothing", "--limit expects NAME=VALUE, got 'nothing'"),
    ("max_connections=x", "--limit max_connections: expects a number, got 'x'"),
    ("control_per_s=nan", "--limit control_per_s: expects a number, got 'nan'"),
    ("control_per_s=inf", "--limit control_per_s: expects a number, got 'inf'"),
    ("max_connections=1.5", "--limit max_connections: expects a whole number, got '1.5'"),
    ("realtime.send_items_burst=0",
     "--limit realtime.send_items_burst=0: send_items_burst must be a finite number above 0, "
     "got 0"),
    ("updates.interval_ms=0",
     "--limit updates.interval_ms=0: interval_ms must be a finite number above 0, got 0"),
    ("chat.messages_per_s=-1",
     "--limit chat.messages_per_s=-1: messages_per_s must be a finite number above 0, got -1.0"),
    ("control_per_s=0", "--limit: control_per_s must be a finite number above 0, got 0.0"),
    ("close_grace_s=-1", "--limit: close_grace_s must be a finite number, 0 or above, got -1.0"),
    ("realtime.send_bytes_burst=1000",
     "--limit realtime.send_bytes_burst=1000: send_bytes_burst must be at least "
     "max_payload_bytes"),
    ("realtime.max_payload_bytes=2000000",
     "--limit: max_frame_bytes must exceed realtime.max_payload_bytes plus the 8-byte "
     "stamp of an item"),
])
def test_bad_limit_values_are_refused_with_the_settings_reason(assignment, message):
    with pytest.raises(UsageError) as refused:
        apply_limits(HostSettings(), [assignment])
    assert str(refused.value) == message


@pytest.mark.parametrize("name, hint", [
    ("max_payload_bytes", " (did you mean realtime.max_payload_bytes or "
                          "updates.max_payload_bytes?)"),
    ("send_items_per_s", " (did you mean realtime.send_items_per_s?)"),
    ("domain", ""),  # not numeric: it has its own option
    ("public_port", ""),
    ("realtime.nope", ""),
    ("chat.max_connections", ""),
])
def test_unknown_limit_names_are_refused_with_the_list(name, hint):
    with pytest.raises(UsageError) as refused:
        apply_limits(HostSettings(), [f"{name}=1"])
    assert str(refused.value) == (f"--limit: no setting named {name!r}{hint}; the settings "
                                  f"are: {', '.join(settable_limits())}")


def test_every_numeric_setting_is_settable_and_nothing_else():
    limits = settable_limits()
    assert {"updates.max_payload_bytes", "realtime.max_payload_bytes", "chat.max_text_chars",
            "updates.max_text_chars", "max_connections", "control_per_s"} <= set(limits)
    assert not {"domain", "scheme", "public_port", "realtime", "max_payload_bytes"} & set(limits)
    defaults = HostSettings()
    for limit in limits.values():
        holder = defaults if limit.group is None else getattr(defaults, limit.group)
        assert getattr(holder, limit.field) == limit.default
    assert (limits["realtime.send_bytes_per_s"].kind, limits["max_connections"].kind) == (float,
                                                                                         int)


def bridge_config(invite_url: str, path: str = "/webxdc.js") -> dict:
    """The settings the host's bridge states to the app, fetched as the member's page."""
    parts = urlsplit(invite_url)
    token = parts.path.rsplit("/", 1)[1]
    request = urllib.request.Request(f"http://127.0.0.1:{parts.port}{path}", headers={
        "Host": parts.netloc, "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=20) as response:
        bridge = response.read().decode()
    config, _ = json.JSONDecoder().raw_decode(bridge, bridge.index('{"selfAddr"'))
    return config


def test_limits_given_on_the_command_line_take_effect():
    proc = subprocess.Popen([
        *COMMAND, "serve", EXAMPLE, "--members", "alice", "--port", "0", "--json",
        "--limit", "updates.max_payload_bytes=1000", "--limit", "realtime.max_payload_bytes=2000",
        "--limit", "updates.interval_ms=250", "--limit", "bridge_max_pending_items=7"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        config = bridge_config(json.loads(proc.stdout.readline())["url"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert (config["sendUpdateMaxSize"], config["maxPayloadBytes"]) == (1000, 2000)
    assert (config["sendUpdateInterval"], config["maxPendingItems"]) == (250, 7)



def test_the_listening_socket_takes_the_configured_backlog():
    # The kernel shows a listening socket's backlog as its send queue (`ss -l`): pages
    # reconnecting together after a restart wait there until the host accepts them.
    proc = subprocess.Popen([*COMMAND, "serve", EXAMPLE, "--members", "alice", "--port", "0",
                             "--json", "--limit", "listen_backlog=777"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = urlsplit(json.loads(proc.stdout.readline())["url"]).port
        shown = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                               text=True, check=True).stdout.split()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert shown[2] == "777", shown

@pytest.mark.parametrize("assignment, fragment", [
    ("max_payload_bytes=1000", "no setting named 'max_payload_bytes' (did you mean "
                               "realtime.max_payload_bytes or updates.max_payload_bytes?); "
                               "the settings are: realtime.max_payload_bytes, "),
    ("updates.interval_ms=0", "interval_ms must be a finite number above 0, got 0"),
])
def test_limits_the_settings_refuse_are_clear_errors(assignment, fragment):
    assert_one_line_error(run("serve", EXAMPLE, "--members", "alice", "--port", "0",
                              "--limit", assignment), fragment)


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_help_lists_every_limit_with_its_default(command):
    result = run(command, "--help")
    assert result.returncode == 0
    listed = dict(re.findall(r"(?<=\s)([a-z_.]+)=(\S+)", result.stdout.split("limits, ")[1]))
    limits = settable_limits()
    assert list(listed) == list(limits)
    assert all(float(listed[name]) == limit.default for name, limit in limits.items())
    assert listed["updates.max_payload_bytes"] == "128000"


def test_limits_table_names_every_limit_as_accepted():
    page = (Path(__file__).parent.parent / "docs" / "limits.md").read_text()
    first_column = [line.split("|")[1] for line in page.splitlines() if line.startswith("| `")]
    names = [name for cell in first_column for name in re.findall(r"`([a-z_.]+)`", cell)]
    assert sorted(names) == sorted(settable_limits())


def test_links_for_a_public_deployment_behind_a_proxy():
    proc = subprocess.Popen([*COMMAND, "demo", "--port", "0", "--json", "--domain",
                             "apps.example.org", "--scheme", "https", "--public-port", "443"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = json.loads(proc.stdout.readline())["url"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert re.fullmatch(r"https://[a-z2-7]{16}\.apps\.example\.org/\.webxdc-rt/invite/\S+", url)


def test_deeply_nested_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "index.html").write_text("")
    (tmp_path / "manifest.toml").write_text("name = " + "[" * 5000 + "]" * 5000 + "\n")
    assert_one_line_error(run("serve", str(tmp_path), "--members", "alice"),
                          "manifest.toml is nested too deeply")


def disk_full_for_new_data() -> None:
    """In the child before it runs: any write that makes a file grow fails (EFBIG), as on
    a full disk, instead of killing the process with SIGXFSZ."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def test_full_disk_at_start_is_a_clear_error(tmp_path):
    data_dir = tmp_path / "d"
    # A store that stays open keeps its write-ahead log and shared-memory index in place:
    # the command can open and read the database, and only its first write must grow a file.
    store = SqliteStore.in_directory(data_dir)
    store.share(store.load_registry(), "chat", ["alice"], "Probe", EXAMPLE)
    try:
        result = run("serve", EXAMPLE, "--members", "alice,bob", "--data-dir", str(data_dir),
                     "--port", "0", preexec_fn=disk_full_for_new_data)
    finally:
        store.close()
    assert_one_line_error(result, f"cannot write to the data directory {data_dir}: ")


@pytest.mark.parametrize("spoil, fragment", [
    (lambda d: d.write_text("a file, not a folder"), "cannot open the data directory"),
    (lambda d: (d.mkdir(), (d / "webxdc-rt.sqlite3").write_bytes(b"not SQLite" * 100)),
     "file is not a database"),
])
def test_unusable_data_directory_is_a_clear_error(tmp_path, spoil, fragment):
    spoil(tmp_path / "d")
    assert_one_line_error(run("serve", EXAMPLE, "--members", "alice", "--port", "0",
                              "--data-dir", str(tmp_path / "d")), fragment)


def test_arguments_that_are_not_utf8_are_clear_errors(tmp_path):
    # On POSIX, arguments are bytes; those that are not UTF-8 reach Python as surrogates.
    for extra in ([b"--chat", b"ch\xffat"], [b"--domain", b"ex\xffample.org"],
                  [b"--members", b"al\xffice,bob"]):
        args = [b"serve", EXAMPLE.encode(), b"--members", b"alice,bob", b"--port", b"0",
                b"--data-dir", str(tmp_path / "data").encode(), *extra]
        done = subprocess.run([*COMMAND, *args], capture_output=True, timeout=30)
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (extra, done.stderr[-300:])
        assert lines[0].startswith("webxdc-rt: error:")


async def test_an_app_folder_whose_name_is_not_utf8_is_served(tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"app-\xff")
    os.mkdir(folder)
    with open(os.path.join(folder, b"index.html"), "wb") as page:
        page.write(b"<!doctype html><title>bytes</title>")
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "serve", folder, "--members", "alice,bob", "--port", "0", "--json",
        "--data-dir", str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert line["app"] == "app-\ufffd"
        alice = await joined(line["url"])
        await alice.peer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(proc.wait(), 20)
    assert status == 0
    assert b"Traceback" not in await proc.stderr.read()
