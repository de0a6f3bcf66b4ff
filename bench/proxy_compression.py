"""What a page's WebSocket puts on the wire through the dev-server proxy, against what the
dev server receives: a page that gets `permessage-deflate` can send 16 MiB of zeros in 16 kB.

    .venv/bin/python bench/proxy_compression.py [--messages N]

A dev server that offers compression stands behind `Simulator(URL)`; one peer's socket
offers it too and sends N messages of 16 MiB of zeros.
"""

from __future__ import annotations

import argparse
import asyncio
import zlib

import aiohttp
from aiohttp import web

from webxdc_rt.dev.simulator import Simulator

MESSAGE = bytes(16 * 1024 * 1024 - 1024)


def deflated_size(data: bytes) -> int:
    """Bytes of `data` as one permessage-deflate message (RFC 7692: raw deflate, sync flush)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return len(compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)) - 4


async def run(messages: int) -> None:
    """Send `messages` through the proxy and print the bytes on each side."""
    received = 0
    done = asyncio.Event()

    async def dev_server(request: web.Request) -> web.StreamResponse:
        nonlocal received
        ws = web.WebSocketResponse(compress=True, max_msg_size=0)
        await ws.prepare(request)
        async for message in ws:
            received += len(message.data)
            if received >= messages * len(MESSAGE):
                done.set()
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", dev_server)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    async with Simulator(f"http://127.0.0.1:{runner.addresses[0][1]}", 1) as simulator:
        info = simulator.peer("alice")
        page = simulator.host.registry.page(info.label)
        assert page is not None
        headers = {"Host": f"{info.label}.sim.localhost:{simulator.port}",
                   "Authorization": f"Bearer {page.token}"}
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{simulator.port}/hmr",
                                          headers=headers, compress=15, max_msg_size=0) as ws:
                for _ in range(messages):
                    await ws.send_bytes(MESSAGE)
                await asyncio.wait_for(done.wait(), 120)
                per_message = deflated_size(MESSAGE) if ws.compress else len(MESSAGE)
    await runner.cleanup()
    wire = messages * per_message
    print(f"compression negotiated: {'yes' if ws.compress else 'no'}; "
          f"on the wire {wire / 1e6:.2f} MB; the dev server received {received / 1e6:.1f} MB "
          f"({received / wire:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    asyncio.run(run(parser.parse_args().messages))


if __name__ == "__main__":
    main()
