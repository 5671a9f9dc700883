"""A board as Markdown, a rich terminal table, long-format CSV and JSON; all boards written to disk."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wcbench.errors import ConfigError
from wcbench.files import atomic_write_text
from wcbench.report.build import Board
from wcbench.report.grids import (
    Grid,
    json_number,
    paper_grid,
    result_dict,
    runs_grid,
    summary_lines,
    tests_grid,
)
from wcbench.report.html import to_html

__all__ = ["FORMATS", "board_to_dict", "to_csv", "to_json", "to_markdown", "to_table", "write_boards"]

#: Output formats of ``wcbench leaderboard``.
FORMATS = ("table", "md", "csv", "json", "html")


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_grid(grid: Grid) -> str:
    out = ["| " + " | ".join(_md_escape(h) for h in grid.headers) + " |"]
    out.append("|" + "|".join("---" for _ in grid.headers) + "|")
    for row in grid.rows:
        out.append(
            "| "
            + " | ".join(f"**{_md_escape(c.text)}**" if c.bold else _md_escape(c.text) for c in row)
            + " |"
        )
    if grid.footnotes:
        out += ["", *(f"{_md_escape(note)}  " for note in grid.footnotes)]
    return "\n".join(out)


def to_markdown(board: Board) -> str:
    """One board as GitHub Markdown: runs table, t-tests, and the paper's reported numbers."""
    parts = [f"## {board.heading}", ""]
    parts += [*summary_lines(board), ""]
    if board.rows:
        runs = runs_grid(board)
        parts += [f"### {runs.title}", "", _md_grid(runs), ""]
        if board.comparisons:
            tests = tests_grid(board)
            parts += [f"### {tests.title}", "", _md_grid(tests), ""]
    if board.paper:
        paper = paper_grid(board)
        parts += [f"### {paper.title}", "", _md_grid(paper), ""]
    return "\n".join(parts).rstrip() + "\n"


def to_table(board: Board, runs: bool = True, paper: bool = True) -> Any:
    """One board as a rich renderable (a group of tables) for the terminal: the runs and their t-tests
    (``runs``), then the paper's reported numbers (``paper``)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text as RichText

    wrap = {"note", "verdict (Holm)", "row (as printed)", "column"}

    def table(grid: Grid, style: str = "") -> Table:
        t = Table(title=grid.title, box=box.SIMPLE_HEAVY, title_justify="left", title_style=style)
        for i, h in enumerate(grid.headers):  # headers and long texts fold; numbers keep their width
            if h in wrap:
                t.add_column(h, overflow="fold", max_width=48 if h == "note" else 28)
            else:
                widest = max((len(row[i].text) for row in grid.rows), default=1)
                t.add_column(h, overflow="fold", min_width=min(widest, 20))
        for row in grid.rows:
            t.add_row(*(RichText(c.text, style="bold green" if c.bold else "") for c in row))
        if grid.footnotes:
            t.caption = "\n".join(grid.footnotes)
            t.caption_justify = "left"
        return t

    items: list[Any] = [RichText(board.heading, style="bold underline")]
    if runs:
        items += [RichText(line, style="dim") for line in summary_lines(board)]
    if runs and board.rows:
        items.append(table(runs_grid(board), "bold"))
        if board.comparisons:
            items.append(table(tests_grid(board), "bold"))
    if paper and board.paper:
        items.append(table(paper_grid(board), "italic"))
    return Group(*items)


_CSV_FIELDS = [
    "benchmark", "kind", "table", "row", "searcher", "dataset", "space", "column", "metric", "label",
    "direction", "mean", "std", "n", "unit", "seeds", "best", "baseline", "test", "statistic", "pvalue",
    "p_holm", "cohens_d", "reject", "message", "note",
]  # fmt: skip


def to_csv(board: Board) -> str:
    """One board as long-format CSV: ``kind`` = run (a reproduced cell), test (a comparison) or
    reported (a number printed in the paper). p-values at full precision (``repr`` of the float)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    name = board.name

    def r(x: Any) -> Any:
        v = json_number(x) if isinstance(x, float | int | np.floating) and not isinstance(x, bool) else x
        return "" if v is None else (repr(v) if isinstance(v, float) else v)

    for row in board.rows:
        for col in board.spec.columns:
            c = row.cells.get(col.key)
            if c is None:
                continue
            w.writerow(
                {
                    "benchmark": name, "kind": "run", "row": row.label, "searcher": row.searcher,
                    "dataset": row.dataset, "space": row.space or col.space or "", "column": col.key,
                    "metric": col.metric, "label": board.label(col, row), "direction": col.direction,
                    "mean": r(c.mean),
                    "std": r(c.std), "n": c.n, "unit": c.unit, "seeds": " ".join(map(str, c.seeds)),
                    "best": c.best, "baseline": row.baseline or "",
                }
            )  # fmt: skip
    for comp in board.comparisons:
        col, res = board.column(comp.column), comp.result
        w.writerow(
            {
                "benchmark": name, "kind": "test", "searcher": comp.searcher, "dataset": comp.dataset,
                "space": comp.space or col.space or "", "column": col.key, "metric": col.metric,
                "label": board.comparison_label(comp), "direction": col.direction,
                "mean": r(res.mean_a),
                "std": r(res.std_a),
                "n": f"{res.n_a}/{res.n_b}", "unit": comp.unit, "baseline": comp.baseline, "test": res.test,
                "statistic": r(res.statistic), "pvalue": r(res.pvalue), "p_holm": r(res.p_holm),
                "cohens_d": r(res.cohens_d), "reject": comp.reject, "message": res.message,
                "note": comp.warning,
            }
        )  # fmt: skip
    for pr in board.paper:
        for col in board.spec.columns:
            pv = pr.cells.get(col.key)
            if pv is None:
                continue
            w.writerow(
                {
                    "benchmark": name, "kind": "reported", "table": pr.table, "row": pr.row,
                    "searcher": pr.searcher, "dataset": pr.dataset, "space": col.paper_space or "",
                    "column": col.key, "metric": col.paper_metric, "label": col.label,
                    "direction": col.direction, "mean": r(pv.value), "std": r(pv.std), "unit": pv.unit,
                    "note": pv.note,
                }
            )  # fmt: skip
    return buf.getvalue()


