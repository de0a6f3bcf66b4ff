"""The page's cookie cannot be shadowed: under a shared domain (`--domain apps.example.org`,
every page a sibling origin `<label>.apps.example.org`) any page may set a cookie of the same
name for the whole domain (`Domain=apps.example.org`), and the browser then sends both. The
host tries every value and takes the one valid for the origin asked, so such a cookie locks
nobody out; over https the cookie is a `__Host-` one. Over real sockets, with the `Cookie`
headers a browser sends (the tossed value before and after the real one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from peers import HANG_S

from webxdc_rt.host.app import Host, HostSettings
from webxdc_rt.service.home import HomeSite
from webxdc_rt.service.manage import Manager
from webxdc_rt.stores.sqlite import SqliteStore
from webxdc_rt.testing import Simulation

DOMAIN = "apps.example.org"
PROBE_APP = Path(__file__).parent.parent / "apps" / "probe"


def both_orders(name: str, real: str, tossed: str) -> list[str]:
    """The `Cookie` header with a tossed value before, and after, the real one."""
    return [f"{name}={tossed}; {name}={real}", f"{name}={real}; other=1; {name}={tossed}"]


async def status(port: int, host: str, path: str, *cookies: str,
                 extra: dict[str, str] | None = None) -> int:
    """The status of a GET for `path` at origin `host`, with these `Cookie` header lines."""
    headers: CIMultiDict[str] = CIMultiDict({"Host": f"{host}:{port}", **(extra or {})})
    for line in cookies:
        headers.add("Cookie", line)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers,
                               allow_redirects=False) as response:
            await response.read()
            return response.status


async def test_a_domain_cookie_from_a_sibling_page_locks_no_page_out(hosts):
    live = await hosts(HostSettings(domain=DOMAIN))
    live.share(["alice", "mallory"])
    alice, mallory = live.last_pages
    port, origin = live.port, f"{alice.label}.{DOMAIN}"
    # Any value: junk, or mallory's own valid token (valid for her page, not alice's).
    for tossed in ("x", mallory.token):
        for header in both_orders("webxdc_rt", alice.token, tossed):
            for path in ("/", "/webxdc.js", "/data.txt"):
                assert await status(port, origin, path, header) == 200, (header, path)
    # A proxy may pass the pairs on in several `Cookie` lines (HTTP/2 does).
    assert await status(port, origin, "/", "webxdc_rt=x", f"webxdc_rt={alice.token}") == 200
    # Values no invite ever sets are passed over, not fatal.
    odd = f'webxdc_rt="{alice.token}"; webxdc_rt=a b; webxdc_rt; webxdc_rt={alice.token}'
    assert await status(port, origin, "/", odd) == 200
    # The Python peer shows a bearer token: a cookie beside it changes nothing.
    bearer = {"Authorization": f"Bearer {alice.token}"}
    assert await status(port, origin, "/webxdc.js", "webxdc_rt=x", extra=bearer) == 200


async def test_the_socket_opens_beside_a_tossed_cookie(hosts):
    live = await hosts(HostSettings(domain=DOMAIN))
    live.share(["alice"])
    alice = live.last_pages[0]
    port, origin = live.port, f"{alice.label}.{DOMAIN}"
    for header in both_orders("webxdc_rt", alice.token, "x"):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(
                    f"ws://127.0.0.1:{port}/.webxdc-rt/socket",
                    headers={"Host": f"{origin}:{port}", "Cookie": header,
                             "Origin": f"http://{origin}:{port}"}) as ws:
                assert (await ws.receive_json(timeout=HANG_S))["type"] == "hello"


async def test_only_a_tossed_cookie_is_refused_and_the_invite_link_cures_it(hosts):
    live = await hosts(HostSettings(domain=DOMAIN))
    live.share(["alice"])
    alice = live.last_pages[0]
    port, origin = live.port, f"{alice.label}.{DOMAIN}"
    assert await status(port, origin, "/", "webxdc_rt=x") == 403
    invite = f"/.webxdc-rt/invite/{alice.token}"
    assert await status(port, origin, invite, "webxdc_rt=x") == 303
    # The browser now holds the host-only cookie beside the tossed one, in either order.
    for header in both_orders("webxdc_rt", alice.token, "x"):
        assert await status(port, origin, "/", header) == 200


async def test_values_looked_at_are_bounded(hosts):
    live = await hosts(HostSettings(domain=DOMAIN, max_session_cookies=4))
    live.share(["alice"])
    alice = live.last_pages[0]
    port, origin = live.port, f"{alice.label}.{DOMAIN}"
    tossed = "; ".join(f"webxdc_rt=x{i}" for i in range(3))
    assert await status(port, origin, "/", f"{tossed}; webxdc_rt={alice.token}") == 200
    assert await status(port, origin, "/",
                        f"{tossed}; webxdc_rt=x3; webxdc_rt={alice.token}") == 403


async def test_over_https_the_cookie_is_a_host_cookie_and_cannot_be_shadowed(hosts):
    live = await hosts(HostSettings(domain=DOMAIN, scheme="https"))
    live.share(["alice"])
    alice = live.last_pages[0]
    port, origin = live.port, f"{alice.label}.{DOMAIN}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/.webxdc-rt/invite/{alice.token}",
                               headers={"Host": origin}, allow_redirects=False) as response:
            assert response.status == 303
            set_cookie = response.headers.getall("Set-Cookie")
    assert len(set_cookie) == 1
    name_value, *attributes = [part.strip() for part in set_cookie[0].split(";")]
    assert name_value == f"__Host-webxdc_rt={alice.token}"
    flags = {attribute.split("=", 1)[0].lower(): attribute for attribute in attributes}
    assert flags.keys() >= {"secure", "httponly", "path", "samesite"}
    assert "domain" not in flags and flags["path"] == "Path=/"
    assert flags["samesite"] == "SameSite=Strict"
    for header in both_orders("__Host-webxdc_rt", alice.token, "x"):
        assert await status(port, origin, "/", header) == 200
    # A plain cookie of the old name beside it (a sibling may set that one) is passed over.
    for header in both_orders("webxdc_rt", "y", "x"):
        assert await status(port, origin, "/", f"{header}; __Host-webxdc_rt={alice.token}") \
            == 200


@dataclass
class Homes:
    """A host serving home pages under the shared domain, in this process."""

    manager: Manager
    port: int


@pytest.fixture
async def homes() -> AsyncIterator[Homes]:
    store = SqliteStore()
    host = Host(store.load_registry(), {}, HostSettings(domain=DOMAIN), store=store)
    manager = Manager(host, store)
    host.mount(HomeSite(manager).resolve)
    runner = host.runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield Homes(manager, runner.addresses[0][1])
    await runner.cleanup()


async def test_a_tossed_cookie_locks_no_home_page_out(homes: Homes):
    chat = homes.manager.create_chat("family", ["alice", "mallory"])
    alice = homes.manager.registry.home_of(chat, chat.members[0])
    mallory = homes.manager.registry.home_of(chat, chat.members[1])
    assert alice is not None and mallory is not None
    origin = f"{alice.label}.{DOMAIN}"
    for tossed in ("x", mallory.token):
        for header in both_orders("webxdc_rt", alice.token, tossed):
            assert await status(homes.port, origin, "/.webxdc-rt/home/state", header) == 200
    assert await status(homes.port, origin, "/.webxdc-rt/home/state", "webxdc_rt=x") == 403


async def test_in_dev_a_peers_domain_cookie_locks_out_neither_dashboard_nor_peers(
        webxdc_sim) -> None:
    sim: Simulation = await webxdc_sim(PROBE_APP)
    simulator = sim.simulator
    port = simulator.port
    bob_label = simulator.peer("bob").label
    bob_token = simulator.peer("bob").url.rsplit("/", 1)[-1]
    alice_token = simulator.peer("alice").url.rsplit("/", 1)[-1]
    for header in both_orders("webxdc_rt", simulator.dashboard_token, alice_token):
        assert await status(port, "dashboard.sim.localhost", "/api/state", header) == 200
    for header in both_orders("webxdc_rt", bob_token, alice_token):
        assert await status(port, f"{bob_label}.sim.localhost", "/", header) == 200
    # The peers' own link still works for the Python peer beside it.
    await sim.member("bob")
