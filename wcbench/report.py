"""Leaderboards: wcbench's own runs, per benchmark of the paper, with the paper's numbers beside them.

A board is computed from the run tree (:func:`wcbench.runs.collect_runs`, DESIGN.md "Runs on disk")
and the paper's transcribed results (:func:`wcbench.paper_results.load_paper_results`):

- one row per (search dataset, searcher[, search space]): mean +- sample std over seeds and n per
  column;
- the matched-baseline t-test per row and column (DESIGN.md "Statistics"): ``<strategy>-X`` against
  the plain baseline ``X`` (``ours-pdarts`` vs ``pdarts``, ``spcl-pdarts`` vs ``pdarts``, ...), and
  ``ours-X`` also against ``spcl-X`` and ``dihcl-X`` as the paper's Tables 21-22 do; Welch by default
  (:func:`wcbench.stats.compare`), Holm over all of a board's comparisons, Cohen's d;
- the best mean per column (per search dataset and space) marked, by the column's direction;
- the paper's reported numbers, labelled as reported, never mixed into the statistics.

Conventions (documented here because :mod:`wcbench.pipeline` writes the runs):

- **Search spaces.** A run searched in a RobustDARTS space lives under a searcher directory with a
  ``+<space>`` suffix: ``runs/cifar10/darts2nd+s1/seed-0``. Without a suffix the space is the
  manifest's ``config.space`` (or ``space``) when present, else ``darts``. Only the S1-S4 board
  (paper Table 4) and the search-cost board show runs outside the DARTS space.
- **Units.** Reproduced ``params`` counts (unit ``params``) and ``macs`` (unit ``MACs``) are shown in
  millions, search cost in GPU-days (``GPU-h`` / 24; CPU runs in CPU-days, labelled), memory in MiB
  (the cost scorer's ``MB`` is read as MiB). The paper's Table 9 search costs are printed with a
  "GPU hours" caption but equal the GPU-day figures of Table 5 (``leaderboards/paper/README.md``):
  they are shown as GPU-days with that note.
- **Datasets the paper does not use** (the embedded ``digits``, ``fashion-mnist``, ...) appear on the
  boards whose scorers they went through (clean, worst-case, corruption, attacks, cost) as sanity
  rows; no reported number is matched to them.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wcbench.errors import ConfigError
from wcbench.paper_results import load_paper_results
from wcbench.runs import atomic_write_text, read_json
from wcbench.stats import TESTS, TestResult, compare, holm_reject, summarize, with_holm

__all__ = [
    "BOARDS",
    "FORMATS",
    "Board",
    "BoardSpec",
    "Cell",
    "Column",
    "Comparison",
    "CompareReport",
    "PaperRow",
    "Row",
    "annotate_runs",
    "board_to_dict",
    "build_board",
    "build_boards",
    "check_benchmark",
    "compare_cells",
    "compare_runs",
    "format_p",
    "format_value",
    "split_space",
    "to_csv",
    "to_html",
    "to_json",
    "to_markdown",
    "to_table",
    "write_boards",
]

#: Output formats of ``wcbench leaderboard``.
FORMATS = ("table", "md", "csv", "json", "html")
DEFAULT_SPACE = "darts"
_STRATEGY_ORDER = {"": 0, "plain": 0, "spcl": 1, "dihcl": 2, "ours": 3}
_TEST_LABEL = {"welch": "Welch", "paired": "paired", "one-sample": "one-sample"}
#: One-line descriptions of the tests, for reports.
TEST_DESCRIPTIONS = {
    "welch": "Welch's t-test (two-sided, scipy.stats.ttest_ind with equal_var=False)",
    "paired": "paired t-test on matching seeds (two-sided, scipy.stats.ttest_rel)",
    "one-sample": "the paper's one-sample t-test (App. B.7: scipy.stats.ttest_1samp of the runs "
    "against the baseline's mean, two-sided)",
}


def _norm(name: str | None) -> str:
    """Dataset names compared loosely: ``CIFAR10-C``, ``cifar10_c`` and ``cifar10c`` are one name."""
    return re.sub(r"[-_\s]", "", str(name or "").lower())


#: Datasets of the paper. A column's eval filter is strict for these; other datasets (the embedded
#: ones) pass where the column accepts them (``Column.accept_other``).
PAPER_DATASETS = frozenset(
    _norm(d)
    for d in (
        "cifar10",
        "cifar100",
        "cifar10-c",
        "cifar100-c",
        "imagenet",
        "imagenet-c",
        "imagenet-a",
        "imagenet-r",
        "imagenet-sketch",
        "stl10",
    )
)


# --------------------------------------------------------------------------------------------------
# board specifications


@dataclass(frozen=True)
class Column:
    """One column of a board: a score metric, how to read it, and the paper's matching metric."""

    key: str
    metric: str
    label: str
    direction: str = "lower"  # "lower" or "higher" is better
    unit: str = "%"
    scorers: tuple[str, ...] | None = None  # accepted scorer names, in order of preference; None: any
    eval_datasets: tuple[str, ...] | None = None  # the score's dataset; None: any
    accept_other: bool = False  # datasets the paper does not use pass the eval filter (sanity runs)
    space: str | None = None  # only runs in this search space (Table 4's S1-S4 columns)
    paper_metric: str | None = None
    paper_tables: tuple[int, ...] = ()  # in order of preference for the "reported" value of a row
    paper_eval: tuple[str, ...] | None = None  # the paper row's eval_dataset; None: any
    paper_space: str | None = None  # Table 4: the space parsed from the paper's row label
    aliases: tuple[str, ...] = ()  # other names scorers write for this metric (after ``metric``)

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric, *self.aliases)

    @property
    def arrow(self) -> str:
        return "↓" if self.direction == "lower" else "↑"

    def accepts_eval(self, eval_dataset: str) -> bool:
        if self.eval_datasets is None:
            return True
        e = _norm(eval_dataset)
        if e in {_norm(d) for d in self.eval_datasets}:
            return True
        return self.accept_other and e not in PAPER_DATASETS


@dataclass(frozen=True)
class BoardSpec:
    """A benchmark of the paper: title, paper tables, columns, and the paper-CSV key."""

    name: str
    title: str
    tables: tuple[int, ...]
    columns: tuple[Column, ...]
    paper_benchmark: str
    description: str = ""
    primary: int | None = 0  # the column whose test is shown in each row; None: tests table only
    spaces: tuple[str, ...] | None = (DEFAULT_SPACE,)  # row spaces; None: any (rows keyed by space)

    @property
    def table_ref(self) -> str:
        t = self.tables
        return f"Table {t[0]}" if len(t) == 1 else "Tables " + ", ".join(str(x) for x in t)


_CLEAN = ("clean",)
_CIFAR = ("cifar10", "cifar100")


def _attack(key: str, metric: str, label: str, ev: str, table: int, paper: str | None) -> Column:
    return Column(
        key=f"{key}_{ev}",
        metric=metric,
        aliases=(f"{key}_acc",),  # the attacks scorer's names: clean_acc, pgd10_acc, ..., cw_acc
        label=f"{label} {'CIFAR-10' if ev == 'cifar10' else 'ImageNet'} (%)",
        direction="higher",
        eval_datasets=(ev,),
        accept_other=ev == "cifar10",
        paper_metric=paper,
        paper_tables=(table,) if paper else (),
        paper_eval=(ev,),
    )


