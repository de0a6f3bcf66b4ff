"""What the host pays to decode and check one control message, typical and worst cases.

    .venv/bin/python bench/wire_decode.py [--rounds N] [--compare-with GIT_REV]

For each case: its size and the best per-call time of `decode_client_message` (or
`decode_host_message`, for frames the Python peer reads) over N rounds. With
`--compare-with`, the `wire` of that revision is timed too, interleaved round by round
with the current one so that a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import base64
import functools
import importlib
import io
import json
import random
import subprocess
import sys
import tarfile
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from webxdc_rt.core import wire

MiB = 1024 * 1024


def _fill(prefix: str, suffix: str, unit: str, limit: int = MiB) -> str:
    """`prefix + unit * n + suffix` with n as large as fits in `limit` bytes."""
    room = limit - len((prefix + suffix).encode())
    return prefix + unit * (room // len(unit.encode())) + suffix


def cases() -> list[tuple[str, bool, str]]:
    """(name, whether the host reads it (else the Python peer), text) for each case."""
    rng = random.Random(1)
    points = [[round(rng.uniform(0, 2000), 2), round(rng.uniform(0, 2000), 2)]
              for _ in range(7000)]
    stroke = json.dumps({"payload": {"points": points}}, separators=(",", ":"))
    file_b64 = base64.b64encode(rng.randbytes(600_000)).decode()
    chat = json.dumps({"type": "send-to-chat", "id": 1, "text": "",
                       "file": {"name": "f.bin", "base64": file_b64}})
    return [
        ("join", True, '{"type":"join","epoch":1}'),
        ("small update", True, json.dumps({"type": "update-send", "update": {
            "payload": {"x": 12.5, "y": 3.25, "who": "a1b2c3"}, "info": "Alice moved"}})),
        ("small update with an id", True, json.dumps({"type": "update-send", "update": {
            "payload": {"x": 12.5, "y": 3.25, "who": "a1b2c3"}, "info": "Alice moved"},
            "id": "Yx3kQ9pL2mN8vR4tW6zB1c"})),
        ("small update, non-ASCII", True, json.dumps({"type": "update-send", "update": {
            "payload": {"text": "سلام دنیا 😀"}, "info": "پیام"}}, ensure_ascii=False)),
        ("128 kB update of numbers", True, '{"type":"update-send","update":' + stroke + "}"),
        ("1 MiB sendToChat (base64 file)", True, _fill(chat[:-3], '"}}', "A")),
        ("1 MiB text, non-ASCII", True,
         _fill('{"type":"send-to-chat","id":1,"text":"', '"}', "سلام ")),
        ("1 MiB text, escaped emoji", True,
         _fill('{"type":"send-to-chat","id":1,"text":"', '"}', "\\ud83d\\ude00 ")),
        ("1 MiB of numbers", True,
         _fill('{"type":"update-send","update":{"payload":[', '0]}}', "1234.5,")),
        ("1 MiB of empty lists", True,
         _fill('{"type":"update-send","update":{"payload":[', '[]]}}', "[],")),
        ("peer: 128 kB update", False, '{"type":"update","listen":1,"update":'
         + stroke[:-1] + ',"serial":5,"max_serial":9}}'),
    ]


def wire_of(revision: str) -> ModuleType:
    """The `wire` module (or package) as it was at a git revision, imported from a copy of
    that revision's package renamed `webxdc_rt_then`."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "archive", revision, "src/webxdc_rt"], cwd=root,
                             check=True, capture_output=True).stdout
    folder = Path(tempfile.mkdtemp())
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "src" / "webxdc_rt").rename(folder / "webxdc_rt_then")
    sys.path.insert(0, str(folder))
    try:  # the package's place before and after it moved into `core`
        return importlib.import_module("webxdc_rt_then.core.wire")
    except ModuleNotFoundError:
        return importlib.import_module("webxdc_rt_then.wire")


def _shown(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--compare-with", metavar="GIT_REV")
    args = parser.parse_args()
    modules = {"now": wire}
    if args.compare_with:
        modules = {args.compare_with: wire_of(args.compare_with), "now": wire}
    print(f"{'case':32} {'bytes':>9}" + "".join(f" {name:>12}" for name in modules))
    for name, from_client, text in cases():
        decoders: dict[str, Callable[[], object]] = {}
        for label, module in modules.items():
            decode = module.decode_client_message if from_client else module.decode_host_message
            decode(text)  # must be accepted: the cases are honest, only large
            decoders[label] = functools.partial(decode, text)
        calls = max(1, int(2e5 // max(len(text), 1000)))
        best = dict.fromkeys(decoders, float("inf"))
        for _ in range(args.rounds):
            for label, call in decoders.items():
                best[label] = min(best[label], timeit.timeit(call, number=calls) / calls)
        row = f"{name:32} {len(text.encode()):>9}" + "".join(
            f" {_shown(seconds):>12}" for seconds in best.values())
        if len(best) == 2:
            then, now = best.values()
            row += f" {now / then - 1:+6.0%}"
        print(row)


if __name__ == "__main__":
    main()
