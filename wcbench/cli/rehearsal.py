"""The table `wcbench run --rehearse N` prints: per phase, seconds per step, peak memory, projection."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from wcbench.cli.app import console


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_rehearsal(report: dict[str, Any]) -> None:
    """One row per timed part of each phase, then the projected totals beside the paper's Table 9."""
    cr = report.get("cost_reduction")
    variant = "" if cr is None else (" (CR)" if cr else " (NCR)")
    table = Table(
        title=f"Rehearsal of {report['searcher']}{variant} on {report['dataset']}, {report['preset']} "
        f"preset: "
        f"{report['steps']} step(s) per stage on {report['device']} ({report['threads']} thread(s))"
    )
    cols = ("phase", "part", "n", "s / unit", "CPU s / unit", "peak MiB", "full-run units", "projected h")
    for col in (*cols, "counted as"):
        right = col in cols[2:]
        table.add_column(col, justify="right" if right else "left")
    for row in report["rows"]:
        projected = row["projected_seconds"]
        table.add_row(
            row["phase"],
            row["part"],
            str(row["count"]),
            _num(row["seconds_per_unit"], ".3f"),
            _num(row.get("cpu_seconds_per_unit"), ".3f"),
            _num(row["peak_memory_mb"], ".0f"),
            _num(row["full_count"], ",.0f")
            if (row["full_count"] or 0) >= 10
            else _num(row["full_count"], ".3g"),
            _num(None if projected is None else projected / 3600, ".3f"),
            row["assumption"],
        )
    wide = Console(width=max(console.width, 160))  # the notes column stays readable in a pipe
    wide.print(table)
    totals = report["totals"]
    paper = report.get("paper_table9") or {}
    peak_search = max(
        (r["peak_memory_mb"] for r in report["rows"] if r["kind"] in ("search", "tester")), default=None
    )
    cost, mem = paper.get("search_cost"), paper.get("memory")
    summary = Table(title="Projected full run, beside the paper's Table 9")
    for col in ("", "projected here", "paper (Table 9)"):
        summary.add_column(col, justify="left" if not col else "right")
    summary.add_row(
        f"search hours on {report['device']} (tester pretraining included)",
        f"{totals['search_hours']:.2f}",
        "-" if cost is None else f"{cost['value']:g} {cost['unit']} ({cost['row']})",
    )
    summary.add_row(
        "search peak memory MiB",
        _num(peak_search, ".0f") + (" (peak RSS)" if report["device"] == "cpu" else ""),
        "-" if mem is None else f"{mem['value']:g} {mem['unit']}",
    )
    summary.add_row("retrain hours", f"{totals['retrain_hours']:.2f}", "-")
    summary.add_row("scorer hours", f"{totals['score_hours']:.2f}", "-")
    wide.print(summary)
    console.print("assumptions:", markup=False)
    for line in report["assumptions"]:
        console.print(f"  - {line}", markup=False)
    console.print(
        f"rehearsal wall time {report['wall_seconds']:.1f} s; written to {report['run_dir']}/rehearsal.json"
    )