# fmt: off
#: The boards, one per benchmark of the paper, in the paper's order.
BOARDS: dict[str, BoardSpec] = {b.name: b for b in (
    BoardSpec(
        "worst_case_cifar100", "Worst-case CIFAR-100", (1,),
        (
            Column("worst_case", "worst_case_error", "worst-case error (%)", eval_datasets=("cifar100",),
                   accept_other=True, paper_metric="worst_case_error", paper_tables=(1,)),
            Column("average_case", "average_case_error", "average-case error (%)",
                   eval_datasets=("cifar100",), accept_other=True, paper_metric="average_case_error",
                   paper_tables=(1,)),
            Column("all", "all_error", "all-images error (%)", eval_datasets=("cifar100",),
                   accept_other=True, paper_metric="test_error", paper_tables=(1,)),
        ),
        "worst_case_cifar100",
        "Error on the 2,000 worst-case, the 8,000 other and all 10,000 CIFAR-100 test images.",
    ),
    BoardSpec(
        "cifar10c", "CIFAR-10-C", (2,),
        (
            Column("corruption_error", "mean_corruption_error", "mean corruption error (%)",
                   eval_datasets=("cifar10-c", "cifar10"), accept_other=True,
                   paper_metric="corruption_error", paper_tables=(2,)),
        ),
        "cifar10c",
        "Average error over the 15 corruptions x 5 severities of CIFAR-10-C; searched on CIFAR-10.",
    ),
    BoardSpec(
        "imagenet_c", "ImageNet-C", (3,),
        (
            Column("mce", "mce", "mCE (%)", eval_datasets=("imagenet-c", "imagenet"),
                   paper_metric="mce", paper_tables=(3,)),
            Column("mean_error", "mean_error", "mean error (%)", eval_datasets=("imagenet-c", "imagenet")),
        ),
        "imagenet_c",
        "Mean corruption error (AlexNet-normalised) on ImageNet-C; searched on ImageNet.",
    ),
    BoardSpec(
        "search_spaces_s1_s4", "RobustDARTS spaces S1-S4", (4,),
        tuple(
            Column(f"s{i}", "top1_error", f"S{i} test error (%)", scorers=_CLEAN, eval_datasets=_CIFAR,
                   accept_other=True, space=f"s{i}", paper_metric="test_error", paper_tables=(4,),
                   paper_space=f"s{i}")
            for i in range(1, 5)
        ),
        "search_spaces_s1_s4",
        "Test error of architectures searched in the RobustDARTS spaces S1-S4 (performance collapse). "
        "Runs of space s<k> live in searcher directories with a +s<k> suffix (darts2nd+s1).",
        primary=None,
        spaces=None,
    ),
    BoardSpec(
        "cifar_overall", "CIFAR-10 and CIFAR-100", (5, 18, 19),
        (
            Column("test_error", "top1_error", "test error (%)", scorers=_CLEAN, eval_datasets=_CIFAR,
                   accept_other=True, paper_metric="test_error", paper_tables=(5, 18, 19)),
            Column("params", "params", "params (M)", unit="M", scorers=("cost",), paper_metric="params",
                   paper_tables=(5, 18, 19)),
        ),
        "cifar_overall",
        "Test error on the whole test set and parameters of the evaluation network.",
    ),
    BoardSpec(
        "imagenet", "ImageNet", (6, 23),
        (
            Column("top1_error", "top1_error", "top-1 error (%)", scorers=_CLEAN, eval_datasets=("imagenet",),
                   paper_metric="top1_error", paper_tables=(6, 23)),
            Column("top5_error", "top5_error", "top-5 error (%)", scorers=_CLEAN, eval_datasets=("imagenet",),
                   paper_metric="top5_error", paper_tables=(6, 23)),
            Column("params", "params", "params (M)", unit="M", scorers=("cost",), eval_datasets=("imagenet",),
                   paper_metric="params", paper_tables=(23,)),
            Column("macs", "macs", "multiply-adds (M)", unit="M", scorers=("cost",),
                   eval_datasets=("imagenet",), paper_metric="flops", paper_tables=(23,)),
        ),
        "imagenet",
        "Top-1/top-5 error of the mobile-setting network on ImageNet; the paper's FLOPs column is "
        "multiply-adds from unstated counters (REFERENCE.md).",
    ),
    BoardSpec(
        "imagenet_a_r_sketch", "ImageNet-A, ImageNet-R, ImageNet-Sketch", (10, 11, 12),
        (
            Column("imagenet_a", "top1_accuracy", "ImageNet-A accuracy (%)", "higher",
                   eval_datasets=("imagenet-a",), paper_metric="accuracy", paper_tables=(10,),
                   paper_eval=("imagenet-a",), aliases=("top1_acc",)),
            Column("imagenet_r", "top1_error", "ImageNet-R error (%)", eval_datasets=("imagenet-r",),
                   paper_metric="top1_error", paper_tables=(11,), paper_eval=("imagenet-r",)),
            Column("imagenet_sketch", "top1_accuracy", "ImageNet-Sketch accuracy (%)", "higher",
                   eval_datasets=("imagenet-sketch",), paper_metric="accuracy", paper_tables=(12,),
                   paper_eval=("imagenet-sketch",), aliases=("top1_acc",)),
        ),
        "imagenet_a_r_sketch",
        "ImageNet-A and -Sketch as accuracy, ImageNet-R as top-1 error, as the paper reports them.",
    ),
    BoardSpec(
        "attacks", "Adversarial attacks", (15, 16),
        (
            _attack("clean", "clean_accuracy", "clean acc.", "cifar10", 15, None),
            _attack("pgd10", "robust_accuracy_pgd10", "PGD-10 acc.", "cifar10", 15, "pgd10_accuracy"),
            _attack("pgd20", "robust_accuracy_pgd20", "PGD-20 acc.", "cifar10", 15, "pgd20_accuracy"),
            _attack("pgd100", "robust_accuracy_pgd100", "PGD-100 acc.", "cifar10", 15, "pgd100_accuracy"),
            _attack("fgsm", "robust_accuracy_fgsm", "FGSM acc.", "cifar10", 15, "fgsm_accuracy"),
            _attack("cw", "robust_accuracy_cw", "C&W acc.", "cifar10", 15, "cw_accuracy"),
            _attack("pgd100", "robust_accuracy_pgd100", "PGD-100 acc.", "imagenet", 16, "pgd100_accuracy"),
            _attack("fgsm", "robust_accuracy_fgsm", "FGSM acc.", "imagenet", 16, "fgsm_accuracy"),
            _attack("cw", "robust_accuracy_cw", "C&W acc.", "imagenet", 16, "cw_accuracy"),
        ),
        "attacks",
        "Accuracy under PGD(10/20/100), FGSM and C&W on CIFAR-10 (Table 15) and ImageNet (Table 16); "
        "the attack parameters are in each score file.",
        primary=1,
    ),
    BoardSpec(
        "stl10", "STL-10 transfer", (17,),
        (
            Column("accuracy", "top1_accuracy", "STL-10 accuracy (%)", "higher", eval_datasets=("stl10",),
                   paper_metric="accuracy", paper_tables=(17,), paper_eval=("stl10",),
                   aliases=("stl10_acc", "top1_acc")),
        ),
        "stl10",
        "Architectures searched on CIFAR-10/100, retrained from scratch on STL-10's train split.",
    ),
    BoardSpec(
        "search_cost", "Search cost and memory", (9,),
        (
            Column("search_cost", "search_gpu_hours", "search cost (GPU-days)", unit="GPU-days",
                   scorers=("cost", "search_cost"), paper_metric="search_cost",
                   paper_tables=(9, 5, 18, 19, 23)),
            Column("memory", "peak_train_memory_mb", "peak memory (MiB)", unit="MiB", scorers=("cost",),
                   paper_metric="memory", paper_tables=(9,)),
            Column("params", "params", "params (M)", unit="M", scorers=("cost",), paper_metric="params",
                   paper_tables=(9, 5, 18, 19, 23)),
            Column("latency_b1", "latency_b1_ms", "latency b=1 (ms)", unit="ms", scorers=("cost",),
                   aliases=("latency_bs1_ms",)),
            Column("latency_b256", "latency_b256_ms", "latency b=256 (ms)", unit="ms", scorers=("cost",),
                   aliases=("latency_bs256_ms",)),
        ),
        "search_cost",
        "Search cost (GPU-days: the paper's Table 9 caption says GPU hours, but its numbers equal the "
        "GPU-day figures of Table 5) and peak training memory; runs on CPU are shown in CPU-days.",
        spaces=None,
    ),
)}
# fmt: on

