"""The summary `wcbench run` prints at its end: the run's rows of the leaderboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from wcbench.cli.app import console


def print_run_summary(runs_dir: Path, plan: Any) -> None:
    """Mean +- std over seeds of every metric this searcher's runs have on this dataset."""
    from wcbench.pipeline import dataset_dir, searcher_dir
    from wcbench.runs import collect_runs

    df = collect_runs(runs_dir)
    if df.empty:
        console.print("no scores found")
        return
    df = df[
        (df["dataset"] == dataset_dir(plan.dataset))
        & (df["searcher"] == searcher_dir(plan.searcher, plan.space))
    ]
    table = Table(title=f"{plan.searcher} on {plan.dataset}: mean +- std over seeds")
    for col in ("scorer", "metric", "mean", "std", "n", "unit"):
        table.add_column(col, justify="right" if col in ("mean", "std", "n") else "left")
    grouped = df.groupby(["scorer", "metric", "unit"], sort=True)["value"]
    for (scorer, metric, unit), values in grouped:
        values = values.dropna()
        if values.empty:
            continue
        std = values.std(ddof=1) if len(values) > 1 else float("nan")
        table.add_row(scorer, metric, f"{values.mean():.4g}", f"{std:.3g}", str(len(values)), str(unit))
    console.print(table)
