"""What the host pays to decode and check one control message, typical and worst cases.

    .venv/bin/python bench/wire_decode.py [--repeat N]

Prints, for each case, its size and the best per-call time of `decode_client_message` (or
`decode_host_message` for frames the Python peer reads) over N rounds.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import timeit
from collections.abc import Callable

from webxdc_rt import wire

MiB = 1024 * 1024


def _fill(prefix: str, suffix: str, unit: str, limit: int = MiB) -> str:
    """`prefix + unit * n + suffix` with n as large as fits in `limit` bytes."""
    room = limit - len((prefix + suffix).encode())
    return prefix + unit * (room // len(unit.encode())) + suffix


def cases() -> list[tuple[str, Callable[[str], object], str]]:
    """(name, decoder, text) for each case measured."""
    rng = random.Random(1)
    client, host = wire.decode_client_message, wire.decode_host_message
    points = [[round(rng.uniform(0, 2000), 2), round(rng.uniform(0, 2000), 2)]
              for _ in range(7000)]
    stroke = json.dumps({"type": "update-send", "update": {"payload": {"points": points}}},
                        separators=(",", ":"))
    file_b64 = base64.b64encode(rng.randbytes(600_000)).decode()
    chat = json.dumps({"type": "send-to-chat", "id": 1, "text": "",
                       "file": {"name": "f.bin", "base64": file_b64}})
    return [
        ("join", client, '{"type":"join","epoch":1}'),
        ("small update", client, json.dumps({"type": "update-send", "update": {
            "payload": {"x": 12.5, "y": 3.25, "who": "a1b2c3"}, "info": "Alice moved"}})),
        ("small update, non-ASCII", client, json.dumps({"type": "update-send", "update": {
            "payload": {"text": "سلام دنیا 😀"}, "info": "پیام"}}, ensure_ascii=False)),
        ("128 kB update of numbers", client, stroke),
        ("1 MiB sendToChat (base64 file)", client, _fill(chat[:-3], '"}}', "A")),
        ("1 MiB text, non-ASCII", client,
         _fill('{"type":"send-to-chat","id":1,"text":"', '"}', "سلام ")),
        ("1 MiB text, escaped emoji", client,
         _fill('{"type":"send-to-chat","id":1,"text":"', '"}', "\\ud83d\\ude00 ")),
        ("1 MiB of numbers", client,
         _fill('{"type":"update-send","update":{"payload":[', '0]}}', "1234.5,")),
        ("1 MiB of empty lists", client,
         _fill('{"type":"update-send","update":{"payload":[', '[]]}}', "[],")),
        ("host: 128 kB update", host, '{"type":"update","listen":1,"update":'
         + stroke[len('{"type":"update-send","update":'):-1][:-1]
         + ',"serial":5,"max_serial":9}}'),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{'case':34} {'bytes':>9} {'per call':>12}")
    for name, decode, text in cases():
        decode(text)  # must be accepted: the cases are honest, only large
        calls = max(1, int(2e5 // max(len(text), 1000)))
        best = min(timeit.repeat(lambda: decode(text), number=calls, repeat=args.repeat))
        per_call = best / calls
        shown = f"{per_call * 1e6:.2f} µs" if per_call < 1e-3 else f"{per_call * 1e3:.2f} ms"
        print(f"{name:34} {len(text.encode()):>9} {shown:>12}")


if __name__ == "__main__":
    main()
