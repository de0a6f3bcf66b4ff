"""A member's home page in Chromium, served by `webxdc-rt host`: the apps of the chat (each
opening on its own origin), the messages apps posted, notifications, sharing an uploaded
`.xdc`; on a phone-sized screen and with the keyboard alone."""

from __future__ import annotations

from pathlib import Path

from hosting import HostProcess, make_xdc, origin_of

PROBE = str(Path(__file__).parent.parent / "apps" / "probe")
RECORD_NOTIFICATIONS = """
(() => {
  const Native = window.Notification;
  window.__notifications = [];
  window.Notification = class extends Native {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({title, body: options && options.body});
    }
  };
})();
"""


async def chat_with_two_apps(service: HostProcess, tmp_path: Path) -> dict:
    """alice and bob in a chat with the probe app and a second copy with a name and icon;
    each member's links."""
    await service.cli("chat", "create", "family", "--members", "alice,bob")
    await service.cli("app", "share", "family", PROBE)
    await service.cli("app", "share", "family",
                      str(make_xdc(tmp_path / "second.xdc", name="Second", icon=True)))
    return {name: (await service.cli("link", "show", "family", name, "--json")).json()
            for name in ("alice", "bob")}


async def open_home(context, url: str):
    page = await context.new_page()
    response = await page.goto(url)
    assert response is not None and response.ok
    await page.wait_for_selector("#apps a")
    return page


async def test_the_home_page_lists_the_apps_and_opens_one_on_its_own_origin(
        service, browser, tmp_path):
    links = await chat_with_two_apps(service, tmp_path)
    context = await browser.new_context()
    home = await open_home(context, links["alice"]["url"])
    assert await home.locator("#chat-name").text_content() == "family"
    assert await home.locator("#apps a .name").all_text_contents() == ["probe", "Second"]
    assert await home.locator("#apps a").nth(0).locator("img").count() == 0
    icon = home.locator("#apps a").nth(1).locator("img")
    await home.wait_for_function(
        "document.querySelectorAll('#apps img')[0]?.naturalWidth === 1")
    assert await icon.count() == 1
    async with context.expect_page() as opened:
        await home.locator("#apps a").nth(1).click()
    app = await opened.value
    await app.wait_for_function("window.webxdc !== undefined && webxdc.selfName === 'alice'")
    assert origin_of(app.url) == origin_of(links["alice"]["apps"][1]["url"])
    assert origin_of(app.url) != origin_of(home.url)
    assert await app.evaluate("webxdc.selfAddr") == links["alice"]["apps"][1]["self_addr"]
    await context.close()


async def test_a_send_to_chat_message_and_its_file_are_on_the_home_page(
        service, browser, tmp_path):
    links = await chat_with_two_apps(service, tmp_path)
    context = await browser.new_context()
    app = await context.new_page()
    await app.goto(links["alice"]["apps"][0]["url"])
    await app.wait_for_function("window.webxdc !== undefined")
    await app.evaluate("""() => webxdc.sendToChat({
        text: "the minutes", file: {name: "Protokoll März.txt", plainText: "all agreed"}})""")
    home = await open_home(context, links["bob"]["url"])
    message = home.locator("#messages li").first
    await message.locator(".text").wait_for()
    assert await message.locator(".text").text_content() == "the minutes"
    assert "alice" in await message.locator(".meta").text_content()
    async with home.expect_download() as downloading:
        await message.locator("a").click()
    download = await downloading.value
    assert download.suggested_filename == "Protokoll März.txt"
    assert Path(await download.path()).read_bytes() == b"all agreed"
    await context.close()


