"""A board as grids of text: the numbers formatted as the paper prints them, one grid per table
(runs, t-tests, the paper's reported numbers), shared by every renderer."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wcbench.report.boards import Column
from wcbench.report.build import Board, Cell, Comparison, PaperValue, Row
from wcbench.runs import DEFAULT_SPACE, searcher_dir
from wcbench.stats import TestResult

__all__ = ["TEST_DESCRIPTIONS", "format_p", "format_value", "result_dict"]

_TEST_LABEL = {"welch": "Welch", "paired": "paired", "one-sample": "one-sample"}
#: One-line descriptions of the tests, for reports.
TEST_DESCRIPTIONS = {
    "welch": "Welch's t-test (two-sided, scipy.stats.ttest_ind with equal_var=False)",
    "paired": "paired t-test on matching seeds (two-sided, scipy.stats.ttest_rel)",
    "one-sample": "the paper's one-sample t-test (App. B.7: scipy.stats.ttest_1samp of the runs "
    "against the baseline's mean, two-sided)",
}


def format_value(x: float) -> str:
    """Numbers as the paper prints them: 2 decimals; small ones with 3 significant digits."""
    if x is None or not math.isfinite(x):
        return "—"
    if x == 0 or abs(x) >= 0.1:
        return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.2f}"
    return f"{x:.3g}"


def format_p(p: float | None) -> str:
    """A p-value with 3 significant digits (``f"{p:.3g}"``); "—" when undefined."""
    if p is None or not math.isfinite(p):
        return "—"
    return f"{p:.3g}"


def _format_std(std: float, mean_text: str) -> str:
    """The std with as many decimals as the mean (the paper's 2 for most numbers); more digits only
    where that would print a non-zero std as zero."""
    decimals = len(mean_text.partition(".")[2])
    text = f"{std:.{decimals}f}"
    if std != 0 and float(text) == 0:
        return f"{std:.2g}"
    return text


def _fmt_mean_std(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "—"
    mean_text = format_value(mean)
    return f"{mean_text} ± {_format_std(std, mean_text)}" if math.isfinite(std) else mean_text


def _fmt_cell(cell: Cell | None, col: Column, row_n: int) -> str:
    if cell is None:
        return "—"
    text = _fmt_mean_std(cell.mean, cell.std)
    if cell.unit != col.unit:
        text += f" {cell.unit}"
    if cell.n != row_n:
        text += f" (n={cell.n})"
    return text


def _fmt_paper(pv: PaperValue, col_unit: str) -> str:
    text = _fmt_mean_std(pv.value, pv.std)
    return text if pv.unit in (col_unit, "") else f"{text} {pv.unit}"


def _fmt_reported(values: Sequence[PaperValue], col: Column) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{_fmt_paper(values[0], col.unit)} (T{values[0].table})"
    return "; ".join(f"{_fmt_paper(v, col.unit)} (T{v.table}, {v.row})" for v in values)


def json_number(x: float | None) -> Any:
    """JSON/CSV-safe number: NaN and inf become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def result_dict(res: TestResult) -> dict[str, Any]:
    """A t-test result as JSON-able data (NaN -> None)."""
    return {
        "test": res.test,
        "n_a": res.n_a,
        "n_b": res.n_b,
        "mean_a": json_number(res.mean_a),
        "std_a": json_number(res.std_a),
        "mean_b": json_number(res.mean_b),
        "std_b": json_number(res.std_b),
        "statistic": json_number(res.statistic),
        "pvalue": json_number(res.pvalue),
        "p_holm": json_number(res.p_holm),
        "cohens_d": json_number(res.cohens_d),
        "message": res.message or None,
    }


def _fmt_d(d: float) -> str:
    return f"{d:+.2f}" if math.isfinite(d) else "—"


def _fmt_stat(t: float) -> str:
    return f"{t:.3f}" if math.isfinite(t) else "—"


@dataclass
class Text:
    """One cell of a grid; bold marks the best mean or a significant Holm p."""

    text: str
    bold: bool = False


@dataclass
class Grid:
    """One table of a board: headers, rows of cells, its title, and notes printed once below it."""

    headers: list[str]
    rows: list[list[Text]]
    title: str = ""
    footnotes: list[str] = field(default_factory=list)


def _row_test_cells(board: Board, row: Row) -> list[Text]:
    comp = board.row_comparison(row)
    if comp is None:
        return [Text(row.baseline or "—"), Text("—"), Text("—"), Text("—")]
    res = comp.result
    if res.degenerate:
        return [Text(comp.baseline), Text(f"n/a: {res.message}"), Text("—"), Text("—")]
    return [
        Text(comp.baseline),
        Text(format_p(res.pvalue)),
        Text(format_p(res.p_holm), comp.reject),
        Text(_fmt_d(res.cohens_d)),
    ]


def runs_grid(board: Board) -> Grid:
    """wcbench's runs: one row per searcher and search dataset, the row's test, the paper's number."""
    spec = board.spec
    primary = spec.columns[spec.primary] if spec.primary is not None else None
    headers = ["searcher", "searched on", "n"] + [f"{board.label(c)} {c.arrow}" for c in spec.columns]
    if primary is not None:
        headers += [
            "baseline",
            f"p ({_TEST_LABEL[board.test]}, {board.text(primary)})",
            "p (Holm)",
            "Cohen's d",
            f"reported in the paper ({primary.text})",
        ]
    else:
        headers += ["baseline"]
    rows = []
    for r in board.rows:
        cells = [Text(r.label), Text(r.dataset), Text(str(r.n))]
        for c in spec.columns:
            cell = r.cells.get(c.key)
            cells.append(Text(_fmt_cell(cell, c, r.n), bool(cell and cell.best)))
        if primary is not None:
            cells += _row_test_cells(board, r)
            cells.append(Text(_fmt_reported(r.reported.get(primary.key, []), primary)))
        else:
            cells.append(Text(r.baseline or "—"))
        rows.append(cells)
    return Grid(headers, rows, f"wcbench runs ({board.runs_dir})")


def _verdict(comp: Comparison, col: Column, alpha: float) -> str:
    res = comp.result
    if res.degenerate:
        return f"n/a: {res.message}"
    diff = res.mean_a - res.mean_b
    better = (diff < 0) == (col.direction == "lower")
    few = f"; {comp.warning}" if comp.warning else ""
    if comp.reject:
        return f"significant ({'better' if better else 'worse'}){few}"
    return f"not significant at α={alpha:g}{few}"


def tests_grid(board: Board) -> Grid:
    """Every t-test of the board, with Holm's verdict."""
    headers = [
        "searcher", "vs", "searched on", "column", "n", "mean ± std", "baseline mean ± std", "t",
        "p", "p (Holm)", "Cohen's d", "verdict (Holm)",
    ]  # fmt: skip
    rows = []
    for c in board.comparisons:
        res, col = c.result, board.column(c.column)
        label = searcher_dir(c.searcher, c.space or DEFAULT_SPACE)
        unit = f" {c.unit}" if c.unit and c.unit != col.unit else ""
        rows.append(
            [
                Text(label),
                Text(c.baseline),
                Text(c.dataset),
                Text(board.comparison_label(c)),
                Text(f"{res.n_a} / {res.n_b}"),
                Text(_fmt_mean_std(res.mean_a, res.std_a) + unit),
                Text(_fmt_mean_std(res.mean_b, res.std_b) + unit),
                Text(_fmt_stat(res.statistic)),
                Text(format_p(res.pvalue)),
                Text(format_p(res.p_holm), c.reject),
                Text(_fmt_d(res.cohens_d)),
                Text(_verdict(c, col, board.alpha)),
            ]
        )
    return Grid(headers, rows, "t-tests")


def paper_grid(board: Board) -> Grid:
    """The paper's rows for the board's columns, as printed and labelled with the paper's datasets."""
    cols = [c for c in board.spec.columns if c.paper_metric]
    headers = ["table", "row (as printed)", "wcbench searcher", "searched on"]
    headers += [f"{c.label} {c.arrow}" for c in cols] + ["note"]
    rows = []
    counts = Counter(pr.note for pr in board.paper if pr.note)
    footnotes = [note for note in counts if counts[note] > 1]  # a note of several rows: once, below
    for pr in board.paper:
        searcher = pr.configuration.removeprefix("configuration: ") if pr.configuration else pr.searcher
        cells = [Text(str(pr.table)), Text(pr.row), Text(searcher or "—"), Text(pr.dataset or "—")]
        for c in cols:
            pv = pr.cells.get(c.key)
            cells.append(Text(_fmt_paper(pv, c.unit) if pv else "—"))
        cells.append(Text(f"[{footnotes.index(pr.note) + 1}]" if pr.note in footnotes else pr.note))
        rows.append(cells)
    if not any(pr.note for pr in board.paper):
        headers.pop()
        rows = [r[:-1] for r in rows]
    tables = sorted({pr.table for pr in board.paper})
    ref = ("Table " if len(tables) == 1 else "Tables ") + ", ".join(str(t) for t in tables)
    if board.title != board.spec.title:  # the runs are of another dataset: say which one the paper's are
        ref += f", {board.spec.title}"
    title = f"Reported in the paper ({ref}): numbers as printed, not reproduced here"
    return Grid(headers, rows, title, [f"[{i}] {note}" for i, note in enumerate(footnotes, 1)])


def summary_lines(board: Board) -> list[str]:
    """What the board shows and how it was tested, in sentences."""
    spec = board.spec
    lines = [spec.description] if spec.description else []
    if not board.runs_found:
        shown = "only the paper's reported numbers are shown" if spec.tables else "nothing to show"
        lines.append(f"No runs found under {board.runs_dir}: {shown}.")
    elif not board.rows:
        lines.append(f"None of the runs in {board.runs_dir} has scores for this board.")
    else:
        n_comp = len(board.comparisons)
        tests = (
            f"Test: {TEST_DESCRIPTIONS[board.test]} against the matched baseline "
            "(s-X vs X; ours-X also vs spcl-X and dihcl-X); Holm's correction over the "
            f"board's {n_comp} comparison{'s' if n_comp != 1 else ''}, α = {board.alpha:g}. "
            if n_comp
            else "No t-tests: no row has its matched baseline's runs (s-X vs X; ours-X also vs spcl-X and "
            "dihcl-X). "
        )
        lines.append(
            f"Mean ± sample std over seeds; n = seeds per row. {tests}"
            "Bold: best per column (per search dataset)."
        )
        others = sorted({r.dataset for r in board.rows if not r.paper_dataset})
        if others:
            lines.append(
                f"Rows searched on {', '.join(others)} (datasets the paper does not use) are sanity runs: "
                "no reported number is matched to them."
            )
    return lines
