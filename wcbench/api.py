"""The Python API: what the command line does, as typed functions that return Python objects.

``import wcbench`` re-exports these lazily (``wcbench.search``, ``wcbench.retrain``, ``wcbench.score``,
``wcbench.run``, ``wcbench.collect_runs``, ``wcbench.board``), so importing the package stays light;
torch loads on the first call. Each function calls the same stage as its command (:mod:`wcbench.stages`,
:mod:`wcbench.pipeline`, :mod:`wcbench.report`), writes the same files, resumes the same way and raises
the same one-line :class:`wcbench.errors.WcbenchError` where the command exits with status 2.

A notebook session (README "Python API")::

    import wcbench

    genotype = wcbench.search("ours-pdarts", "s/", preset="smoke")   # search/genotype.json and history
    wcbench.retrain("s/", "digits", "r/", preset="smoke")            # r/model.pt
    scores = wcbench.score("r/", ["clean", "cost"])                  # r/scores/<scorer>.json, as a table
    runs = wcbench.collect_runs("runs")                              # every score of a runs tree, tidy
    board = wcbench.board("worst_case_cifar100", "runs")             # a leaderboard as a DataFrame
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wcbench.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from evaluators.common import ScoreContext
    from evaluators.retrain import RetrainResult
    from wcbench.genotype import Genotype

__all__ = ["board", "collect_runs", "retrain", "run", "score", "search"]

RUN_COLUMNS = [
    "dataset",
    "searcher",
    "space",
    "seed",
    "scorer",
    "metric",
    "value",
    "unit",
    "eval_dataset",
    "genotype_hash",
    "path",
]
"""The columns of :func:`collect_runs`."""

SCORE_COLUMNS = ["scorer", "metric", "value", "unit", "dataset", "split", "num_examples", "path"]
"""The columns of :func:`score`."""

BOARD_COLUMNS = [
    "source",
    "dataset",
    "searcher",
    "space",
    "column",
    "label",
    "unit",
    "direction",
    "mean",
    "std",
    "n",
    "seeds",
    "best",
    "baseline",
    "p_value",
    "p_holm",
    "significant",
    "table",
    "note",
]
"""The columns of :func:`board`."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def search(
    searcher: str,
    out: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    preset: str = "paper",
    seed: int = 0,
    space: str = "darts",
    settings: Mapping[str, Any] | None = None,
    device: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    progress: bool = True,
    log: str | None = None,
) -> Genotype:
    """Search ``<strategy>-<algorithm>`` (``ours-pdarts``, ``pdarts``, ...) into ``out`` and return the
    genotype, as `wcbench search` does: ``genotype.json``, ``history.jsonl``, ``checkpoint.pt``;
    rerunning resumes. ``settings`` override the preset (``{"epochs": 2, "strategy.gamma": 0.5}``);
    ``dataset`` None is the preset's (CIFAR-10 for ``paper``, digits for a CPU preset); ``log``: e.g.
    ``"tensorboard"`` (:mod:`wcbench.tracking`)."""
    from wcbench.stages import search_stage

    return search_stage(
        searcher,
        dataset,
        Path(out),
        preset=preset,
        seed=seed,
        space=space,
        settings=settings,
        device=device,
        progress=progress,
        data_root=data_root,
        download=download,
        log=log,
    )


def retrain(
    genotype: Genotype | str | os.PathLike[str],
    dataset: str,
    out: str | os.PathLike[str],
    *,
    preset: str = "paper",
    family: str | None = None,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    device: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    progress: bool | None = None,
    log: str | None = None,
) -> RetrainResult:
    """Retrain ``genotype`` from scratch on ``dataset`` into ``out`` (paper Appendix D.2), as
    `wcbench retrain` does, resuming from its checkpoint; returns the result (``out_dir``,
    ``history``, ...). ``genotype``: a search directory (its recorded retrain table is used), a
    published name (``DARTS_V2``), a genotype file, a DARTS string or a :class:`~wcbench.genotype.Genotype`
    (retrained by ``family``'s table, default ``darts``, Table 33)."""
    from wcbench.genotype import Genotype
    from wcbench.stages import retrain_stage

    ref = genotype.to_darts() if isinstance(genotype, Genotype) else os.fspath(genotype)
    return retrain_stage(
        ref,
        dataset,
        Path(out),
        preset=preset,
        family=family,
        seed=seed,
        settings=settings,
        data_root=None if data_root is None else os.fspath(data_root),
        download=download,
        device=device,
        progress=progress,
        log=log,
    ).result