def board_to_dict(board: Board) -> dict[str, Any]:
    """A board as plain JSON-able data (NaN -> None; p-values are scipy's floats, unrounded)."""
    spec = board.spec
    return {
        "benchmark": spec.name,
        "title": board.title,
        "paper_tables": list(spec.tables),
        "description": spec.description,
        "runs_dir": board.runs_dir,
        "runs_found": board.runs_found,
        "test": board.test,
        "alpha": board.alpha,
        "columns": [
            {
                "key": c.key,
                "metric": c.metric,
                "scorer": c.scorer,
                "label": board.label(c),
                "direction": c.direction,
                "unit": c.unit,
                "scorers": list(c.scorers),
                "eval_datasets": list(c.eval_datasets) if c.eval_datasets else None,
                "space": c.space,
                "paper_metric": c.paper_metric,
                "paper_tables": list(c.paper_tables),
            }
            for c in spec.columns
        ],
        "rows": [
            {
                "searcher": r.searcher,
                "dataset": r.dataset,
                "space": r.space,
                "n": r.n,
                "baseline": r.baseline,
                "cells": {
                    k: {
                        "mean": json_number(c.mean),
                        "std": json_number(c.std),
                        "n": c.n,
                        "unit": c.unit,
                        "seeds": c.seeds,
                        "values": [json_number(v) for v in c.values],
                        "best": c.best,
                    }
                    for k, c in r.cells.items()
                },
                "reported": {
                    k: [
                        {
                            "table": v.table,
                            "row": v.row,
                            "value": v.value,
                            "std": json_number(v.std),
                            "unit": v.unit,
                        }
                        for v in vs
                    ]
                    for k, vs in r.reported.items()
                },
            }
            for r in board.rows
        ],
        "comparisons": [
            {
                "searcher": c.searcher,
                "baseline": c.baseline,
                "dataset": c.dataset,
                "space": c.space,
                "column": c.column,
                "primary": c.primary,
                "unit": c.unit,
                "reject": c.reject,
                **result_dict(c.result),
            }
            for c in board.comparisons
        ],
        "reported_in_paper": [
            {
                "table": p.table,
                "row": p.row,
                "method": p.method,
                "searcher": p.searcher or None,
                "configuration": p.configuration.removeprefix("configuration: ") or None,
                "dataset": p.dataset or None,
                "note": p.note,
                "cells": {
                    k: {"value": v.value, "std": json_number(v.std), "unit": v.unit, "note": v.note}
                    for k, v in p.cells.items()
                },
            }
            for p in board.paper
        ],
    }


def to_json(board: Board) -> str:
    """One board as indented JSON (see :func:`board_to_dict`)."""
    return json.dumps(board_to_dict(board), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --------------------------------------------------------------------------------------------------
# writing

_EXT = {"md": "md", "csv": "csv", "json": "json"}


def write_boards(
    boards: Sequence[Board],
    out_dir: str | Path = "leaderboards",
    formats: Iterable[str] = ("md", "csv", "json", "html"),
) -> list[Path]:
    """Write ``<out_dir>/generated/<benchmark>.<md|csv|json>`` and ``<out_dir>/index.html`` atomically;
    returns the paths written. ``table`` (terminal only) writes nothing."""
    out = Path(out_dir)
    written: list[Path] = []
    fmts = list(formats)
    for f in fmts:
        if f not in FORMATS:
            raise ConfigError(f"unknown format {f!r}; choose from {', '.join(FORMATS)}")
    render = {"md": to_markdown, "csv": to_csv, "json": to_json}
    for f in fmts:
        if f in render:
            for b in boards:
                path = out / "generated" / f"{b.name}.{_EXT[f]}"
                atomic_write_text(path, render[f](b))
                written.append(path)
    if "html" in fmts:
        path = out / "index.html"
        atomic_write_text(path, to_html(boards))
        written.append(path)
    return written