# Paper cells whose printed unit is wrong (leaderboards/paper/README.md, "Table 9, search cost unit").
_PAPER_UNIT_FIXES = {(9, "search_cost", "GPU-h"): "GPU-days"}

# Reproduced units -> (display unit, factor).
_CONVERSIONS: dict[tuple[str, str], tuple[str, float]] = {
    ("params", "M"): ("M", 1e-6),
    ("MACs", "M"): ("M", 1e-6),
    ("GPU-h", "GPU-days"): ("GPU-days", 1 / 24),
    ("CPU-h", "GPU-days"): ("CPU-days", 1 / 24),
    ("MB", "MiB"): ("MiB", 1.0),
}


def _convert(value: float, unit: str, target: str) -> tuple[float, str]:
    if not unit or unit == target:
        return value, target
    if (unit, target) in _CONVERSIONS:
        shown, factor = _CONVERSIONS[(unit, target)]
        return value * factor, shown
    return value, unit


def check_benchmark(name: str) -> BoardSpec:
    """The spec of board ``name``; an unknown name raises :class:`ConfigError` listing the known ones."""
    if name not in BOARDS:
        import difflib

        close = difflib.get_close_matches(name, list(BOARDS), n=1)
        maybe = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown benchmark {name!r}{maybe}; known: {', '.join(BOARDS)}")
    return BOARDS[name]


# --------------------------------------------------------------------------------------------------
# runs: searcher names, spaces, baselines


def split_space(searcher: str) -> tuple[str, str | None]:
    """``"darts2nd+s1"`` -> ``("darts2nd", "s1")``; ``"pdarts"`` -> ``("pdarts", None)``."""
    m = re.fullmatch(r"(.+)\+([A-Za-z0-9_]+)", searcher)
    return (m.group(1), m.group(2).lower()) if m else (searcher, None)


def split_strategy(searcher: str) -> tuple[str, str]:
    """``"ours-pdarts"`` -> ``("ours", "pdarts")``; a plain baseline ``"pdarts"`` -> ``("", "pdarts")``."""
    strategy, sep, algorithm = searcher.partition("-")
    return (strategy, algorithm) if sep and algorithm else ("", searcher)


def _manifest_space(run_dir: Path, cache: dict[Path, str | None]) -> str | None:
    if run_dir not in cache:
        space = None
        path = run_dir / "manifest.json"
        if path.is_file():
            try:
                m = read_json(path)
            except Exception:  # noqa: BLE001 - a broken manifest must not break the board
                m = {}
            if isinstance(m, dict):
                cfg = m.get("config") if isinstance(m.get("config"), dict) else {}
                value = cfg.get("space") or m.get("space")
                space = str(value).lower() if value else None
        cache[run_dir] = space
    return cache[run_dir]


