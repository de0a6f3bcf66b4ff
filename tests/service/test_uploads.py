"""Who may share apps: member uploads from home pages on or off, host-wide and per chat;
an operator's `app share` is never refused by it."""

from __future__ import annotations

from hosting import HostProcess, assert_one_line_error, make_xdc, origin_of, web_session


async def _upload_status(home: str, data: bytes) -> tuple[int, dict]:
    """Log in with the home link, read the page's state, upload `data` as the page does."""
    origin = origin_of(home)
    async with web_session() as session:
        async with session.get(home) as response:
            assert response.status == 200
        async with session.get(origin + "/.webxdc-rt/home/state") as response:
            state = await response.json()
        async with session.post(origin + "/.webxdc-rt/home/share", data=data,
                                headers={"Origin": origin}) as response:
            return response.status, {"state": state, "answer": await response.json()}


async def test_uploads_off_host_wide_and_on_for_one_chat_kept_across_restarts(tmp_path):
    host = await HostProcess(tmp_path / "d").start("--limit", "home.member_uploads=0")
    xdc = make_xdc(tmp_path / "a.xdc").read_bytes()
    try:
        links = {name: (await host.cli("chat", "create", name, "--members", "ann",
                                       "--json")).json()["links"][0]["url"]
                 for name in ("closed", "open")}
        status, seen = await _upload_status(links["closed"], xdc)
        assert status == 403 and seen["answer"]["error"]["code"] == "uploads-off"
        assert seen["state"]["uploads"] is False
        # The operator still shares apps.
        assert (await host.cli("app", "share", "closed", str(tmp_path / "a.xdc"))).status == 0
        chosen = (await host.cli("chat", "uploads", "open", "on", "--json")).json()
        assert (chosen["uploads"], chosen["members_may_upload"]) == ("on", True)
        status, seen = await _upload_status(links["open"], xdc)
        assert status == 201 and seen["state"]["uploads"] is True
    finally:
        assert await host.stop() == 0
    again = await HostProcess(tmp_path / "d").start("--limit", "home.member_uploads=0",
                                                    port=host.port)
    try:
        shown = await again.cli("chat", "uploads", "open")
        assert shown.stdout == "chat 'open': member uploads on (allowed)\n"
        assert (await _upload_status(links["closed"], xdc))[0] == 403
        assert (await _upload_status(links["open"], xdc))[0] == 201
    finally:
        assert await again.stop() == 0


async def test_one_chat_closed_to_uploads_on_a_host_that_allows_them(service, tmp_path):
    home = (await service.cli("chat", "create", "c", "--members", "ann",
                              "--json")).json()["links"][0]["url"]
    assert (await service.cli("chat", "uploads", "c", "off")).status == 0
    status, seen = await _upload_status(home, make_xdc(tmp_path / "a.xdc").read_bytes())
    assert status == 403 and seen["state"]["uploads"] is False
    back = (await service.cli("chat", "uploads", "c", "host", "--json")).json()
    assert (back["uploads"], back["members_may_upload"]) == ("host", True)
    assert (await _upload_status(home, make_xdc(tmp_path / "b.xdc").read_bytes()))[0] == 201
    assert_one_line_error(await service.cli("chat", "uploads", "nope", "off"), "nope")


async def test_member_uploads_is_0_or_1(tmp_path):
    host = HostProcess(tmp_path / "d")
    done = await host.cli("host", "--port", "0", "--limit", "home.member_uploads=2")
    assert_one_line_error(done, "member_uploads must be 0 or 1")
