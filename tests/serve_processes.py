"""`webxdc-rt serve` processes for tests that run several of them on one data folder and
one Redis (the same chat, invite tokens and `selfAddr`s on every one)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from ports import free_port

APP = Path(__file__).parent / "apps" / "probe"
MEMBERS = ["alice", "bob", "carol", "dave"]


class ServeProcess:
    """One `webxdc-rt serve` process: its invite links by member, its stderr in a file;
    `options` are more of the command's options (`--limit`)."""

    def __init__(self, folder: Path, data_dir: Path, broker_url: str, chat: str = "chat",
                 app: Path = APP, options: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.log = folder / f"host-{free_port()}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webxdc_rt", "serve", str(app), "--members",
             ",".join(MEMBERS), "--port", "0", "--json", "--data-dir", str(data_dir),
             "--chat", chat, "--broker", broker_url, *options],
            stdout=subprocess.PIPE, stderr=self.log.open("wb"), text=True)
        assert self.process.stdout is not None
        lines = [self.process.stdout.readline() for _ in MEMBERS]
        if not all(lines):
            self.process.wait()
            raise AssertionError(f"serve did not start: {self.log.read_text()}")
        self.invites = [json.loads(line) for line in lines]
        self.urls = {line["member"]: line["url"] for line in self.invites}

    def url(self, member: str) -> str:
        return self.urls[member]

    def stderr_lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def warnings(self, fragment: str) -> list[str]:
        return [line for line in self.stderr_lines() if fragment in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