def _score_context(model: Any, **kw: Any) -> ScoreContext:
    """The :class:`~evaluators.common.ScoreContext` of what :func:`score` was given."""
    from wcbench.stages import model_score_context

    model = getattr(model, "out_dir", model)  # a RetrainResult: its directory
    if isinstance(model, str | os.PathLike) and Path(model).is_dir():
        return model_score_context(model, **kw)
    # HOOK(issue #12, external models): an nn.Module or a spec (timm:, torchvision:, module:fn) -> its context
    raise ConfigError(f"model {model!r} is not a retrain directory; give the `out` of wcbench.retrain")


def score(
    model: RetrainResult | str | os.PathLike[str],
    scorers: str | Sequence[str],
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    scores_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    data_root: str | None = None,
    download: bool = False,
    seed: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score a retrained model (a `wcbench retrain` directory, or :func:`retrain`'s result) with each
    of ``scorers`` (``"clean,cost"`` or a list), as `wcbench score --model` does: each writes
    ``<scores>/<scorer>.json`` (``<run>/scores`` in a run, else ``<model>/scores``). ``settings``: per
    scorer (``{"attacks": {"num_examples": 100}}``). Returns one row per (scorer, metric):
    :data:`SCORE_COLUMNS`."""
    import pandas as pd

    from wcbench.config import split_settings
    from wcbench.registry import SCORERS
    from wcbench.stages import score_stage

    names = (
        [s.strip() for s in scorers.split(",") if s.strip()] if isinstance(scorers, str) else list(scorers)
    )
    if not names:
        raise ConfigError("no scorer given: e.g. wcbench.score(model, ['clean', 'cost'])")
    for name in names:
        SCORERS.get(name)  # unknown names: one-line error with did-you-mean
    flat = {f"{n}.{k}": v for n, values in (settings or {}).items() for k, v in values.items()}
    stage = split_settings(flat, "score", names)
    ctx = _score_context(
        model,
        scores_dir=scores_dir,
        data_root=data_root,
        download=download,
        device=device,
        seed=seed,
        progress=progress,
    )
    rows = []
    for rec in score_stage(ctx, names, stage):
        path = str(Path(ctx.scores_dir) / f"{rec['scorer']}.json")
        for metric, m in rec["metrics"].items():
            value = m.get("value")
            rows.append(
                {
                    "scorer": rec["scorer"],
                    "metric": metric,
                    "value": math.nan if value is None else float(value),
                    "unit": m.get("unit", ""),
                    "dataset": rec.get("dataset"),
                    "split": rec.get("split"),
                    "num_examples": rec.get("num_examples"),
                    "path": path,
                }
            )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def run(
    searcher: str,
    *,
    dataset: str | None = None,
    preset: str = "paper",
    seeds: str | Sequence[int] = "1",
    scorers: str | Sequence[str] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    space: str = "darts",
    settings: Mapping[str, Any] | None = None,
    device: str | None = None,
    data_root: str | None = None,
    download: bool = False,
    progress: bool = True,
    log: str | None = None,
    executor: str = "local",
) -> list[Path]:
    """The whole pipeline per seed, as `wcbench run` does: search -> genotype -> retrain -> scores
    under ``runs_dir/<dataset>/<searcher>/seed-<n>/``, skipping finished stages. ``settings`` are keyed
    by stage (``{"search.epochs": 1, "retrain.epochs": 1, "attacks.num_examples": 50}``); ``scorers``
    None: what the paper reports for the dataset; ``executor``: ``local``, ``submitit-local`` or
    ``slurm`` (default SLURM resources). Returns the run directories."""
    from wcbench.pipeline import make_plan
    from wcbench.pipeline import run as run_plan

    plan = make_plan(
        searcher,
        dataset,
        preset,
        seeds,
        scorers,
        Path(runs_dir),
        space,
        dict(settings or {}),
        device=device,
        data_root=data_root,
        download=download,
        progress=progress,
        log=log,
    )
    return [Path(p) for p in run_plan(plan, executor, log=_say)]


def collect_runs(runs_dir: str | os.PathLike[str] = "runs") -> pd.DataFrame:
    """Every score in a runs tree as one tidy table, one row per (run, scorer, metric):
    :data:`RUN_COLUMNS`. ``searcher`` is the searcher (``ours-pdarts``), ``space`` its search space
    (``darts``, ``s1``..``s4``), ``dataset`` the dataset searched on and ``eval_dataset`` the one the
    score was measured on; the search cost of each run is a ``search_cost`` row. An empty or missing
    tree gives an empty table with the same columns."""
    from wcbench.report import annotate_runs
    from wcbench.results import collect_runs as collect

    df = annotate_runs(collect(runs_dir))
    df = df.drop(columns=["searcher"]).rename(columns={"base": "searcher"})
    return df[RUN_COLUMNS].reset_index(drop=True)


def board(
    benchmark: str,
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    test: str = "welch",
    alpha: float = 0.05,
    paper: bool = True,
) -> pd.DataFrame:
    """The leaderboard ``benchmark`` (``worst_case_cifar100``, ``attacks``, ``other_scorers``, ...; see
    `wcbench leaderboard`) as a tidy table, one row per (board row, column): :data:`BOARD_COLUMNS`.

    Rows of ``source == "runs"`` are this tree's runs: mean, sample std and n over seeds, ``best`` per
    column, and the matched-baseline t-test (``test``) against ``baseline`` with its p-value and Holm's
    adjusted p-value over the board at ``alpha``. With ``paper``, rows of ``source == "paper"`` follow:
    the numbers the paper reports (``table``), never mixed into the statistics."""
    import pandas as pd

    from wcbench import report
    from wcbench.results import collect_runs as collect

    built = report.build_board(collect(runs_dir), benchmark, test, alpha, runs_dir=str(runs_dir))
    columns = {c.key: c for c in built.spec.columns}
    rows: list[dict[str, Any]] = []
    for r in built.rows:
        tests = {
            c.column: c
            for c in built.comparisons
            if c.primary and (c.dataset, c.searcher, c.space) == (r.dataset, r.searcher, r.space)
        }
        for key, cell in r.cells.items():
            col = columns[key]
            t = tests.get(key)
            rows.append(
                {
                    "source": "runs",
                    "dataset": r.dataset,
                    "searcher": r.searcher,
                    "space": r.space,
                    "column": key,
                    "label": built.label(col, r),
                    "unit": cell.unit,
                    "direction": col.direction,
                    "mean": cell.mean,
                    "std": cell.std,
                    "n": cell.n,
                    "seeds": list(cell.seeds),
                    "best": cell.best,
                    "baseline": r.baseline,
                    "p_value": t.result.pvalue if t is not None else math.nan,
                    "p_holm": t.result.p_holm if t is not None and t.result.p_holm is not None else math.nan,
                    "significant": bool(t.reject) if t is not None else None,
                    "table": None,
                    "note": t.result.message if t is not None else "",
                }
            )
    if paper:
        for pr in built.paper:
            for key, value in pr.cells.items():
                col = columns[key]
                rows.append(
                    {
                        "source": "paper",
                        "dataset": pr.dataset,
                        "searcher": pr.searcher or pr.method,
                        "space": None,
                        "column": key,
                        "label": built.label(col),
                        "unit": value.unit,
                        "direction": col.direction,
                        "mean": value.value,
                        "std": value.std,
                        "n": None,
                        "seeds": [],
                        "best": False,
                        "baseline": None,
                        "p_value": math.nan,
                        "p_holm": math.nan,
                        "significant": None,
                        "table": value.table,
                        "note": value.note,
                    }
                )
    return pd.DataFrame(rows, columns=BOARD_COLUMNS)
