"""Which page a request reaches, and with what: invites, the page's cookie or bearer token,
and the origins this host serves, over a real socket."""

from __future__ import annotations

import aiohttp
import pytest
from peers import joined

from webxdc_rt.client import InviteRefused, connect


async def test_wrong_or_missing_invite_is_refused_at_connect_r14(live_host):
    urls = live_host.share(["alice", "bob"])
    alice_page, bob_page = live_host.last_pages
    wrong = urls["alice"].rsplit("/", 1)[0] + "/not-the-token"
    with pytest.raises(InviteRefused):
        await connect(wrong)
    # Bob's valid token presented on Alice's origin is no key to Alice's page.
    swapped = urls["alice"].replace(alice_page.token, bob_page.token)
    with pytest.raises(InviteRefused):
        await connect(swapped)
    port = live_host.port
    async with aiohttp.ClientSession() as session:
        host = {"Host": f"{alice_page.label}.localhost:{port}"}
        base = f"http://127.0.0.1:{port}"
        for path in ("/", "/webxdc.js", "/data.txt", "/.webxdc-rt/socket"):
            async with session.get(base + path, headers=host) as response:
                assert response.status == 403, path
        async with session.get(base + "/", headers={"Host": f"nobody.localhost:{port}"}) as r:
            assert r.status == 404
        async with session.get(base + "/", headers={"Host": f"127.0.0.1:{port}"}) as r:
            assert r.status == 404


async def test_only_the_app_copies_served_now_authenticate(live_host):
    """Pages another run stored in the same data folder are unknown, like any other host."""
    stale = live_host.share(["alice", "bob"])
    stale_page = live_host.last_pages[0]
    served = live_host.share(["alice", "carol"])
    del live_host.sources[stale_page.app.id]  # stored, but not served by this process
    with pytest.raises(InviteRefused):
        await connect(stale["alice"])
    port = live_host.port
    async with aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{port}"
        stale_auth = {"Host": f"{stale_page.label}.localhost:{port}",
                      "Authorization": f"Bearer {stale_page.token}"}
        async with session.get(base + "/", headers=stale_auth) as response:
            assert response.status == 404
            stale_text = await response.text()
        async with session.get(base + "/", headers={"Host": f"nobody.localhost:{port}"}) as r:
            assert r.status == 404 and await r.text() == stale_text
    alice, carol = await joined(served["alice"]), await joined(served["carol"])
    alice.channel.send(b"served")
    await carol.got(b"served")
    await alice.peer.close()
    await carol.peer.close()


async def test_invite_link_sets_a_cookie_that_opens_the_page(live_host):
    urls = live_host.share(["alice"])
    page = live_host.last_pages[0]
    port = live_host.port
    host = {"Host": f"{page.label}.localhost:{port}"}
    async with aiohttp.ClientSession() as session:
        invite_path = urls["alice"].split(f":{port}", 1)[1]
        async with session.get(f"http://127.0.0.1:{port}{invite_path}", headers=host,
                               allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/"
            cookie = response.cookies["webxdc_rt"]
            assert cookie.value == page.token
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
        authed = {**host, "Cookie": f"webxdc_rt={page.token}"}
        async with session.get(f"http://127.0.0.1:{port}/", headers=authed) as response:
            assert response.status == 200
            assert "webxdc.js" in await response.text()
            csp = response.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp
        async with session.get(f"http://127.0.0.1:{port}/webxdc.js", headers=authed) as response:
            bridge = await response.text()
            assert page.self_addr in bridge and "joinRealtimeChannel" in bridge
            assert "APP_OWN_WEBXDC_JS_WAS_SERVED" not in bridge
        async with session.get(f"http://127.0.0.1:{port}/data.txt", headers=authed) as response:
            assert await response.text() == "a data file of the probe app\n"
        for path in ("/missing.txt", "/../conftest.py", "/%2e%2e/conftest.py",
                     "/.webxdc-rt/nothing"):
            async with session.get(f"http://127.0.0.1:{port}{path}", headers=authed) as response:
                assert response.status == 404, path
