#!/usr/bin/env python3
"""Kernel memory held for WebSockets whose reader stopped.

    PYTHONPATH=src python bench/stalled_sockets.py [--stall-timeout S] [--wait S]

A host in this process (default settings; `delivery.stall_timeout_s` as given); 16
sockets of one member join the channel and never read while another member sends 300
realtime items of 128,000 bytes (38 MB). After `--wait` seconds, `ss -tmi` reports the
host's side of every connection: its send queue (`wmem_queued`), send buffer (`sndbuf`)
and receive queue. (aiohttp's client stops reading from its socket once 64 KiB wait
unread in it: a socket nobody calls `receive` on is a reader that stopped.)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
from pathlib import Path

import aiohttp
from aiohttp import web

from webxdc_rt.client import connect
from webxdc_rt.core.delivery import DeliveryLimits
from webxdc_rt.host.app import Host, HostSettings
from webxdc_rt.model.xdc import open_app
from webxdc_rt.stores.sqlite import Store

APP = Path(__file__).resolve().parent.parent / "tests" / "apps" / "probe"
STALLED = 16
_SKMEM = re.compile(r"skmem:\(r(\d+),rb(\d+),t(\d+),tb(\d+),f(\d+),w(\d+)")


async def stalled_socket(session: aiohttp.ClientSession, port: int, label: str,
                         token: str) -> aiohttp.ClientWebSocketResponse:
    """A WebSocket that joins its channel and is never read."""
    ws = await session.ws_connect(f"ws://127.0.0.1:{port}/.webxdc-rt/socket",
                                  headers={"Host": f"{label}.localhost:{port}",
                                           "Authorization": f"Bearer {token}"})
    await ws.send_str('{"type":"join","epoch":1}')
    return ws


def host_side(port: int) -> list[tuple[int, int, int]]:
    """(receive queue, send buffer, send queue) in bytes of each connection to `port`."""
    out = subprocess.run(["ss", "-tmiH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return [(int(m[0]), int(m[3]), int(m[5])) for m in _SKMEM.findall(out)]


async def main(args: argparse.Namespace) -> None:
    store = Store()
    registry = store.load_registry()
    source = open_app(APP)
    settings = HostSettings()
    if args.stall_timeout is not None:
        settings = HostSettings(delivery=DeliveryLimits(stall_timeout_s=args.stall_timeout))
    host = Host(registry, {}, settings, store=store)
    chat = registry.create_chat("c", ["alice", "mallory"])
    alice, mallory = registry.share_app(chat, source.name, source.key)
    host.sources[alice.app.id] = source
    runner = host.runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    session = aiohttp.ClientSession()
    stalled = [await stalled_socket(session, port, mallory.label, mallory.token)
               for _ in range(STALLED)]
    peer = await connect(host.invite_url(alice, port))
    channel = peer.join_realtime_channel()
    await channel.joined()
    for _ in range(300):
        channel.send(bytes(128_000))
        await peer.drain()
    await asyncio.sleep(args.wait)
    connections = host_side(port)
    sockets = sorted(connections, key=lambda s: -s[2])[:STALLED]
    held = sum(rq + wq for rq, _, wq in sockets)
    print(f"{len(connections) - 1} stalled sockets open after {args.wait} s; "
          f"send queue a socket avg {held / max(len(sockets), 1) / 1e6:.2f} MB "
          f"(sndbuf {max((tb for _, tb, _ in sockets), default=0) / 1e6:.2f} MB); "
          f"{held / 1e6:.1f} MB in all")
    del stalled
    await session.close()  # drops the stalled sockets without a close handshake
    await peer.close()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stall-timeout", type=float, default=None)
    parser.add_argument("--wait", type=float, default=3.0)
    asyncio.run(main(parser.parse_args()))
