"""The tables bench/scale.py prints from its results (one dict per measurement, as also
printed with `--json`)."""

from __future__ import annotations

from typing import Any


def fmt(value: float | None, digits: int = 1) -> str:
    """A figure with thousands separators, or '-'."""
    return "-" if value is None else f"{value:,.{digits}f}"


def print_results(results: list[dict[str, Any]]) -> None:
    """The tables of every part that ran."""
    singles = [r for r in results if r["phase"] == "single"]
    if singles:
        print(f"{'host':<10} {'conns':>7} {'KB/conn':>8} {'RSS MB':>8} {'connect s':>9} "
              f"{'fan-out ms: p50':>15} {'p99':>8} {'last':>8} {'worst':>8} {'got':>7}")
    for r in singles:
        print(f"{r['host']:<10} {r['connections']:>7,} {fmt(r['kb_per_connection']):>8} "
              f"{fmt(r['rss_after_mb']):>8} {fmt(r['connect_s']):>9} {fmt(r['p50_ms']):>15} "
              f"{fmt(r['p99_ms']):>8} {fmt(r['last_ms']):>8} {fmt(r['worst_last_ms']):>8} "
              f"{r['min_received']:>7,}")
    for r in (r for r in results if r["phase"] == "ramp"):
        print(f"\nramp (webxdc-rt): held {r['held']:,} joined connections; stopped by: "
              f"{r['stopped_by']}; open fds {r['fds_open']}")
        for s in r["steps"]:
            print(f"  {s['held']:>7,} held  {fmt(s['per_s'], 0):>6}/s  RSS {fmt(s['rss_mb'], 0)} MB"
                  f"  server CPU {fmt(s['server_cpu_s'])} s  accept-queue overflows "
                  f"{s['listen_overflows']}")
    multis = [r for r in results if r["phase"] == "multi"]
    if multis:
        print(f"\n{'procs':>5} {'netns':>5} {'conns':>6} {'deliv/s':>9} {'got %':>6} "
              f"{'us/deliv':>9} {'redis us/item':>13} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'upd/s':>6} {'pg us/upd':>9} {'host us/upd':>11} {'B out/deliv':>11}")
    for r in multis:
        print(f"{r['processes']:>5} {'yes' if r['netns'] else 'no':>5} {r['connections']:>6} "
              f"{fmt(r['deliveries_per_s'], 0):>9} "
              f"{fmt(100 * r['deliveries'] / max(1, r['expected'])):>6} "
              f"{fmt(r['server_cpu_us_per_delivery'], 2):>9} "
              f"{fmt(r['redis_cpu_us_per_item'], 2):>13} {fmt(r['p50_ms'], 2):>7} "
              f"{fmt(r['p99_ms'], 2):>7} {fmt(r['updates_per_s'], 0):>6} "
              f"{fmt(r['postgres_cpu_us_per_update']):>9} "
              f"{fmt(r['server_cpu_us_per_update']):>11} "
              f"{fmt(r['bytes_out_per_delivery']):>11}")
