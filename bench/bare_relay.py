"""The floor of the stack: the smallest aiohttp WebSocket server that forwards each binary
message to every other connection, with none of webxdc-rt's rules (no auth, no channels, no
limits, no bounded queues).

    python bench/bare_relay.py PORT [--loop asyncio|uvloop]

Prints `ready <port>` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import WSMsgType, web

clients: set[web.WebSocketResponse] = set()


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    clients.add(ws)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                for other in clients:
                    if other is not ws:
                        await other.send_bytes(msg.data)
    finally:
        clients.discard(ws)
    return ws


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_get("/", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"ready {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop
        uvloop.install()
    try:
        asyncio.run(main(args.port))
    except KeyboardInterrupt:
        sys.exit(0)
