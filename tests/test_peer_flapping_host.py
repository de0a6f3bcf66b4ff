"""A reconnecting Python peer against a host that opens every link and closes it at once
(1012, a host restarting in a loop or shedding load): the waits between attempts keep
growing as for a host that cannot be reached, rather than starting again from the first
wait after each link that opened, which dialled such a host ten times a second for ever
and sent every update not confirmed stored each time."""

from __future__ import annotations

import time

from aiohttp import web
from peers import eventually

from webxdc_rt.client import Reconnect, connect
from webxdc_rt.core import wire

HELLO = wire.encode_hello("addr", "name", wire.HelloLimits(128000, 100.0, 100, 1e6, 10**6,
                                                           receive_window_bytes=10**6,
                                                           max_item_age_ms=2000.0),
                          time.time() * 1000)


async def test_a_host_that_closes_every_link_at_once_is_dialled_with_growing_waits():
    opened: list[float] = []

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        opened.append(time.monotonic())
        await ws.send_str(HELLO)
        await ws.close(code=1012, message=b"restarting")
        return ws

    app = web.Application()
    app.router.add_get("/.webxdc-rt/socket", socket)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    policy = Reconnect(first_delay_s=0.01, max_delay_s=0.32, jitter=0)
    peer = await connect(f"http://127.0.0.1:{port}/.webxdc-rt/invite/token",
                         reconnect=policy)
    try:
        await eventually(lambda: len(opened) >= 8, timeout=30)
        # Links 2 to 8 each came after a wait: 0.01, 0.02, ... 0.32, 0.32 s at least, had
        # the waits grown; 0.01 s each had they started again after every link.
        assert opened[7] - opened[0] >= 0.01 + 0.02 + 0.04 + 0.08 + 0.16 + 0.32 + 0.32
    finally:
        await peer.close()
        await runner.cleanup()
