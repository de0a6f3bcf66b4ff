"""The hosts side by side: one row per spec clause, then the figures, then what was seen
where a row did not pass."""

from __future__ import annotations

import json
from typing import Any

from .runner import Results

__all__ = ["as_json", "as_table"]

FIGURES = (("rtt_p50_ms", "round trip p50 (ms)"), ("rtt_p99_ms", "round trip p99 (ms)"),
           ("items_per_s_1kB", "items/s at 1 kB"), ("items_per_s_128kB", "items/s at 128 kB"),
           ("join_to_first_item_ms", "join to first item (ms)"))


def as_table(results: Results) -> str:
    """The text table of the hosts that ran (those that could not are told apart)."""
    hosts = [name for name in results.hosts if name in results.reports]
    rows = _rows(results, hosts)
    header = ["clause", "check", *hosts]
    lines = [header, *([row["clause"], row["title"],
                        *(_status(results.reports[h], row["id"]) for h in hosts)]
                       for row in rows)]
    lines += [["", name, *(_figure(results.reports[h], key) for h in hosts)]
              for key, name in FIGURES]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    text.insert(1 + len(rows), "")
    for host in hosts:
        for row in results.reports[host]["rows"]:
            if row["status"] != "pass" or row["detail"]:
                text.append(f"{host} {row['clause']} {row['status']}: {row['detail']}")
    return "\n".join(text)


def as_json(results: Results) -> str:
    """`results` as one JSON object: the hosts, and each host's rows and figures."""
    return json.dumps({"hosts": results.hosts,
                       "reports": {host: {"rows": report["rows"], "figures": report["figures"],
                                          "pages": report["pages"]}
                                   for host, report in results.reports.items()},
                       "unavailable": results.unavailable})


def _rows(results: Results, hosts: list[str]) -> list[dict[str, Any]]:
    return list(results.reports[hosts[0]]["rows"]) if hosts else []


def _status(report: dict[str, Any], row_id: str) -> str:
    return next((row["status"] for row in report["rows"] if row["id"] == row_id), "-")


def _figure(report: dict[str, Any], key: str) -> str:
    value = report["figures"].get(key)
    return "-" if value is None else f"{value:g}"
