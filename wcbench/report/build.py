"""Boards computed from the run tree: rows, cells, the matched-baseline t-tests, the paper's numbers.

A board is computed from the run tree (:func:`wcbench.results.collect_runs`) and the paper's transcribed
results (:func:`wcbench.paper_results.load_paper_results`):

- one row per (search dataset, searcher[, search space]): mean +- sample std over seeds and n per
  column;
- the matched-baseline t-test per row and column: ``<strategy>-X`` against the plain baseline ``X``
  (``ours-pdarts`` vs ``pdarts``, ``spcl-pdarts`` vs ``pdarts``, ...), and ``ours-X`` also against
  ``spcl-X`` and ``dihcl-X`` as the paper's Tables 21-22 do; Welch by default
  (:func:`wcbench.stats.compare`), Holm over all of a board's comparisons, Cohen's d;
- the best mean per column (per search dataset and space) marked, by the column's direction;
- the paper's reported numbers, labelled as reported, never mixed into the statistics.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wcbench.errors import ConfigError
from wcbench.files import read_json
from wcbench.paper_results import load_paper_results
from wcbench.report.boards import (
    BOARDS,
    OTHER_BOARD,
    PAPER_DATASETS,
    BoardSpec,
    Column,
    check_benchmark,
    norm_dataset,
)
from wcbench.report.fairness import describe_differences, differing_settings, few_seeds_warning, too_few_seeds
from wcbench.runs import DEFAULT_SPACE, searcher_dir, split_searcher_dir
from wcbench.stats import TESTS, TestResult, compare, holm_reject, summarize, with_holm

__all__ = [
    "Board",
    "Cell",
    "Comparison",
    "PaperRow",
    "PaperValue",
    "Row",
    "annotate_runs",
    "build_board",
    "build_boards",
    "compare_cells",
]

_STRATEGY_ORDER = {"": 0, "plain": 0, "spcl": 1, "dihcl": 2, "ours": 3}

# Paper cells whose printed unit is wrong (wcbench/leaderboards/paper/README.md, "Table 9, search cost unit").
_PAPER_UNIT_FIXES = {(9, "search_cost", "GPU-h"): "GPU-days"}

# Reproduced units -> (display unit, factor).
_CONVERSIONS: dict[tuple[str, str], tuple[str, float]] = {
    ("params", "M"): ("M", 1e-6),
    ("MACs", "M"): ("M", 1e-6),
    ("GPU-h", "GPU-days"): ("GPU-days", 1 / 24),
    ("CPU-h", "CPU-days"): ("CPU-days", 1 / 24),
    ("MB", "MiB"): ("MiB", 1.0),
}


def _convert(value: float, unit: str, target: str) -> tuple[float, str]:
    if not unit or unit == target:
        return value, target
    if (unit, target) in _CONVERSIONS:
        shown, factor = _CONVERSIONS[(unit, target)]
        return value * factor, shown
    return value, unit


# --------------------------------------------------------------------------------------------------
# runs: searcher names, spaces, baselines


def split_strategy(searcher: str) -> tuple[str, str]:
    """``"ours-pdarts"`` -> ``("ours", "pdarts")``; a plain baseline ``"pdarts"`` -> ``("", "pdarts")``.

    Lenient on purpose, unlike :func:`wcbench.registry.split_searcher_name`: an old run tree may hold
    searchers of plug-ins that are no longer installed, and the board must still show them.
    """
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
    """:func:`~wcbench.results.collect_runs`'s table plus ``base`` (searcher without the space suffix)
    and ``space`` (the suffix, else the manifest's ``config.space``, else ``darts``)."""
    out = df.copy()
    bases, spaces = [], []
    cache: dict[Path, str | None] = {}
    for searcher, path in zip(out["searcher"], out["path"]):
        base, space = split_searcher_dir(str(searcher))
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
    eval_datasets: list[str] = field(default_factory=list)  # the datasets the scores were measured on
    run_dirs: list[str] = field(default_factory=list)  # the runs the values come from (fairness checks)
    scorer: str = ""  # the scorer whose params the runs must share


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
    untrained_tester: bool = False  # a seed searched with `strategy.tester_init=scratch`

    @property
    def label(self) -> str:
        label = searcher_dir(self.searcher, self.space or DEFAULT_SPACE)
        return f"{label} (untrained tester)" if self.untrained_tester else label

    @property
    def n(self) -> int:
        return max((c.n for c in self.cells.values()), default=0)

    @property
    def paper_dataset(self) -> bool:
        return norm_dataset(self.dataset) in PAPER_DATASETS

    @property
    def eval_datasets(self) -> set[str]:
        """The datasets this row's scores were measured on."""
        return {e for c in self.cells.values() for e in c.eval_datasets}


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
    warning: str = ""  # a test that ran on few seeds (wcbench.report.fairness)


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
    configuration: str = ""  # the wcbench settings the row corresponds to (the method's rows)


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

    @property
    def title(self) -> str:
        """The spec's title, naming the datasets the runs were evaluated on (``Worst-case subset of
        digits``) when they are not the paper's."""
        return self.spec.title_for(e for r in self.rows for e in r.eval_datasets)

    @property
    def heading(self) -> str:
        """:attr:`title` with the paper tables: ``Worst-case CIFAR-100 (paper Table 1)``."""
        return self.spec.heading_for(e for r in self.rows for e in r.eval_datasets)

    def row_title(self, row: Row) -> str:
        """The title as far as one row is concerned (what ``wcbench run`` prints beside that row)."""
        return self.spec.title_for(row.eval_datasets)

    def _shown_datasets(self, col: Column, row: Row | None) -> list[str]:
        """The eval datasets behind ``col`` (in ``row``, or in every row); for an empty column that
        takes other datasets, those of the rows around it (where such runs would go)."""
        rows = self.rows if row is None else [row]
        shown = [e for r in rows if col.key in r.cells for e in r.cells[col.key].eval_datasets]
        if not shown and col.accept_other:
            shown = [e for r in rows for e in r.eval_datasets if col.accepts_eval(e)]
        return shown

    def label(self, col: Column, row: Row | None = None) -> str:
        """``col``'s label naming the datasets its cells (of ``row``, or of every row) were measured on."""
        return col.label_for(self._shown_datasets(col, row))

    def comparison_label(self, comp: Comparison) -> str:
        """The label of ``comp``'s column as far as its row is concerned."""
        key = (comp.dataset, comp.searcher, comp.space)
        row = next((r for r in self.rows if (r.dataset, r.searcher, r.space) == key), None)
        return self.label(self.column(comp.column), row)

    def text(self, col: Column, row: Row | None = None) -> str:
        """:meth:`label` without the unit."""
        return col.text_for(self._shown_datasets(col, row))

    def row_comparison(self, row: Row) -> Comparison | None:
        """The test of ``row`` against its plain baseline on the primary column, if any."""
        if self.spec.primary is None:
            return None
        key = self.spec.columns[self.spec.primary].key
        for c in self.comparisons:
            if (
                c.primary
                and c.column == key
                and (c.dataset, c.searcher, c.space) == (row.dataset, row.searcher, row.space)
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
    sub = df[(df["metric"] == col.metric) & df["scorer"].isin(col.scorers)]
    if col.space is not None:
        sub = sub[sub["space"] == col.space]
    elif spec.spaces is not None:
        sub = sub[sub["space"].isin(spec.spaces)]
    if col.eval_datasets is not None and len(sub):
        sub = sub[[col.accepts_eval(str(e)) for e in sub["eval_dataset"]]]
    if not len(sub):
        return sub
    rank = {s: i for i, s in enumerate(col.scorers)}
    sub = sub.assign(_rank=[rank[s] for s in sub["scorer"]])
    sub = sub.sort_values(["_rank", "scorer", "path"], kind="stable")
    return sub.drop_duplicates(["dataset", "base", "space", "seed"], keep="first")


def _untrained_tester(paths: Iterable[str]) -> bool:
    """Whether a run of these score files searched with an untrained tester (``tester_init=scratch``
    in its ``search/config.json``: the paper's method starts from a pretrained one, Sec. 3.3)."""
    for seed_dir in {Path(p).parent.parent for p in paths if isinstance(p, str)}:
        try:
            config = json.loads((seed_dir / "search" / "config.json").read_text())
        except (OSError, ValueError):
            continue
        strategy = config.get("strategy_config") if isinstance(config, dict) else None
        if isinstance(strategy, dict) and strategy.get("tester_init") == "scratch":
            return True
    return False


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
            sub = sub[sub["eval_dataset"].map(norm_dataset).isin({norm_dataset(e) for e in col.paper_eval})]
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
                config = paper_configuration(
                    str(rec.method), rec.searcher if isinstance(rec.searcher, str) else ""
                )
                pr = rows[key] = PaperRow(rec.table, label, rec.method, rec.searcher, rec.dataset, "")
                pr.configuration = config
            unit, unit_note = _paper_unit(rec.table, rec.metric, rec.unit)
            note = _add_note(rec.note, unit_note)
            if col.key not in pr.cells:
                pr.cells[col.key] = PaperValue(rec.table, rec.row, rec.value, rec.std, unit, note)
            pr.note = _add_note(pr.note, note)
    order = {t: i for i, t in enumerate(spec.tables)}
    return sorted(rows.values(), key=lambda r: (order.get(r.table, 99), r.table))  # stable: CSV order


GAN_BY_NAME = {"FQGAN": "fqgan", "SNGAN": "sngan", "BigGAN": "biggan"}
"""Table 8's tester names -> wcbench's ``strategy.generator``."""
GAN_NAMES = {"fqgan": "FQ-GAN", "sngan": "SN-GAN", "biggan": "BigGAN"}
GAN_NAMES = {"fqgan": "FQ-GAN", "sngan": "SN-GAN", "biggan": "BigGAN"}


def paper_configuration(method: str, searcher: str) -> str:
    """The wcbench settings a paper row of the method (``ours-<algorithm>``) corresponds to: Sec. 4.2
    gives the GAN tester to DARTS and the augmentation tester to P-, PC- and PR-DARTS, while Tables 8-9
    report GAN ("FQGAN-pcdarts", "CR-pcdarts") rows for PC-DARTS too; NCR is cost_reduction=false."""
    strategy, algorithm = split_strategy(searcher) if searcher else ("", "")
    if strategy != "ours":
        return ""
    default_gan = algorithm in ("darts1st", "darts2nd")
    gan = next((g for name, g in GAN_BY_NAME.items() if method.startswith(name + "-")), None)
    cr = method.startswith(("CR-", "NCR-"))
    settings = []
    if gan is not None or (cr and not default_gan):
        if not default_gan:
            settings.append("strategy.tester=gan")
        if gan not in (None, "fqgan"):
            settings.append(f"strategy.generator={gan}")
    if method.startswith("NCR-"):
        settings.append("strategy.cost_reduction=false")
    uses_gan = default_gan or "strategy.tester=gan" in settings
    tester = f"{GAN_NAMES[gan or 'fqgan']} tester" if uses_gan else "augmentation tester"
    how = f"--searcher {searcher}" + "".join(f" --set {s}" for s in settings)
    return f"configuration: {how} ({tester})"


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


def degenerate(test: str, a: Sequence[float], b: Sequence[float], message: str) -> TestResult:
    """A test that was not run (``message`` says why), with the samples' summaries."""
    mean_a, std_a, n_a = summarize(a)
    mean_b, std_b, n_b = summarize(b)
    return TestResult(
        test=test, statistic=math.nan, pvalue=math.nan, n_a=n_a, n_b=n_b, mean_a=mean_a, std_a=std_a,
        mean_b=mean_b, std_b=std_b, cohens_d=math.nan, message=message,
    )  # fmt: skip


def seed_list(seeds: Sequence[int]) -> str:
    """``1,2,3`` (``none`` for no seeds), for messages."""
    return ",".join(str(s) for s in seeds) or "none"


def compare_cells(a: Cell, b: Cell, test: str, a_name: str = "a", b_name: str = "b") -> TestResult:
    """:func:`wcbench.stats.compare` on two cells; paired pairs by seed (a clear message when the
    seed sets differ), and cells in different units are never compared. Nor are cells whose runs'
    resolved settings differ in more than the seed, or with fewer than 3 seeds on a side
    (:mod:`wcbench.report.fairness`): the message names the keys, or n."""
    if a.unit != b.unit:
        return degenerate(test, a.values, b.values, f"units differ ({a.unit} vs {b.unit}): not compared")
    differ = differing_settings(a.run_dirs, b.run_dirs, a.scorer or None)
    if differ:
        return degenerate(
            test, a.values, b.values,
            f"settings differ in more than the seed ({describe_differences(differ)}): not compared",
        )  # fmt: skip
    few = too_few_seeds(a.n, b.n)
    if few:
        return degenerate(test, a.values, b.values, few)
    if test == "paired":
        if sorted(a.seeds) != sorted(b.seeds):
            return degenerate(
                test, a.values, b.values,
                f"paired test needs the same seeds: {a_name} has {seed_list(a.seeds)}, {b_name} has "
                f"{seed_list(b.seeds)}; use the Welch test",
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
    """The leaderboard of ``benchmark`` (a key of :data:`BOARDS`, or ``other_scorers``) from a
    :func:`~wcbench.results.collect_runs` table.

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
            seeds = [int(s) for s in g["seed"]]
            evals = sorted({str(e) for e in g["eval_dataset"]})
            run_paths = sorted({str(Path(p).parent.parent) for p in g["path"] if isinstance(p, str) and p})
            scorers = {str(x) for x in g["scorer"]}
            row.cells[col.key] = Cell(
                mean, std, n, unit, seeds, values, eval_datasets=evals, run_dirs=run_paths,
                scorer=scorers.pop() if len(scorers) == 1 else "",
            )  # fmt: skip
            row.untrained_tester = row.untrained_tester or _untrained_tester(g["path"])
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
            warn = "" if res.degenerate else few_seeds_warning(ca.n, cb.n) or ""
            comparisons.append(
                Comparison(
                    r.dataset, r.space, r.searcher, b.searcher, col.key, res, False, primary, ca.unit, warn
                )
            )
    adjusted = with_holm([c.result for c in comparisons])
    rejects = holm_reject([c.result.pvalue for c in comparisons], alpha) if comparisons else []
    for c, res, rej in zip(comparisons, adjusted, rejects):
        c.result, c.reject = res, rej

    if paper is None and spec.paper_benchmark is not None:
        paper = load_paper_results(spec.paper_benchmark)
    paper_rows = _paper_rows(paper, spec) if paper is not None else []
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
    """:func:`build_board` for each benchmark. By default every board of :data:`BOARDS`, then the
    ``other_scorers`` board when the runs have scores for it."""
    names = list(BOARDS) if benchmarks is None else list(benchmarks)
    for n in names:
        check_benchmark(n)
    runs = annotate_runs(df)
    boards = [build_board(runs, n, test, alpha, runs_dir=runs_dir) for n in names]
    if benchmarks is None:
        other = build_board(runs, OTHER_BOARD, test, alpha, runs_dir=runs_dir)
        if other.rows:
            boards.append(other)
    return boards
