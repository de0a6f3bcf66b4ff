#!/usr/bin/env python3
"""What refusing a hostile `.xdc` costs: wall time and peak memory of `open_app` on each
archive below, each opened in a fresh interpreter.

    .venv/bin/python bench/hostile_containers.py [--xdc FILE] [--only NAME,...]

The archives, built in a temporary folder (about 120 MB of disk, removed afterwards):
- `zeros-255`: 255 files of 1 MiB of zeros (about 290 kB on disk),
- `zeros-1`: one file of 1 MiB of zeros,
- `entries-300k`: a central directory of 300,000 empty entries (ZIP64 end records),
- `manifest-60M`: a 60 MB `manifest.toml` of valid TOML (3,000,000 keys),
- `manifest-deep`: a `manifest.toml` nesting arrays 5,000 deep.
Peak memory is the child's VmHWM (its own address space only, interpreter included); time
is that of `open_app` alone, measured in the child. `--xdc FILE` measures
another copy of `xdc.py` (it imports only the standard library), e.g. an older one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

MiB = 1024 * 1024

CHILD = """
import importlib.util, json, re, sys, time
if sys.argv[1]:
    spec = importlib.util.spec_from_file_location("xdc_under_test", sys.argv[1])
    xdc = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(xdc)
else:
    import webxdc_rt.model.xdc as xdc
imported = time.perf_counter()
outcome = "accepted"
if sys.argv[2]:
    try:
        xdc.open_app(sys.argv[2])
    except xdc.InvalidContainer as exc:
        outcome = "refused: " + str(exc).split(": ", 1)[-1]
    except BaseException as exc:
        outcome = f"crashed: {type(exc).__name__}"
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\\s*(\\d+) kB", status)[1])
print(json.dumps([outcome, time.perf_counter() - imported, peak]))
"""


def _entries_300k(path: Path) -> None:
    entry = struct.Struct("<4s6H3L5H2L")
    count = 300_000
    directory = b"".join(entry.pack(b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, 0, 0, 0, 7, 0, 0,
                                    0, 0, 0, 0) + b"%07d" % i for i in range(count))
    end64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count,
                        len(directory), 0)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(directory), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                      0xFFFFFFFF, 0)
    path.write_bytes(directory + end64 + locator + end)


def _zip(entries: Callable[[], dict[str, bytes | str]]) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries().items():
                archive.writestr(name, data)
    return build


ARCHIVES: dict[str, Callable[[Path], None]] = {
    "zeros-255": _zip(lambda: {"index.html": "", **{f"z{i}": bytes(MiB) for i in range(255)}}),
    "zeros-1": _zip(lambda: {"index.html": "", "zeros": bytes(MiB)}),
    "entries-300k": _entries_300k,
    "manifest-60M": _zip(lambda: {"index.html": "", "manifest.toml": 'name = "Big"\n' + "".join(
        f"k{i:07d} = \"{i:06d}\"\n" for i in range(3_000_000))}),
    "manifest-deep": _zip(lambda: {"index.html": "",
                                   "manifest.toml": "a = " + "[" * 5000 + "]" * 5000}),
}


def _run_child(module: str, archive: str) -> tuple[str, float, int]:
    result = subprocess.run([sys.executable, "-c", CHILD, module, archive],
                            capture_output=True, text=True, timeout=600, check=True)
    outcome, seconds, peak_kib = json.loads(result.stdout)
    return outcome, seconds, peak_kib * 1024


def main() -> None:
    """Build each archive, open it in a fresh interpreter, print time and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--xdc", default="", metavar="FILE",
                        help="an xdc.py to measure instead of the installed webxdc_rt.xdc")
    parser.add_argument("--only", default="", metavar="NAMES",
                        help=f"comma-separated subset of {','.join(ARCHIVES)}")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(ARCHIVES)
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]))
    _, _, baseline = _run_child(args.xdc, "")
    print(f"an interpreter that imports the module: {baseline / MiB:.0f} MiB peak")
    print(f"{'archive':<15}{'size':>11}{'seconds':>9}{'peak MiB':>10}  outcome")
    with tempfile.TemporaryDirectory(prefix="webxdc-rt-bench-") as scratch:
        for name in names:
            path = Path(scratch) / f"{name}.xdc"
            ARCHIVES[name](path)
            outcome, seconds, peak = _run_child(args.xdc, str(path))
            print(f"{name:<15}{path.stat().st_size:>11,}{seconds:>9.2f}{peak / MiB:>10.0f}  "
                  f"{outcome[:90]}")
            path.unlink()


if __name__ == "__main__":
    main()
