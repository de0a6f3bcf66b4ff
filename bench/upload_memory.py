#!/usr/bin/env python3
"""What uploaded apps cost a running host in memory: its RSS (VmRSS of the host process)
before and after members share `.xdc` files from their home pages, and after a restart over
the store that holds them.

    PYTHONPATH=src .venv/bin/python bench/upload_memory.py [--archive NAME] [--uploads N]

`webxdc-rt host` runs on a temporary data folder (the `webxdc_rt` that PYTHONPATH finds, so
an older tree can be measured with the same script); chats of 10 members are created, each
member uploads one app over HTTP as the home page does (each a different archive: their
random bytes differ), and the host's VmRSS is read from /proc after each upload and once the
restarted host serves. The archives:
- `salted`: 3,900 files of 64 KiB, each 400 random bytes then zeros (about 130:1 each, so
  within every ratio): 2 MB that expand to 255 MB,
- `padded`: 3,900 files of 64 KiB of zeros (small enough to be let off the ratio one by one)
  and 1 MB of random bytes that keeps the whole archive under 200:1: 1.3 MB, 255 MB expanded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

KiB = 1024
MEMBERS_PER_CHAT = 10


def archive(kind: str, path: Path) -> Path:
    """The `.xdc` `kind` (see the module docstring) written at `path`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as xdc:
        xdc.writestr("index.html", "<p>memory</p>")
        for i in range(3900):
            head = os.urandom(400) if kind == "salted" else b""
            xdc.writestr(f"z/{i}", head + bytes(64 * KiB - len(head)))
        if kind == "padded":
            xdc.writestr("padding.bin", os.urandom(1_000_000), zipfile.ZIP_STORED)
    return path


def rss_mib(pid: int) -> float:
    """VmRSS of process `pid`, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s*(\d+) kB", status)[1]) / 1024  # type: ignore[index]


def start(data_dir: Path, port: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    """`webxdc-rt host` on `data_dir`, once it serves; the process and its port."""
    proc = subprocess.Popen([sys.executable, "-m", "webxdc_rt", "host", "--data-dir",
                             str(data_dir), "--port", str(port), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["port"]


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the host and wait for it."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def home_links(data_dir: Path, chat: str, members: list[str]) -> list[str]:
    """A new chat's home page links, by the management command."""
    done = subprocess.run([sys.executable, "-m", "webxdc_rt", "chat", "create", chat,
                           "--members", ",".join(members), "--data-dir", str(data_dir),
                           "--json"], capture_output=True, check=True, text=True)
    return [link["url"] for link in json.loads(done.stdout)["links"]]


def upload(home: str, port: int, data: bytes) -> tuple[int, str]:
    """Share `data` from the home page `home` as a program may (its token as Bearer, on a
    connection that loaded the page first, as a browser's does); the answer's status and
    body."""
    parts = urlsplit(home)
    headers = {"Host": parts.netloc, "Authorization": f"Bearer {parts.path.rsplit('/', 1)[-1]}"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", "/", headers=headers)
    connection.getresponse().read()
    connection.request("POST", "/.webxdc-rt/home/share", body=data, headers={
        **headers, "Origin": f"{parts.scheme}://{parts.netloc}", "X-File-Name": "memory.xdc"})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", choices=("salted", "padded"), default="salted")
    parser.add_argument("--uploads", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        data_dir = Path(temp) / "data"
        size = len(archive(args.archive, Path(temp) / "app.xdc").read_bytes())
        print(f"archive {args.archive}: {size} bytes, {args.uploads} uploads")
        proc, port = start(data_dir)
        try:
            homes: list[str] = []
            for chat in range(-(-args.uploads // MEMBERS_PER_CHAT)):
                homes += home_links(data_dir, f"chat{chat}",
                                    [f"m{i}" for i in range(MEMBERS_PER_CHAT)])
            started = rss_mib(proc.pid)
            print(f"host serving, no app: VmRSS {started:.0f} MiB")
            for done, home in enumerate(homes[:args.uploads], 1):
                data = archive(args.archive, Path(temp) / "app.xdc").read_bytes()
                began = time.perf_counter()
                status, body = upload(home, port, data)
                took = time.perf_counter() - began
                if status != 201:
                    print(f"upload {done}: {status} {body}")
                    break
                print(f"upload {done}: {status} in {took:.2f} s, VmRSS {rss_mib(proc.pid):.0f}"
                      f" MiB (+{rss_mib(proc.pid) - started:.0f})")
        finally:
            stop(proc)
        began = time.perf_counter()
        proc, _ = start(data_dir, port)
        took = time.perf_counter() - began
        try:
            print(f"restarted over the store: serving after {took:.1f} s, VmRSS "
                  f"{rss_mib(proc.pid):.0f} MiB")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
