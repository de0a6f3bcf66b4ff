"""The conformance suite run for real: on webxdc-rt every row passes; on webxdc-dev its table
is recorded (printed, not asserted); on broken variants of this project's bridge each
breakage turns exactly its row red."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from broken_bridges import BREAKAGES, Breakage, bridge_patch, serving
from playwright.async_api import BrowserContext

from webxdc_rt.conformance.hosts import Deployment
from webxdc_rt.conformance.runner import run_hosts
from webxdc_rt.conformance.table import as_table

NPM_DIR = Path(__file__).resolve().parent.parent / "browser" / "npm"
NOT_TESTABLE_INSIDE_AN_APP = {"privacy", "page-closed"}


def statuses(report: dict) -> dict[str, str]:
    return {row["id"]: row["status"] for row in report["rows"]}


def conformance_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webxdc_rt", "conformance", "run", *args,
                           "--npm-dir", str(NPM_DIR)], capture_output=True, text=True)


# Generous: the rates are paced by the receiver's answers, each waited for up to 2 s, so
# a loaded machine stretches the run (90 s on a quiet one).
@pytest.mark.timeout(600)
def test_every_row_passes_on_webxdc_rt() -> None:
    done = conformance_run("--hosts", "webxdc-rt", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["reports"]["webxdc-rt"]
    print(json.dumps(report, indent=1))
    assert {k: v for k, v in statuses(report).items() if v != "pass"} == {
        row: "not testable" for row in NOT_TESTABLE_INSIDE_AN_APP}
    assert report["pages"] == 3
    assert all(value is not None for value in report["figures"].values()), report["figures"]


@pytest.mark.timeout(600)
def test_the_table_of_webxdc_dev_is_recorded() -> None:
    done = conformance_run("--hosts", "webxdc-rt,webxdc-dev")
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0].split()
    assert header == ["clause", "check", "webxdc-rt", "webxdc-dev"]
    clauses = [line.split()[0] for line in done.stdout.splitlines()[1:19]]
    assert clauses == [f"R{n}" for n in range(1, 19)]


@pytest.mark.timeout(420)  # over the run's own limit, so that its message says where it stuck
@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.name for b in BREAKAGES])
async def test_a_broken_host_turns_exactly_its_row_red(breakage: Breakage) -> None:
    results = await run_hosts(["webxdc-rt"], NPM_DIR, prepare=serving(breakage))
    print(as_table(results))
    assert results.unavailable == {}
    failed = {row for row, status in statuses(results.reports["webxdc-rt"]).items()
              if status == "fail"}
    assert failed == {breakage.row}


RECORD_INFO = """(() => {
  let bridge;
  Object.defineProperty(window, 'webxdc', {
    configurable: true, get: () => bridge,
    set(W) {
      bridge = W;
      const sendUpdate = W.sendUpdate;
      W.sendUpdate = (update, description) => {
        if (update && update.info) window.__info(update.info);
        return sendUpdate(update, description);
      };
    },
  });
})();"""


@pytest.mark.timeout(420)  # over the run's own limit, so that its message says where it stuck
async def test_the_report_is_posted_to_the_chat_as_one_info_line() -> None:
    infos: list[str] = []

    async def prepare(context: BrowserContext, deployment: Deployment) -> None:
        await context.add_init_script(RECORD_INFO)
        await context.expose_function("__info", lambda info: infos.append(info))

    results = await run_hosts(["webxdc-rt"], NPM_DIR, prepare=prepare)
    assert results.unavailable == {}
    assert infos == ["Realtime conformance: 16 pass, 0 fail, 2 not testable"]


# A bridge that refuses to send the run's "go" updates: the coordinator waits a phase out for
# each (60 s), so the run cannot end within the short limit given here.
REFUSE_GO = """
  const sendUpdate = W.sendUpdate;
  W.sendUpdate = (update, description) => {
    if (update.payload && update.payload.t === "go") throw new Error("refused by the test");
    return sendUpdate(update, description);
  };"""


@pytest.mark.timeout(120)
async def test_a_run_that_does_not_end_in_time_says_where_each_page_is() -> None:
    async def prepare(context: BrowserContext, deployment: Deployment) -> None:
        await context.add_init_script(bridge_patch(REFUSE_GO))

    results = await run_hosts(["webxdc-rt"], NPM_DIR, prepare=prepare, run_timeout_s=5)
    assert results.reports == {}
    why = results.unavailable["webxdc-rt"]
    assert why.startswith("the run did not finish within 5 s; page 1: role A; ")
    assert "waiting for local (ready): answered by none of 1 page(s); " in why
    assert "failed: posting go: refused by the test" in why.split(" | ")[0]
    assert "page 2: role B" in why and "page 3: role C" in why
    assert "the other copy's page: no run" in why


# A host that delivers no realtime item at all: every step that waits for items gives up in
# its own time, so the run ends with those rows red instead of hanging.
DELIVER_NOTHING = Breakage("delivers nothing", "every-page", bridge_patch("""
  W.joinRealtimeChannel = () => {
    const ch = join();
    return { setListener() {}, send: (data) => ch.send(data), leave: () => ch.leave() };
  };"""))


@pytest.mark.timeout(420)
async def test_a_host_that_delivers_nothing_ends_its_run_with_rows_red() -> None:
    results = await run_hosts(["webxdc-rt"], NPM_DIR, prepare=serving(DELIVER_NOTHING))
    assert results.unavailable == {}
    report = results.reports["webxdc-rt"]
    assert statuses(report)["every-page"] == "fail"
    assert report["figures"]["rtt_p50_ms"] is None
    assert report["figures"]["items_per_s_1kB"] is None
