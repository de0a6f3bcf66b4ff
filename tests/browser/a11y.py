"""Accessibility checks of a page for the browser tests: axe-core's WCAG 2.1 A and AA rules
(from tests/browser/npm), overflow and target sizes on a phone, and where the focus is.

axe is evaluated through the browser's debugging protocol, which the pages' own
Content-Security-Policy does not govern, so the pages are checked with their policy intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Frame, Page

AXE_SOURCE = Path(__file__).parent / "npm" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
"""A phone-sized screen with touch, as Playwright emulates one."""
SCHEMES = ("light", "dark")

RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: tags}, iframes: false, resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`)}));
}"""

SMALL_TARGETS = """(minimum) => {
  const controls = document.querySelectorAll(
    "a[href], button, input, select, textarea, label, summary, [tabindex]:not([tabindex='-1'])");
  const small = [];
  for (const element of controls) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not shown
    if (element.matches("label") && !element.control) continue;  // no control to activate
    if (element.matches("input[type=checkbox], input[type=radio]")
        && element.closest("label")) continue;  // the label around it is the target
    if (box.width < minimum || box.height < minimum) {
      const name = element.id ? `#${element.id}` : element.className || element.tagName;
      small.push(`${element.tagName.toLowerCase()} ${name} "${
        (element.getAttribute("aria-label") || element.textContent).trim().slice(0, 30)}" ${
        Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return small;
}"""

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "body";
  return el.getAttribute("aria-label") || el.id || el.dataset.app || el.textContent.trim();
}"""


async def axe_violations(target: Page | Frame) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A and AA violations in one document (its frames apart)."""
    if not await target.evaluate("typeof window.axe === 'object'"):
        await target.evaluate(AXE_SOURCE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = await target.evaluate(RUN_AXE, WCAG_21_AA)
    return violations


async def assert_accessible(page: Page, what: str, frames: bool = False) -> None:
    """No axe violation in `page` (and in each of its frames when `frames`), in the light
    and the dark scheme."""
    for scheme in SCHEMES:
        await page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        documents: list[Page | Frame] = [page]
        if frames:
            documents += [frame for frame in page.frames if frame != page.main_frame]
        for document in documents:
            found = await axe_violations(document)
            assert not found, f"{what}, {scheme} scheme, {document.url}: {found}"


async def assert_fits_a_phone(page: Page, primary: str = "") -> None:
    """No horizontal scrolling (down to 320 px wide), every control at least 24 px both ways
    and those matching the selector `primary` at least 44 px."""
    size = page.viewport_size
    assert size is not None
    for width in (320, size["width"]):
        await page.set_viewport_size({"width": width, "height": size["height"]})
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"
                                   ), f"scrolls sideways at {width} px"
    small = await page.evaluate(SMALL_TARGETS, 24)
    assert not small, f"targets under 24 px: {small}"
    if primary:
        for box in [await control.bounding_box() for control in
                    await page.locator(primary).all()]:
            assert box is not None and box["width"] >= 44 and box["height"] >= 44, box


async def phone_context(browser: Browser) -> BrowserContext:
    """A browser context with a phone's screen and touch."""
    return await browser.new_context(**PHONE)  # type: ignore[arg-type]


async def focused(page: Page | Frame) -> str:
    """The accessible name (or id) of the focused element; "body" when nothing is."""
    name: str = await page.evaluate(FOCUSED)
    return name
