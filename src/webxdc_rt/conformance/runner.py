"""The runner: serves the app on each host, opens the members' pages in headless Chromium,
starts the run from the first page and collects the report it posts.

Playwright drives Debian's Chromium (`WEBXDC_RT_CHROMIUM`, default `/usr/bin/chromium`);
it is the `conformance` extra, and without it the runner says what to install.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hosts import HOSTS, Deployment, HostAdapter, HostUnavailable
from .pack import app_files

try:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError
    from playwright.async_api import async_playwright
except ImportError:  # the `conformance` extra is not installed: `run` says so
    async_playwright = None  # type: ignore[assignment]
    PlaywrightError = RuntimeError  # type: ignore[assignment,misc]
    PlaywrightTimeoutError = TimeoutError  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

__all__ = ["CHROMIUM", "MISSING_PLAYWRIGHT", "RUN_TIMEOUT_S", "Prepare", "Results",
           "RunnerError", "Unfinished", "run_hosts", "run_suite"]

CHROMIUM = os.environ.get("WEBXDC_RT_CHROMIUM", "/usr/bin/chromium")
"""The Chromium the runner drives (never one Playwright downloads)."""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding"]
MISSING_PLAYWRIGHT = ("the conformance runner needs Playwright: "
                      "pip install 'webxdc-rt[conformance]'")
READY_TIMEOUT_MS = 30_000
"""How long a page may take to load and learn its app copy's tag."""
RUN_TIMEOUT_S = 300.0
"""How long one host's run may take by default, from Start to the report (a quiet machine
takes 15 s for this project's host; every step is bounded, so only a host that loses the
run's own status updates, or a machine many times slower, reaches it)."""

CONSOLE_KEPT = 3
"""Errors and warnings of each page's console (and errors nothing caught) kept to say why a
run did not finish."""
CONSOLE_CHARS = 300
"""Characters kept of each."""
PROGRESS_TIMEOUT_S = 5.0
"""How long a page may take to say where it is, once its run is given up."""

Prepare = Callable[["BrowserContext", Deployment], Awaitable[None]]
"""Called with each host's browser context before any page opens (tests use it to serve a
changed bridge)."""


class RunnerError(Exception):
    """The runner cannot run here (no Playwright, no Chromium); one line saying why."""


class Unfinished(Exception):
    """A host's run did not post its report in time; says where each page was."""


@dataclass
class Results:
    """The reports by host, in the order asked, and the hosts that could not be run."""

    hosts: list[str]
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)


async def run_hosts(names: list[str], npm_dir: Path, prepare: Prepare | None = None,
                    run_timeout_s: float = RUN_TIMEOUT_S) -> Results:
    """Run the suite on each named host in turn (`KeyError` for a name not in `HOSTS`); a
    host whose run takes longer than `run_timeout_s` is reported `unavailable`, saying
    where each page was."""
    adapters = [HOSTS[name](npm_dir) for name in names]
    if async_playwright is None:
        raise RunnerError(MISSING_PLAYWRIGHT)
    if not os.access(CHROMIUM, os.X_OK):
        raise RunnerError(f"Chromium not found at {CHROMIUM}: install Debian's chromium "
                          "package or set WEBXDC_RT_CHROMIUM")
    results = Results(names)
    with tempfile.TemporaryDirectory(prefix="webxdc-rt-conformance-") as work_name:
        work = Path(work_name)
        app = work / "app"
        app.mkdir()
        for name, data in app_files().items():
            (app / name).write_bytes(data)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS)
            try:
                for adapter in adapters:
                    await _run_host(adapter, browser, app, work, prepare, results,
                                    run_timeout_s)
            finally:
                await browser.close()
    return results


