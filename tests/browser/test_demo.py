"""The demo end to end: `webxdc-rt demo` in a subprocess, the bundled sketch pad in Chromium
for two members, and a Python peer as the third."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from peers import eventually, joined


async def test_demo_pages_and_a_python_peer_share_the_channel(open_page, tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webxdc_rt", "demo", "--port", "0", "--json",
        "--data-dir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        members = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
                   for _ in range(3)]
        alice_info, bob_info, carol_info = members
        carol = await joined(carol_info["url"])
        alice = await open_page(alice_info["url"])
        bob = await open_page(bob_info["url"])
        # Each page announces itself over the channel; the Python peer hears both pages.
        def heard_from(addr: str) -> bool:
            return any(json.loads(item).get("from") == addr for item in carol.inbox)
        await eventually(lambda: heard_from(alice_info["self_addr"])
                         and heard_from(bob_info["self_addr"]), timeout=20)
        # The pages see each other, and the Python peer once it speaks the app's language.
        carol.channel.send(json.dumps({"t": "here", "name": "carol",
                                       "from": carol_info["self_addr"]}).encode())
        for page, other in ((alice, bob_info), (bob, alice_info)):
            for addr in (other["self_addr"], carol_info["self_addr"]):
                await page.wait_for_selector(f'#people li[data-addr="{addr}"]', timeout=20_000)
        # A stroke drawn in alice's page reaches bob's page and the Python peer.
        box = await alice.locator("#pad").bounding_box()
        await alice.mouse.move(box["x"] + 50, box["y"] + 50)
        await alice.mouse.down()
        await alice.mouse.move(box["x"] + 120, box["y"] + 90, steps=5)
        await alice.mouse.up()
        await eventually(lambda: any(json.loads(item).get("t") == "point"
                                     for item in carol.inbox), timeout=20)
        drawn = await bob.evaluate("""() => {
            const canvas = document.getElementById("pad");
            const pixels = canvas.getContext("2d").getImageData(
                0, 0, canvas.width, canvas.height).data;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
            return false; }""")
        assert drawn
        # The finished stroke was stored as a status update: a page opened now shows it.
        updates: list[dict] = []
        await carol.peer.set_update_listener(updates.append)
        await eventually(lambda: any("stroke" in u["payload"] for u in updates), timeout=20)
        late = await open_page(bob_info["url"])
        await late.wait_for_function("""() => {
            const canvas = document.getElementById("pad");
            const pixels = canvas.getContext("2d").getImageData(
                0, 0, canvas.width, canvas.height).data;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
            return false; }""", timeout=20_000)
        assert await late.evaluate("localStorage.getItem('sketch.penWidth')") == "3"
        await carol.peer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
