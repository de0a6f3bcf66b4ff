"""The conformance suite run for real: on webxdc-rt every row passes; on webxdc-dev its table
is recorded (printed, not asserted); on broken variants of this project's bridge each
breakage turns exactly its row red."""

from __future__ import annotations

from pathlib import Path

import pytest
from broken_bridges import BREAKAGES, Breakage, serving

from webxdc_rt.conformance.runner import run_hosts
from webxdc_rt.conformance.table import as_table

NPM_DIR = Path(__file__).resolve().parent.parent / "browser" / "npm"
NOT_TESTABLE_INSIDE_AN_APP = {"privacy", "page-closed"}


def statuses(report: dict) -> dict[str, str]:
    return {row["id"]: row["status"] for row in report["rows"]}


@pytest.mark.timeout(300)
async def test_every_row_passes_on_webxdc_rt() -> None:
    results = await run_hosts(["webxdc-rt"], NPM_DIR)
    print(as_table(results))
    report = results.reports["webxdc-rt"]
    assert {k: v for k, v in statuses(report).items() if v != "pass"} == {
        row: "not testable" for row in NOT_TESTABLE_INSIDE_AN_APP}
    assert report["pages"] == 3
    assert all(value is not None for value in report["figures"].values()), report["figures"]


@pytest.mark.timeout(600)
async def test_the_table_of_webxdc_dev_is_recorded() -> None:
    results = await run_hosts(["webxdc-rt", "webxdc-dev"], NPM_DIR)
    print(as_table(results))
    assert results.unavailable == {}
    assert set(results.reports) == {"webxdc-rt", "webxdc-dev"}
    assert len(results.reports["webxdc-dev"]["rows"]) == len(results.reports["webxdc-rt"]["rows"])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.name for b in BREAKAGES])
async def test_a_broken_host_turns_exactly_its_row_red(breakage: Breakage) -> None:
    results = await run_hosts(["webxdc-rt"], NPM_DIR, prepare=serving(breakage))
    print(as_table(results))
    assert results.unavailable == {}
    failed = {row for row, status in statuses(results.reports["webxdc-rt"]).items()
              if status == "fail"}
    assert failed == {breakage.row}