async def _run_host(adapter: HostAdapter, browser: Browser, app: Path, work: Path,
                    prepare: Prepare | None, results: Results, run_timeout_s: float) -> None:
    try:
        async with adapter.deploy(app, work) as deployment:
            # Caught in here: out of `deploy`, a host's task group wraps what it lets through.
            try:
                results.reports[adapter.name] = await run_suite(browser, deployment, prepare,
                                                                run_timeout_s)
            except Unfinished as exc:
                results.unavailable[adapter.name] = str(exc)
            except PlaywrightError as exc:
                first_line = (str(exc).strip().splitlines() or ["no message"])[0]
                results.unavailable[adapter.name] = f"the run did not finish: {first_line}"
    except HostUnavailable as exc:
        results.unavailable[adapter.name] = str(exc)


async def run_suite(browser: Browser, deployment: Deployment, prepare: Prepare | None = None,
                    run_timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    """One run on a serving host: the report the first page posted, with the second copy's
    view of isolation folded into its row. `Unfinished` if no report came within
    `run_timeout_s`."""
    context = await browser.new_context()
    consoles: dict[Page, deque[str]] = {}
    try:
        if prepare is not None:
            await prepare(context, deployment)
        first = await _open(context, deployment.first, consoles)
        members = [first, await _open(context, deployment.second, consoles)]
        if deployment.same_member is not None:
            members.append(await _open(context, deployment.same_member, consoles))
        other = (await _open(context, deployment.other_copy, consoles)
                 if deployment.other_copy else None)
        if other is not None:
            await other.click("#noise")
            await first.check("#other-copy")
        await first.click("#gather")
        await _until(first, f"window.conformance.participants >= {len(members)}",
                     READY_TIMEOUT_MS)
        await first.click("#start")
        try:
            await _until(first, "window.conformance.report !== null",
                         max(1, round(run_timeout_s * 1000)))  # 0 would be no limit
        except PlaywrightTimeoutError:
            raise Unfinished(f"the run did not finish within {run_timeout_s:g} s; "
                             + await _progress(members, other, consoles)) from None
        report: dict[str, Any] = await first.evaluate("() => window.conformance.report")
        if other is not None:
            _fold_other_copy(report, await other.evaluate(
                "() => window.conformance.noiseForeign"))
        return report
    finally:
        await context.close()


async def _progress(members: list[Page], other: Page | None,
                    consoles: dict[Page, deque[str]]) -> str:
    """Where each page of a run is, in words, with what it last said on its console as an
    error or a warning (why it did not end in time)."""
    pages = [(f"page {n}", page) for n, page in enumerate(members, 1)]
    if other is not None:
        pages.append(("the other copy's page", other))
    where = []
    for name, page in pages:
        try:  # bounded: a page whose main thread is stuck answers nothing
            progress = await asyncio.wait_for(
                page.evaluate("() => window.conformance.progress"), PROGRESS_TIMEOUT_S)
            text = f"{name}: {progress}"
        except (PlaywrightError, TimeoutError) as exc:
            text = f"{name}: unreadable ({type(exc).__name__})"
        said = consoles.get(page)
        where.append(text + (f"; console: {' / '.join(said)}" if said else ""))
    return " | ".join(where)


async def _open(context: BrowserContext, url: str, consoles: dict[Page, deque[str]]) -> Page:
    page = await context.new_page()
    said = consoles[page] = deque(maxlen=CONSOLE_KEPT)
    page.on("console", lambda message: said.append(message.text[:CONSOLE_CHARS])
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: said.append(f"uncaught: {error}"[:CONSOLE_CHARS]))
    await page.goto(url)
    await _until(page, "window.conformance && window.conformance.ready", READY_TIMEOUT_MS)
    return page


async def _until(page: Page, condition: str, timeout_ms: int) -> None:
    await page.wait_for_function(f"() => {condition}", timeout=timeout_ms, polling=100)


def _fold_other_copy(report: dict[str, Any], foreign: int | None) -> None:
    """The second copy counted items of the first copy that reached it: any fails the row."""
    if not foreign:
        return
    for row in report["rows"]:
        if row["id"] == "isolation":
            row["status"] = "fail"
            row["detail"] = (f"the second copy received {foreign} item(s) of the first"
                             + (f"; {row['detail']}" if row["detail"] else ""))