async def test_a_notify_reaches_its_addressee_as_a_badge_or_a_notification(
        service, browser, tmp_path):
    links = await chat_with_two_apps(service, tmp_path)
    bob_addr = links["bob"]["apps"][0]["self_addr"]
    sender_context = await browser.new_context()
    app = await sender_context.new_page()
    await app.goto(links["alice"]["apps"][0]["url"])
    await app.wait_for_function("window.webxdc !== undefined")
    send = "(notify) => webxdc.sendUpdate({payload: 1, notify}, '')"
    await app.evaluate(send, {bob_addr: "your move, bob"})

    # Notifications not allowed: a badge, cleared by pressing it.
    plain = await browser.new_context()
    home = await open_home(plain, links["bob"]["url"])
    await home.locator("#notifications li .text").first.wait_for()
    assert await home.locator("#notifications li .text").all_text_contents() == [
        "your move, bob"]
    assert await home.locator("#badge").text_content() == "1 new"
    assert (await home.title()).startswith("(1) ")
    await home.locator("#badge").press("Enter")
    await home.locator("#badge").wait_for(state="hidden")
    alice_home = await open_home(plain, links["alice"]["url"])
    assert await alice_home.locator("#notifications li").count() == 0

    # Notifications allowed: news arriving while the page is open go to the system.
    allowed = await browser.new_context()
    await allowed.grant_permissions(["notifications"])
    await allowed.add_init_script(RECORD_NOTIFICATIONS)
    home = await open_home(allowed, links["bob"]["url"])
    assert await home.evaluate("Notification.permission") == "granted"
    await app.evaluate(send, {"*": "everyone, look"})
    await home.wait_for_function("window.__notifications.length === 1")
    assert await home.evaluate("window.__notifications[0].body") == "everyone, look"
    assert await home.locator("#badge").is_hidden()
    for context in (sender_context, plain, allowed):
        await context.close()


async def test_a_member_shares_an_uploaded_xdc_from_the_home_page(
        service, browser, tmp_path):
    links = await chat_with_two_apps(service, tmp_path)
    context = await browser.new_context()
    home = await open_home(context, links["bob"]["url"])
    bad = tmp_path / "broken.xdc"
    bad.write_bytes(b"not a zip")
    await home.set_input_files("#share-file", str(bad))
    await home.locator("#share-form button").click()
    await home.wait_for_function(
        "document.querySelector('#share-status').textContent.startsWith('Not shared')")
    assert "not a ZIP archive" in await home.locator("#share-status").text_content()
    await home.set_input_files("#share-file", str(make_xdc(tmp_path / "poll.xdc",
                                                           name="Poll")))
    await home.locator("#share-form button").click()
    await home.wait_for_function("document.querySelectorAll('#apps a').length === 3")
    assert await home.locator("#share-status").text_content() == "Shared Poll."
    listed = (await service.cli("app", "list", "family", "--json")).json()["apps"]
    assert [(app["name"], app["shared_by"]) for app in listed][-1] == ("Poll", "bob")
    async with context.expect_page() as opened:
        await home.locator("#apps a").nth(2).click()
    app = await opened.value
    await app.wait_for_function("window.webxdc !== undefined && webxdc.isAppSender === true")
    await context.close()


async def test_the_home_page_works_on_a_phone_with_the_keyboard_alone(
        service, browser, tmp_path):
    links = await chat_with_two_apps(service, tmp_path)
    context = await browser.new_context(viewport={"width": 360, "height": 640},
                                        is_mobile=True, has_touch=True)
    home = await open_home(context, links["alice"]["url"])
    assert await home.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth")
    focused = """() => {
        const el = document.activeElement;
        return el.dataset.app ? 'app' : el.id || el.tagName.toLowerCase(); }"""
    await home.keyboard.press("Tab")
    assert await home.evaluate(focused) == "app"
    async with context.expect_page() as opened:
        await home.keyboard.press("Enter")
    app = await opened.value
    await app.wait_for_function("window.webxdc !== undefined && webxdc.selfName === 'alice'")
    await home.bring_to_front()
    reached = [await home.evaluate(focused)]
    for _ in range(3):
        await home.keyboard.press("Tab")
        reached.append(await home.evaluate(focused))
    assert reached == ["app", "app", "share-file", "button"], reached
    await context.close()
