"""bench/scale.py at a tiny size, so that the capacity benchmark cannot rot: it runs, reports
figures for each part and leaves nothing of its own behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCALE = Path(__file__).resolve().parents[2] / "bench" / "scale.py"


def test_scale_bench_reports_figures_at_a_tiny_size() -> None:
    # The benchmark's temporary folders go into one of this test's own (TMPDIR), so that
    # another run of the benchmark on the machine meanwhile cannot look like a leftover.
    # It is made under the system's temporary folder, open to all as that one is, since
    # PostgreSQL runs there as another user.
    private = Path(tempfile.mkdtemp(prefix="wxrt-scale-test-"))
    private.chmod(0o755)
    try:
        run_tiny_bench(private)
        assert list(private.iterdir()) == []
    finally:
        shutil.rmtree(private, ignore_errors=True)


def run_tiny_bench(temporary: Path) -> None:
    """Run the benchmark at a tiny size with `temporary` as its temporary folder, and check
    that it reported figures for each part."""
    run = subprocess.run(
        [sys.executable, str(SCALE), "--json", "--connections", "20", "--items", "2",
         "--ramp-to", "40", "--ramp-step", "20", "--processes", "1", "--no-netns",
         "--receivers", "20", "--members", "10", "--senders", "2", "--rate", "20",
         "--duration", "1", "--redis-rate", "200", "--update-rate", "2"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "TMPDIR": str(temporary)})
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
    # CPU above the idle rate, in clock ticks of 10 ms: at this size it may round to none.
    assert multi["p99_ms"] > 0 and multi["server_cpu_us_per_delivery"] >= 0
    assert "load average before" in run.stdout and "load average after" in run.stdout