def annotate_runs(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`~wcbench.runs.collect_runs`'s table plus ``base`` (searcher without the space suffix)
    and ``space`` (the suffix, else the manifest's ``config.space``, else ``darts``)."""
    out = df.copy()
    bases, spaces = [], []
    cache: dict[Path, str | None] = {}
    for searcher, path in zip(out["searcher"], out["path"]):
        base, space = split_space(str(searcher))
        if space is None and isinstance(path, str) and path:
            space = _manifest_space(Path(path).parent.parent, cache)
        bases.append(base)
        spaces.append(space or DEFAULT_SPACE)
    out["base"] = pd.Series(bases, index=out.index, dtype=object)
    out["space"] = pd.Series(spaces, index=out.index, dtype=object)
    return out


# --------------------------------------------------------------------------------------------------
# the board


@dataclass
class Cell:
    """One reproduced number: mean +- sample std over n seeds (values in seed order, display unit)."""

    mean: float
    std: float
    n: int
    unit: str
    seeds: list[int]
    values: list[float]
    best: bool = False


@dataclass
class PaperValue:
    """One number as printed in the paper."""

    table: int
    row: str
    value: float
    std: float
    unit: str
    note: str = ""


@dataclass
class Row:
    """One searcher on one search dataset (and space) with its cells."""

    dataset: str
    searcher: str
    space: str | None
    cells: dict[str, Cell] = field(default_factory=dict)
    reported: dict[str, list[PaperValue]] = field(default_factory=dict)
    baseline: str | None = None

    @property
    def label(self) -> str:
        return self.searcher if self.space in (None, DEFAULT_SPACE) else f"{self.searcher}+{self.space}"

    @property
    def n(self) -> int:
        return max((c.n for c in self.cells.values()), default=0)

    @property
    def paper_dataset(self) -> bool:
        return _norm(self.dataset) in PAPER_DATASETS


@dataclass
class Comparison:
    """One t-test on a board: ``searcher`` against ``baseline`` on one column."""

    dataset: str
    space: str | None
    searcher: str
    baseline: str
    column: str
    result: TestResult
    reject: bool = False
    primary: bool = False  # the row's test against its plain baseline (shown in the row)
    unit: str = ""  # the unit both cells are in (the column's display unit unless noted)


@dataclass
class PaperRow:
    """One row of the paper's table(s), pivoted to the board's columns."""

    table: int
    row: str
    method: str
    searcher: str
    dataset: str
    note: str
    cells: dict[str, PaperValue] = field(default_factory=dict)


@dataclass
class Board:
    """A computed leaderboard; render it with :func:`to_markdown`, :func:`to_table`, ..."""

    spec: BoardSpec
    rows: list[Row]
    comparisons: list[Comparison]
    paper: list[PaperRow]
    test: str = "welch"
    alpha: float = 0.05
    runs_found: bool = True
    runs_dir: str = "runs"

    @property
    def name(self) -> str:
        return self.spec.name

    def column(self, key: str) -> Column:
        return next(c for c in self.spec.columns if c.key == key)

    def row_comparison(self, row: Row) -> Comparison | None:
        """The test of ``row`` against its plain baseline on the primary column, if any."""
        if self.spec.primary is None:
            return None
        key = self.spec.columns[self.spec.primary].key
        for c in self.comparisons:
            if (
                c.primary
                and c.column == key
                and (c.dataset, c.searcher, c.space)
                == (
                    row.dataset,
                    row.searcher,
                    row.space,
                )
            ):
                return c
        return None


def _sort_key(row: Row) -> tuple[Any, ...]:
    strategy, algorithm = split_strategy(row.searcher)
    return (
        not row.paper_dataset,
        row.dataset,
        row.space or "",
        algorithm,
        _STRATEGY_ORDER.get(strategy, 9),
        row.searcher,
    )


def _column_frame(df: pd.DataFrame, col: Column, spec: BoardSpec) -> pd.DataFrame:
    """The rows of ``df`` that feed ``col``: one value per (dataset, base, space, seed)."""
    sub = df[df["metric"].isin(col.metrics)]
    if col.scorers is not None:
        sub = sub[sub["scorer"].isin(col.scorers)]
    if col.space is not None:
        sub = sub[sub["space"] == col.space]
    elif spec.spaces is not None:
        sub = sub[sub["space"].isin(spec.spaces)]
    if col.eval_datasets is not None and len(sub):
        sub = sub[[col.accepts_eval(str(e)) for e in sub["eval_dataset"]]]
    if not len(sub):
        return sub
    rank = {s: i for i, s in enumerate(col.scorers or ())}
    name_rank = {m: i for i, m in enumerate(col.metrics)}
    sub = sub.assign(
        _rank=[rank.get(s, len(rank)) for s in sub["scorer"]],
        _name=[name_rank[m] for m in sub["metric"]],
    )
    sub = sub.sort_values(["_rank", "_name", "scorer", "path"], kind="stable")
    return sub.drop_duplicates(["dataset", "base", "space", "seed"], keep="first")


def _paper_space(row_label: str) -> str | None:
    m = re.match(r"\s*S\s*(\d)", row_label)
    return f"s{m.group(1)}" if m else None


def _paper_unit(table: int, metric: str, unit: str) -> tuple[str, str]:
    fixed = _PAPER_UNIT_FIXES.get((table, metric, unit))
    if fixed:
        return fixed, f"shown in {fixed}"
    return unit, ""


def _add_note(notes: str, new: str) -> str:
    """Join ``;``-separated note parts without repeating a part."""
    parts = [p.strip() for p in notes.split(";") if p.strip()]
    for p in new.split(";"):
        if p.strip() and p.strip() not in parts:
            parts.append(p.strip())
    return "; ".join(parts)


def _paper_rows(paper: pd.DataFrame, spec: BoardSpec) -> list[PaperRow]:
    rows: dict[tuple[Any, ...], PaperRow] = {}
    for col in spec.columns:
        if not col.paper_metric:
            continue
        sub = paper[(paper["metric"] == col.paper_metric) & paper["table"].isin(col.paper_tables)]
        if col.paper_eval is not None:
            sub = sub[sub["eval_dataset"].map(_norm).isin({_norm(e) for e in col.paper_eval})]
        for rec in sub.itertuples(index=False):
            label = rec.row
            if col.paper_space is not None:
                if _paper_space(rec.row) != col.paper_space:
                    continue
                marker = re.sub(r"^\s*S\s*\d", "", rec.row).strip()
                label = f"{rec.method}{(' ' + marker) if marker else ''}"
            key = (rec.table, label, rec.method, rec.dataset, rec.eval_dataset if col.paper_space else "")
            pr = rows.get(key)
            if pr is None:
                pr = rows[key] = PaperRow(rec.table, label, rec.method, rec.searcher, rec.dataset, "")
            unit, unit_note = _paper_unit(rec.table, rec.metric, rec.unit)
            note = _add_note(rec.note, unit_note)
            if col.key not in pr.cells:
                pr.cells[col.key] = PaperValue(rec.table, rec.row, rec.value, rec.std, unit, note)
            pr.note = _add_note(pr.note, note)
    order = {t: i for i, t in enumerate(spec.tables)}
    return sorted(rows.values(), key=lambda r: (order.get(r.table, 99), r.table))  # stable: CSV order


def _table4_method(searcher: str) -> str | None:
    """Table 4 names methods, not wcbench searchers: ours-* -> Ours, spcl-* -> SPCL, darts* -> DARTS."""
    strategy, algorithm = split_strategy(searcher)
    if strategy == "ours":
        return "Ours"
    if strategy == "spcl":
        return "SPCL"
    if strategy == "" and algorithm.startswith("darts"):
        return "DARTS"
    return None


def _reported_for(row: Row, col: Column, paper_rows: Sequence[PaperRow]) -> list[PaperValue]:
    """The paper's number(s) for a reproduced row: same searcher and search dataset (or none given),
    from the first of the column's tables that has one; the wcbench default variant when several."""
    if not row.paper_dataset:
        return []
    for table in col.paper_tables:
        hits: list[tuple[PaperRow, PaperValue]] = []
        for pr in paper_rows:
            pv = pr.cells.get(col.key)
            if pv is None or pr.table != table:
                continue
            if col.paper_space is not None:
                same = pr.method == _table4_method(row.searcher)
            else:
                same = pr.searcher == row.searcher
            if same and pr.dataset in ("", row.dataset):
                hits.append((pr, pv))
        if hits:
            exact = [h for h in hits if h[0].dataset == row.dataset]
            hits = exact or hits
            default = [h for h in hits if "wcbench default" in h[1].note]
            return [pv for _, pv in (default or hits)]
    return []


def _degenerate(test: str, a: Sequence[float], b: Sequence[float], message: str) -> TestResult:
    mean_a, std_a, n_a = summarize(a)
    mean_b, std_b, n_b = summarize(b)
    return TestResult(
        test=test, statistic=math.nan, pvalue=math.nan, n_a=n_a, n_b=n_b, mean_a=mean_a, std_a=std_a,
        mean_b=mean_b, std_b=std_b, cohens_d=math.nan, message=message,
    )  # fmt: skip


def _seeds(seeds: Sequence[int]) -> str:
    return ",".join(str(s) for s in seeds) or "none"


def compare_cells(a: Cell, b: Cell, test: str, a_name: str = "a", b_name: str = "b") -> TestResult:
    """:func:`wcbench.stats.compare` on two cells; paired pairs by seed (a clear message when the
    seed sets differ), and cells in different units are never compared."""
    if a.unit != b.unit:
        return _degenerate(test, a.values, b.values, f"units differ ({a.unit} vs {b.unit}): not compared")
    if test == "paired":
        if sorted(a.seeds) != sorted(b.seeds):
            return _degenerate(
                test, a.values, b.values,
                f"paired test needs the same seeds: {a_name} has {_seeds(a.seeds)}, {b_name} has "
                f"{_seeds(b.seeds)}; use the Welch test",
            )  # fmt: skip
        bv = dict(zip(b.seeds, b.values))
        return compare(a.values, [bv[s] for s in a.seeds], "paired")
    return compare(a.values, b.values, test)


def _comparison_pairs(rows: Sequence[Row]) -> list[tuple[Row, Row, bool]]:
    """(row, baseline row, primary?) pairs: ``s-X`` vs ``X``; ``ours-X`` also vs ``spcl-X``, ``dihcl-X``."""
    index = {(r.dataset, r.space, r.searcher): r for r in rows}
    pairs = []
    for r in rows:
        strategy, algorithm = split_strategy(r.searcher)
        if not strategy:
            continue
        base = index.get((r.dataset, r.space, algorithm))
        if base is not None:
            r.baseline = algorithm
            pairs.append((r, base, True))
        if strategy == "ours":
            for other in ("spcl", "dihcl"):
                b = index.get((r.dataset, r.space, f"{other}-{algorithm}"))
                if b is not None:
                    pairs.append((r, b, False))
    return pairs


def build_board(
    df: pd.DataFrame,
    benchmark: str,
    test: str = "welch",
    alpha: float = 0.05,
    paper: pd.DataFrame | None = None,
    runs_dir: str | Path = "runs",
) -> Board:
    """The leaderboard of ``benchmark`` (a key of :data:`BOARDS`) from a :func:`collect_runs` table.

    ``test`` is the t-test of each matched comparison (``welch``, ``paired``, ``one-sample``);
    Holm's correction runs over all of the board's comparisons at ``alpha``.
    """
    spec = check_benchmark(benchmark)
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    runs = df if "base" in df.columns else annotate_runs(df)
    rows: dict[tuple[str, str, str | None], Row] = {}
    for col in spec.columns:
        sub = _column_frame(runs, col, spec)
        for (dataset, base, space), g in sub.groupby(["dataset", "base", "space"], sort=True):
            row_space = None if col.space is not None else space
            row = rows.setdefault((dataset, base, row_space), Row(dataset, base, row_space))
            g = g.sort_values("seed")
            converted = [_convert(float(v), str(u), col.unit) for v, u in zip(g["value"], g["unit"])]
            units = {u for _, u in converted}
            unit = units.pop() if len(units) == 1 else "mixed units"
            values = [v for v, _ in converted]
            mean, std, n = summarize(values)
            row.cells[col.key] = Cell(mean, std, n, unit, [int(s) for s in g["seed"]], values)
    ordered = sorted(rows.values(), key=_sort_key)

    # best per column, within each search dataset and space
    for col in spec.columns:
        groups: dict[tuple[str, str | None], list[Row]] = {}
        for r in ordered:
            c = r.cells.get(col.key)
            if c is not None and math.isfinite(c.mean):
                groups.setdefault((r.dataset, r.space), []).append(r)
        for members in groups.values():
            if len(members) < 2:
                continue
            means = [m.cells[col.key].mean for m in members]
            best = min(means) if col.direction == "lower" else max(means)
            for m in members:
                m.cells[col.key].best = m.cells[col.key].mean == best

    comparisons: list[Comparison] = []
    for r, b, primary in _comparison_pairs(ordered):
        for col in spec.columns:
            ca, cb = r.cells.get(col.key), b.cells.get(col.key)
            if ca is None or cb is None:
                continue
            res = compare_cells(ca, cb, test, r.label, b.label)
            comparisons.append(
                Comparison(r.dataset, r.space, r.searcher, b.searcher, col.key, res, False, primary, ca.unit)
            )
    adjusted = with_holm([c.result for c in comparisons])
    rejects = holm_reject([c.result.pvalue for c in comparisons], alpha) if comparisons else []
    for c, res, rej in zip(comparisons, adjusted, rejects):
        c.result, c.reject = res, rej

    paper_df = load_paper_results(spec.paper_benchmark) if paper is None else paper
    paper_rows = _paper_rows(paper_df, spec)
    for r in ordered:
        for col in spec.columns:
            rep = _reported_for(r, col, paper_rows)
            if rep:
                r.reported[col.key] = rep
    return Board(spec, ordered, comparisons, paper_rows, test, alpha, bool(len(df)), str(runs_dir))


def build_boards(
    df: pd.DataFrame,
    benchmarks: Iterable[str] | None = None,
    test: str = "welch",
    alpha: float = 0.05,
    runs_dir: str | Path = "runs",
) -> list[Board]:
    """:func:`build_board` for each benchmark (all of :data:`BOARDS` by default)."""
    names = list(BOARDS) if benchmarks is None else list(benchmarks)
    for n in names:
        check_benchmark(n)
    runs = annotate_runs(df)
    return [build_board(runs, n, test, alpha, runs_dir=runs_dir) for n in names]


# --------------------------------------------------------------------------------------------------
# formatting


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


def _fmt_d(d: float) -> str:
    return f"{d:+.2f}" if math.isfinite(d) else "—"


def _fmt_stat(t: float) -> str:
    return f"{t:.3f}" if math.isfinite(t) else "—"


@dataclass
class _Text:
    text: str
    bold: bool = False


@dataclass
class _Grid:
    headers: list[str]
    rows: list[list[_Text]]
    title: str = ""


def _row_test_cells(board: Board, row: Row) -> list[_Text]:
    comp = board.row_comparison(row)
    if comp is None:
        return [_Text(row.baseline or "—"), _Text("—"), _Text("—"), _Text("—")]
    res = comp.result
    if res.degenerate:
        return [_Text(comp.baseline), _Text(f"n/a: {res.message}"), _Text("—"), _Text("—")]
    return [
        _Text(comp.baseline),
        _Text(format_p(res.pvalue)),
        _Text(format_p(res.p_holm), comp.reject),
        _Text(_fmt_d(res.cohens_d)),
    ]


def _runs_grid(board: Board) -> _Grid:
    spec = board.spec
    primary = spec.columns[spec.primary] if spec.primary is not None else None
    headers = ["searcher", "searched on", "n"] + [f"{c.label} {c.arrow}" for c in spec.columns]
    if primary is not None:
        short = primary.label.split(" (")[0]
        headers += [
            "baseline",
            f"p ({_TEST_LABEL[board.test]}, {short})",
            "p (Holm)",
            "Cohen's d",
            f"reported in the paper ({short})",
        ]
    else:
        headers += ["baseline"]
    rows = []
    for r in board.rows:
        cells = [_Text(r.label), _Text(r.dataset), _Text(str(r.n))]
        for c in spec.columns:
            cell = r.cells.get(c.key)
            cells.append(_Text(_fmt_cell(cell, c, r.n), bool(cell and cell.best)))
        if primary is not None:
            cells += _row_test_cells(board, r)
            cells.append(_Text(_fmt_reported(r.reported.get(primary.key, []), primary)))
        else:
            cells.append(_Text(r.baseline or "—"))
        rows.append(cells)
    return _Grid(headers, rows, f"wcbench runs ({board.runs_dir})")


def _verdict(comp: Comparison, col: Column, alpha: float) -> str:
    res = comp.result
    if res.degenerate:
        return f"n/a: {res.message}"
    diff = res.mean_a - res.mean_b
    better = (diff < 0) == (col.direction == "lower")
    if comp.reject:
        return f"significant ({'better' if better else 'worse'})"
    return f"not significant at α={alpha:g}"


def _tests_grid(board: Board) -> _Grid:
    headers = [
        "searcher", "vs", "searched on", "column", "n", "mean ± std", "baseline mean ± std", "t",
        "p", "p (Holm)", "Cohen's d", "verdict (Holm)",
    ]  # fmt: skip
    rows = []
    for c in board.comparisons:
        res, col = c.result, board.column(c.column)
        label = c.searcher if c.space in (None, DEFAULT_SPACE) else f"{c.searcher}+{c.space}"
        unit = f" {c.unit}" if c.unit and c.unit != col.unit else ""
        rows.append(
            [
                _Text(label),
                _Text(c.baseline),
                _Text(c.dataset),
                _Text(col.label),
                _Text(f"{res.n_a} / {res.n_b}"),
                _Text(_fmt_mean_std(res.mean_a, res.std_a) + unit),
                _Text(_fmt_mean_std(res.mean_b, res.std_b) + unit),
                _Text(_fmt_stat(res.statistic)),
                _Text(format_p(res.pvalue)),
                _Text(format_p(res.p_holm), c.reject),
                _Text(_fmt_d(res.cohens_d)),
                _Text(_verdict(c, col, board.alpha)),
            ]
        )
    return _Grid(headers, rows, "t-tests")


def _paper_grid(board: Board) -> _Grid:
    cols = [c for c in board.spec.columns if c.paper_metric]
    headers = ["table", "row (as printed)", "wcbench searcher", "searched on"]
    headers += [f"{c.label} {c.arrow}" for c in cols] + ["note"]
    rows = []
    for pr in board.paper:
        cells = [_Text(str(pr.table)), _Text(pr.row), _Text(pr.searcher or "—"), _Text(pr.dataset or "—")]
        for c in cols:
            pv = pr.cells.get(c.key)
            cells.append(_Text(_fmt_paper(pv, c.unit) if pv else "—"))
        cells.append(_Text(pr.note))
        rows.append(cells)
    tables = sorted({pr.table for pr in board.paper})
    ref = ("Table " if len(tables) == 1 else "Tables ") + ", ".join(str(t) for t in tables)
    return _Grid(headers, rows, f"Reported in the paper ({ref}): numbers as printed, not reproduced here")


def _summary_lines(board: Board) -> list[str]:
    spec = board.spec
    lines = [spec.description] if spec.description else []
    if not board.runs_found:
        lines.append(f"No runs found under {board.runs_dir}: only the paper's reported numbers are shown.")
    elif not board.rows:
        lines.append(f"None of the runs in {board.runs_dir} has scores for this board.")
    else:
        n_comp = len(board.comparisons)
        lines.append(
            "Mean ± sample std over seeds; n = seeds per row. "
            f"Test: {TEST_DESCRIPTIONS[board.test]} against the matched baseline "
            "(s-X vs X; ours-X also vs spcl-X and dihcl-X); Holm's correction over the "
            f"board's {n_comp} comparison{'s' if n_comp != 1 else ''}, α = {board.alpha:g}. Bold: best per "
            "column (per search dataset)."
        )
        others = sorted({r.dataset for r in board.rows if not r.paper_dataset})
        if others:
            lines.append(
                f"Rows searched on {', '.join(others)} (datasets the paper does not use) are sanity runs: "
                "no reported number is matched to them."
            )
    return lines


# --------------------------------------------------------------------------------------------------
# renderers


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_grid(grid: _Grid) -> str:
    out = ["| " + " | ".join(_md_escape(h) for h in grid.headers) + " |"]
    out.append("|" + "|".join("---" for _ in grid.headers) + "|")
    for row in grid.rows:
        out.append(
            "| "
            + " | ".join(f"**{_md_escape(c.text)}**" if c.bold else _md_escape(c.text) for c in row)
            + " |"
        )
    return "\n".join(out)


def to_markdown(board: Board) -> str:
    """One board as GitHub Markdown: runs table, t-tests, and the paper's reported numbers."""
    spec = board.spec
    parts = [f"## {spec.title} (paper {spec.table_ref})", ""]
    parts += [*_summary_lines(board), ""]
    if board.rows:
        runs = _runs_grid(board)
        parts += [f"### {runs.title}", "", _md_grid(runs), ""]
        if board.comparisons:
            tests = _tests_grid(board)
            parts += [f"### {tests.title}", "", _md_grid(tests), ""]
    if board.paper:
        paper = _paper_grid(board)
        parts += [f"### {paper.title}", "", _md_grid(paper), ""]
    return "\n".join(parts).rstrip() + "\n"


def to_table(board: Board) -> Any:
    """One board as a rich renderable (a group of tables) for the terminal."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    wrap = {"note", "verdict (Holm)", "row (as printed)", "column"}

    def table(grid: _Grid, style: str = "") -> Table:
        t = Table(title=grid.title, box=box.SIMPLE_HEAVY, title_justify="left", title_style=style)
        for i, h in enumerate(grid.headers):  # headers and long texts fold; numbers keep their width
            if h in wrap:
                t.add_column(h, overflow="fold", max_width=48 if h == "note" else 28)
            else:
                widest = max((len(row[i].text) for row in grid.rows), default=1)
                t.add_column(h, overflow="fold", min_width=min(widest, 20))
        for row in grid.rows:
            t.add_row(*(Text(c.text, style="bold green" if c.bold else "") for c in row))
        return t

    spec = board.spec
    items: list[Any] = [Text(f"{spec.title} (paper {spec.table_ref})", style="bold underline")]
    items += [Text(line, style="dim") for line in _summary_lines(board)]
    if board.rows:
        items.append(table(_runs_grid(board), "bold"))
        if board.comparisons:
            items.append(table(_tests_grid(board), "bold"))
    if board.paper:
        items.append(table(_paper_grid(board), "italic"))
    return Group(*items)


_CSV_FIELDS = [
    "benchmark", "kind", "table", "row", "searcher", "dataset", "space", "column", "metric", "label",
    "direction", "mean", "std", "n", "unit", "seeds", "best", "baseline", "test", "statistic", "pvalue",
    "p_holm", "cohens_d", "reject", "message", "note",
]  # fmt: skip


def _num(x: float | None) -> Any:
    """JSON/CSV-safe number: NaN and inf become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def to_csv(board: Board) -> str:
    """One board as long-format CSV: ``kind`` = run (a reproduced cell), test (a comparison) or
    reported (a number printed in the paper). p-values at full precision (``repr`` of the float)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    name = board.name

    def r(x: Any) -> Any:
        v = _num(x) if isinstance(x, float | int | np.floating) and not isinstance(x, bool) else x
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
                    "metric": col.metric, "label": col.label, "direction": col.direction, "mean": r(c.mean),
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
                "label": col.label, "direction": col.direction, "mean": r(res.mean_a), "std": r(res.std_a),
                "n": f"{res.n_a}/{res.n_b}", "unit": comp.unit, "baseline": comp.baseline, "test": res.test,
                "statistic": r(res.statistic), "pvalue": r(res.pvalue), "p_holm": r(res.p_holm),
                "cohens_d": r(res.cohens_d), "reject": comp.reject, "message": res.message,
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


def _result_dict(res: TestResult) -> dict[str, Any]:
    return {
        "test": res.test,
        "n_a": res.n_a,
        "n_b": res.n_b,
        "mean_a": _num(res.mean_a),
        "std_a": _num(res.std_a),
        "mean_b": _num(res.mean_b),
        "std_b": _num(res.std_b),
        "statistic": _num(res.statistic),
        "pvalue": _num(res.pvalue),
        "p_holm": _num(res.p_holm),
        "cohens_d": _num(res.cohens_d),
        "message": res.message or None,
    }


def board_to_dict(board: Board) -> dict[str, Any]:
    """A board as plain JSON-able data (NaN -> None; p-values are scipy's floats, unrounded)."""
    spec = board.spec
    return {
        "benchmark": spec.name,
        "title": spec.title,
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
                "aliases": list(c.aliases),
                "label": c.label,
                "direction": c.direction,
                "unit": c.unit,
                "scorers": list(c.scorers) if c.scorers else None,
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
                        "mean": _num(c.mean),
                        "std": _num(c.std),
                        "n": c.n,
                        "unit": c.unit,
                        "seeds": c.seeds,
                        "values": [_num(v) for v in c.values],
                        "best": c.best,
                    }
                    for k, c in r.cells.items()
                },
                "reported": {
                    k: [
                        {"table": v.table, "row": v.row, "value": v.value, "std": _num(v.std), "unit": v.unit}
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
                **_result_dict(c.result),
            }
            for c in board.comparisons
        ],
        "reported_in_paper": [
            {
                "table": p.table,
                "row": p.row,
                "method": p.method,
                "searcher": p.searcher or None,
                "dataset": p.dataset or None,
                "note": p.note,
                "cells": {
                    k: {"value": v.value, "std": _num(v.std), "unit": v.unit, "note": v.note}
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
# HTML with plots

_COLOURS = {"": "#1f77b4", "plain": "#1f77b4", "spcl": "#ff7f0e", "dihcl": "#2ca02c", "ours": "#d62728"}
_OTHER_COLOUR = "#7f7f7f"


def _colour(searcher: str) -> str:
    return _COLOURS.get(split_strategy(searcher)[0], _OTHER_COLOUR) if searcher else _OTHER_COLOUR


def _plot_series(board: Board, col: Column) -> list[tuple[str, str, float, float, str]]:
    """(label, kind, value, err, colour) bars for one column: runs (with the paper's matched number
    beside each), or, with no runs, the paper's rows that wcbench implements (else all of them)."""
    bars: list[tuple[str, str, float, float, str]] = []
    if board.rows:
        for r in board.rows:
            c = r.cells.get(col.key)
            if c is None or not math.isfinite(c.mean):
                continue
            name = r.label if len({x.dataset for x in board.rows}) == 1 else f"{r.label}\n({r.dataset})"
            err = c.std if math.isfinite(c.std) else 0.0
            bars.append((name, "run", c.mean, err, _colour(r.searcher)))
            rep = r.reported.get(col.key)
            if rep:
                pv = rep[0]
                bars.append(
                    ("", "reported", pv.value, pv.std if math.isfinite(pv.std) else 0.0, _colour(r.searcher))
                )
        return bars
    prs = [p for p in board.paper if col.key in p.cells]
    mine = [p for p in prs if p.searcher]
    for p in (mine or prs)[:24]:
        pv = p.cells[col.key]
        name = p.row if not p.dataset else f"{p.row}\n({p.dataset})"
        colour = _colour(p.searcher) if p.searcher else _colour(_table4_searcher(p.method))
        bars.append((name, "reported", pv.value, pv.std if math.isfinite(pv.std) else 0.0, colour))
    return bars


def _table4_searcher(method: str) -> str:
    return {"Ours": "ours-x", "SPCL": "spcl-x", "DARTS": "darts"}.get(method, "")


def _board_svg(board: Board) -> str | None:
    """Bars with error bars (mean ± std over seeds) per column; reported numbers hatched beside."""
    import matplotlib
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    series = [(c, _plot_series(board, c)) for c in board.spec.columns]
    series = [(c, s) for c, s in series if s]
    if not board.rows:  # the paper's numbers only: its headline columns
        series = series[:3]
    if not series:
        return None
    ncols = min(len(series), 3)
    nrows = math.ceil(len(series) / ncols)
    longest = max(len(s) for _, s in series)
    width = max(4.2 * ncols, min(14.0, 0.45 * longest * ncols + 2))
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 8, "svg.hashsalt": "wcbench"}):
        fig = Figure(figsize=(width, 3.6 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(series) :]:
            ax.set_visible(False)
        for ax, (col, bars) in zip(axes.flat, series):
            xs, ticks, labels = [], [], []
            x = 0.0
            for name, kind, _, _, _ in bars:
                if kind == "run" or not board.rows:
                    x += 1.0
                    ticks.append(x)
                    labels.append(name)
                else:
                    x += 0.42
                xs.append(x)
            for xi, (_, kind, value, err, colour) in zip(xs, bars):
                reported = kind == "reported"
                # reported: a pale face with hatch lines in the full colour; runs: the full colour
                face = tuple(1 - 0.35 * (1 - c) for c in to_rgb(colour)) if reported else to_rgb(colour)
                ax.bar(
                    xi, value, width=0.4, yerr=err if err > 0 else None, capsize=3, color=face,
                    hatch="///" if reported else None, edgecolor=colour, linewidth=0.8,
                    error_kw={"elinewidth": 1, "ecolor": "#333333"},
                )  # fmt: skip
            ax.set_xticks(
                ticks,
                labels,
                rotation=45 if len(ticks) > 4 else 0,
                ha="right" if len(ticks) > 4 else "center",
            )
            ax.set_title(f"{col.label} {col.arrow}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
        handles = (
            [Patch(color="#555555", alpha=0.9, label="wcbench runs: mean ± std over seeds")]
            if board.rows
            else []
        )
        handles.append(
            Patch(facecolor="#cccccc", hatch="///", edgecolor="#555555", label="reported in the paper")
        )
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    # several inline SVGs share one page: make their ids (clip paths, hatches) unique per board
    prefix = f"{board.name}-"
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#222;
background:#fff;max-width:1400px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:36px 0 6px;border-bottom:2px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:16px 0 4px;color:#444} p.meta,p.desc{color:#555;font-size:13px;margin:3px 0}
nav{font-size:13px;margin:8px 0 12px} nav a{margin-right:10px;color:#1f5fa8}
table{border-collapse:collapse;font-size:12px;margin:6px 0 10px} th,td{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top} th{background:#f3f5f8} td.best{font-weight:bold;background:#e7f5e7}
td.sig{font-weight:bold} table.reported td,table.reported th{color:#555} table.reported{background:#fafafa}
.badge{display:inline-block;font-size:11px;background:#fff3cd;border:1px solid #e0c36c;border-radius:3px;
padding:0 5px;margin-left:6px;color:#6b5200} .fig svg{max-width:100%;height:auto}
"""


def _html_grid(grid: _Grid, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in grid.headers)
    body = []
    for row in grid.rows:
        tds = "".join(
            f'<td class="best">{html.escape(c.text)}</td>' if c.bold else f"<td>{html.escape(c.text)}</td>"
            for c in row
        )
        body.append(f"<tr>{tds}</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_board(board: Board, with_plot: bool = True) -> str:
    spec = board.spec
    parts = [
        f'<section id="{spec.name}"><h2>{html.escape(spec.title)} '
        f"<small>(paper {spec.table_ref})</small></h2>"
    ]
    for line in _summary_lines(board):
        parts.append(f'<p class="desc">{html.escape(line)}</p>')
    if with_plot:
        svg = _board_svg(board)
        if svg:
            parts.append(f'<div class="fig">{svg}</div>')
    if board.rows:
        runs = _runs_grid(board)
        parts.append(f"<h3>{html.escape(runs.title)}</h3>{_html_grid(runs)}")
        if board.comparisons:
            tests = _tests_grid(board)
            parts.append(f"<h3>{html.escape(tests.title)}</h3>{_html_grid(tests)}")
    if board.paper:
        paper = _paper_grid(board)
        parts.append(
            f'<h3>{html.escape(paper.title)}<span class="badge">reported</span></h3>'
            + _html_grid(paper, "reported")
        )
    parts.append("</section>")
    return "\n".join(parts)


def to_html(boards: Sequence[Board], title: str = "wcbench leaderboards") -> str:
    """All boards as one static, self-contained HTML page (inline CSS and SVG plots, no scripts)."""
    import wcbench

    runs_found = any(b.runs_found for b in boards)
    runs_dir = boards[0].runs_dir if boards else "runs"
    nav = " ".join(f'<a href="#{b.name}">{html.escape(b.spec.title)}</a>' for b in boards)
    meta = (
        f"wcbench {wcbench.__version__}; runs from <code>{html.escape(runs_dir)}</code>"
        + ("" if runs_found else " — <strong>no runs found</strong>: the paper's reported numbers only")
        + ". Reported numbers come from <code>leaderboards/paper/*.csv</code> and are labelled as such."
    )
    body = "\n".join(_html_board(b) for b in boards)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f'<h1>{html.escape(title)}</h1><p class="meta">{meta}</p><nav>{nav}</nav>\n{body}\n</body></html>\n'
    )


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


# --------------------------------------------------------------------------------------------------
# wcbench compare

_DIRECTIONS = {m: c.direction for b in BOARDS.values() for c in b.columns for m in c.metrics}


@dataclass
class MetricComparison:
    """One metric of ``wcbench compare``."""

    metric: str
    scorer: str
    eval_dataset: str
    unit: str
    seeds_a: list[int]
    values_a: list[float]
    seeds_b: list[int]
    values_b: list[float]
    result: TestResult
    reject: bool = False
    direction: str | None = None


@dataclass
class CompareReport:
    """``wcbench compare A B``: one t-test per metric, Holm over them."""

    a: str
    b: str
    dataset: str
    space: str
    test: str
    alpha: float
    metrics: list[MetricComparison]

    def verdict(self, m: MetricComparison) -> str:
        res = m.result
        if res.degenerate:
            return f"no test: {res.message}"
        diff = res.mean_a - res.mean_b
        rel = "lower" if diff < 0 else "higher"
        judged = ""
        if m.direction:
            judged = " (better)" if (diff < 0) == (m.direction == "lower") else " (worse)"
        p = res.p_holm if len(self.metrics) > 1 else res.pvalue
        which = "Holm-adjusted p" if len(self.metrics) > 1 else "p"
        if m.reject:
            return (
                f"{self.a} has a significantly {rel} {m.metric} than {self.b}{judged}: "
                f"{which} = {format_p(p)} ≤ α = {self.alpha:g}"
            )
        return f"no significant difference in {m.metric} at α = {self.alpha:g} ({which} = {format_p(p)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "dataset": self.dataset,
            "space": self.space,
            "test": self.test,
            "alpha": self.alpha,
            "comparisons": [
                {
                    "metric": m.metric,
                    "scorer": m.scorer,
                    "eval_dataset": m.eval_dataset,
                    "unit": m.unit,
                    "direction": m.direction,
                    "seeds_a": m.seeds_a,
                    "values_a": m.values_a,
                    "seeds_b": m.seeds_b,
                    "values_b": m.values_b,
                    **_result_dict(m.result),
                    "reject": m.reject,
                    "verdict": self.verdict(m),
                }
                for m in self.metrics
            ],
        }


def _pick(sub: pd.DataFrame, metric: str, scorer: str | None, eval_dataset: str | None) -> pd.DataFrame:
    sub = sub[sub["metric"] == metric]
    if scorer is not None:
        sub = sub[sub["scorer"] == scorer]
    if eval_dataset is not None:
        sub = sub[sub["eval_dataset"].map(_norm) == _norm(eval_dataset)]
    return sub


def compare_runs(
    df: pd.DataFrame,
    a: str,
    b: str,
    metrics: Sequence[str],
    dataset: str | None = None,
    scorer: str | None = None,
    eval_dataset: str | None = None,
    space: str | None = None,
    test: str = "welch",
    alpha: float = 0.05,
    runs_dir: str | Path = "runs",
) -> CompareReport:
    """Per-seed values of searchers ``a`` and ``b`` on each metric, tested with
    :func:`wcbench.stats.compare` (Holm over the metrics). Ambiguities (several search datasets,
    scorers or eval datasets with the metric) and missing runs raise :class:`ConfigError`."""
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if not metrics:
        raise ConfigError("give at least one --metric")
    runs = df if "base" in df.columns else annotate_runs(df)
    sides: dict[str, tuple[str, str]] = {}
    for name in (a, b):
        base, suffix = split_space(name)
        if suffix and space and suffix != space.lower():
            raise ConfigError(f"{name!r} names space {suffix!r} but --space is {space!r}")
        sides[name] = (base, (suffix or space or DEFAULT_SPACE).lower())
    if not len(runs):
        raise ConfigError(f"no runs found under {runs_dir}; run `wcbench run` first")
    subs = {}
    for name, (base, sp) in sides.items():
        sub = runs[(runs["base"] == base) & (runs["space"] == sp)]
        if not len(sub):
            known = sorted(
                {f"{s}" if p == DEFAULT_SPACE else f"{s}+{p}" for s, p in zip(runs["base"], runs["space"])}
            )
            raise ConfigError(f"no runs of searcher {name!r} under {runs_dir}; found: {', '.join(known)}")
        subs[name] = sub
    if dataset is None:
        common = sorted(set(subs[a]["dataset"]) & set(subs[b]["dataset"]))
        if not common:
            da, db = (", ".join(sorted(set(subs[x]["dataset"]))) for x in (a, b))
            raise ConfigError(f"{a} and {b} were not searched on a common dataset ({a}: {da}; {b}: {db})")
        if len(common) > 1:
            raise ConfigError(f"{a} and {b} both have runs on {', '.join(common)}; pick one with --dataset")
        dataset = common[0]
    for name in (a, b):
        subs[name] = subs[name][subs[name]["dataset"] == dataset]
        if not len(subs[name]):
            raise ConfigError(f"no runs of {name} searched on {dataset!r} under {runs_dir}")

    out: list[MetricComparison] = []
    for metric in metrics:
        pa = _pick(subs[a], metric, scorer, eval_dataset)
        pb = _pick(subs[b], metric, scorer, eval_dataset)
        if not len(pa) or not len(pb):
            missing = a if not len(pa) else b
            avail = sorted(set(subs[missing]["metric"]))
            raise ConfigError(
                f"no {metric!r} scores for {missing} on {dataset}"
                + (f" (scorer {scorer})" if scorer else "")
                + (f" (eval dataset {eval_dataset})" if eval_dataset else "")
                + f"; its metrics: {', '.join(avail) or 'none'}"
            )
        combos = sorted(
            set(zip(pa["scorer"], pa["eval_dataset"])) & set(zip(pb["scorer"], pb["eval_dataset"]))
        )
        if not combos:
            raise ConfigError(
                f"{metric!r} of {a} and {b} come from different scorers or eval datasets; "
                "pass --scorer/--eval-dataset"
            )
        if len(combos) > 1:
            listed = ", ".join(f"{s} on {e}" for s, e in combos)
            raise ConfigError(
                f"{metric!r} is scored by several scorers/datasets ({listed}); "
                "pass --scorer or --eval-dataset"
            )
        sc, ev = combos[0]
        pa = pa[(pa["scorer"] == sc) & (pa["eval_dataset"] == ev)].sort_values("seed")
        pb = pb[(pb["scorer"] == sc) & (pb["eval_dataset"] == ev)].sort_values("seed")
        ua, ub = set(pa["unit"]), set(pb["unit"])
        seeds_a, seeds_b = [int(s) for s in pa["seed"]], [int(s) for s in pb["seed"]]
        va, vb = [float(v) for v in pa["value"]], [float(v) for v in pb["value"]]
        unit = ", ".join(sorted(ua | ub))
        if len(ua | ub) > 1:
            res = _degenerate(test, va, vb, f"units differ ({unit}): not compared")
        elif test == "paired":
            if seeds_a != seeds_b:
                raise ConfigError(
                    f"paired test needs the same seeds: {a} has {_seeds(seeds_a)}, "
                    f"{b} has {_seeds(seeds_b)}; use --test welch"
                )
            res = compare(va, vb, "paired")
        else:
            res = compare(va, vb, test)
        out.append(
            MetricComparison(
                metric,
                str(sc),
                str(ev),
                unit,
                seeds_a,
                va,
                seeds_b,
                vb,
                res,
                direction=_DIRECTIONS.get(metric),
            )
        )
    adjusted = with_holm([m.result for m in out])
    rejects = holm_reject([m.result.pvalue for m in out], alpha)
    for m, res, rej in zip(out, adjusted, rejects):
        m.result, m.reject = res, rej
    space_shown = sides[a][1]
    return CompareReport(a, b, str(dataset), space_shown, test, alpha, out)
