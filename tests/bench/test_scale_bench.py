"""bench/scale.py at a tiny size, so that the capacity benchmark cannot rot: it runs, reports
figures for each part and leaves nothing of its own behind."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SCALE = Path(__file__).resolve().parents[2] / "bench" / "scale.py"


def leftovers() -> set[str]:
    """Temporary folders of the benchmark that exist now."""
    return {p.name for p in Path(tempfile.gettempdir()).glob("wxrt-scale-*")}


def test_scale_bench_reports_figures_at_a_tiny_size() -> None:
    before = leftovers()
    run = subprocess.run(
        [sys.executable, str(SCALE), "--json", "--connections", "20", "--items", "2",
         "--ramp-to", "40", "--ramp-step", "20", "--processes", "1", "--no-netns",
         "--receivers", "20", "--members", "10", "--senders", "2", "--rate", "20",
         "--duration", "1", "--redis-rate", "200", "--update-rate", "2"],
        capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    singles = {r["host"]: r for r in results if r["phase"] == "single"}
    assert set(singles) == {"webxdc-rt", "bare-relay"}
    for single in singles.values():
        assert single["connections"] == 20
        assert single["min_received"] == 19  # every receiver got every item
        assert single["kb_per_connection"] is not None and single["last_ms"] > 0
    ramp = next(r for r in results if r["phase"] == "ramp")
    assert ramp["held"] == 40 and [s["held"] for s in ramp["steps"]] == [20, 40]
    multi = next(r for r in results if r["phase"] == "multi")
    assert multi["processes"] == 1 and not multi["netns"]
    assert multi["connections"] == 20 and multi["deliveries"] == multi["expected"] > 0
    assert multi["updates"] == 20 and multi["errors"] == {}
    assert multi["p99_ms"] > 0 and multi["server_cpu_us_per_delivery"] > 0
    assert "load average before" in run.stdout and "load average after" in run.stdout
    assert leftovers() <= before
