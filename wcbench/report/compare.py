"""``wcbench compare A B --metric M``: a t-test of two searchers' per-seed scores on metrics that
scorers declare (their direction says which way is better), Holm over the metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wcbench.errors import ConfigError
from wcbench.metrics import MetricSpec, declared_metrics
from wcbench.report.boards import norm_dataset
from wcbench.report.build import annotate_runs, degenerate, seed_list
from wcbench.report.fairness import describe_differences, differing_settings, few_seeds_warning, too_few_seeds
from wcbench.report.grids import format_p, result_dict
from wcbench.runs import DEFAULT_SPACE, searcher_dir, split_searcher_dir
from wcbench.stats import TESTS, TestResult, compare, holm_reject, with_holm

__all__ = ["CompareReport", "MetricComparison", "compare_runs"]


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
    differing: list[str] = field(default_factory=list)  # settings the runs differ in (--allow-different)
    warnings: list[str] = field(default_factory=list)


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
                    **result_dict(m.result),
                    "reject": m.reject,
                    "verdict": self.verdict(m),
                    "differing_settings": m.differing,
                    "warnings": m.warnings,
                }
                for m in self.metrics
            ],
        }


def _direction(declared: Mapping[str, Mapping[str, MetricSpec]], scorer: str, metric: str) -> str | None:
    """The direction ``scorer`` declares for ``metric``; None when it declares none."""
    spec = declared.get(scorer, {}).get(metric)
    return spec.direction if spec is not None else None


def _pick(sub: pd.DataFrame, metric: str, scorer: str | None, eval_dataset: str | None) -> pd.DataFrame:
    sub = sub[sub["metric"] == metric]
    if scorer is not None:  # one scorer, or several comma-separated (`--scorers`)
        sub = sub[sub["scorer"].isin([s.strip() for s in scorer.split(",")])]
    if eval_dataset is not None:
        sub = sub[sub["eval_dataset"].map(norm_dataset) == norm_dataset(eval_dataset)]
    return sub


def _run_dirs(rows: pd.DataFrame) -> list[Path]:
    """The run folders of a table's rows (a score file's or search history's grandparent)."""
    return sorted({Path(p).parent.parent for p in rows["path"] if isinstance(p, str) and p})


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
    allow_different: bool = False,
) -> CompareReport:
    """Per-seed values of searchers ``a`` and ``b`` on each metric, tested with
    :func:`wcbench.stats.compare` (Holm over the metrics). Ambiguities (several search datasets,
    scorers or eval datasets with the metric) and missing runs raise :class:`ConfigError`.

    Fairness (:mod:`wcbench.report.fairness`): runs whose resolved settings differ in anything but the
    seed (and what names the searcher) raise :class:`ConfigError` naming the keys, unless
    ``allow_different`` (then the comparison carries a warning naming them); fewer than 3 seeds on a
    side is no test, fewer than 5 a warning."""
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if not metrics:
        raise ConfigError("give at least one --metric")
    runs = df if "base" in df.columns else annotate_runs(df)
    sides: dict[str, tuple[str, str]] = {}
    for name in (a, b):
        base, suffix = split_searcher_dir(name)
        if suffix and space and suffix != space.lower():
            raise ConfigError(f"{name!r} names space {suffix!r} but --space is {space!r}")
        sides[name] = (base, (suffix or space or DEFAULT_SPACE).lower())
    if not len(runs):
        raise ConfigError(f"no runs found under {runs_dir}; run `wcbench run` first")
    subs = {}
    for name, (base, sp) in sides.items():
        sub = runs[(runs["base"] == base) & (runs["space"] == sp)]
        if not len(sub):
            known = sorted({searcher_dir(s, p) for s, p in zip(runs["base"], runs["space"])})
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

    declared = declared_metrics()
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
                "pass --scorers/--eval-dataset"
            )
        if len(combos) > 1:
            listed = ", ".join(f"{s} on {e}" for s, e in combos)
            raise ConfigError(
                f"{metric!r} is scored by several scorers/datasets ({listed}); "
                "pass --scorers or --eval-dataset"
            )
        sc, ev = combos[0]
        pa = pa[(pa["scorer"] == sc) & (pa["eval_dataset"] == ev)].sort_values("seed")
        pb = pb[(pb["scorer"] == sc) & (pb["eval_dataset"] == ev)].sort_values("seed")
        ua, ub = set(pa["unit"]), set(pb["unit"])
        seeds_a, seeds_b = [int(s) for s in pa["seed"]], [int(s) for s in pb["seed"]]
        va, vb = [float(v) for v in pa["value"]], [float(v) for v in pb["value"]]
        unit = ", ".join(sorted(ua | ub))
        differ = differing_settings(_run_dirs(pa), _run_dirs(pb), str(sc))
        notes = []
        if differ:
            shown = describe_differences(differ)
            what = f"the runs of {a} and {b} differ in settings other than the seed: {shown}"
            if not allow_different:
                raise ConfigError(
                    f"{what}; not a fair comparison: rerun with the same settings, or pass --allow-different "
                    "to test anyway"
                )
            notes.append(f"{what} (--allow-different): the test compares different experiments")
        few = too_few_seeds(len(va), len(vb))
        if len(ua | ub) > 1:
            res = degenerate(test, va, vb, f"units differ ({unit}): not compared")
        elif few:
            res = degenerate(test, va, vb, few)
        elif test == "paired":
            if seeds_a != seeds_b:
                raise ConfigError(
                    f"paired test needs the same seeds: {a} has {seed_list(seeds_a)}, "
                    f"{b} has {seed_list(seeds_b)}; use --test welch"
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
                direction=_direction(declared, str(sc), metric),
                differing=differ,
                warnings=notes + [w for w in [few_seeds_warning(len(va), len(vb))] if w],
            )
        )
    adjusted = with_holm([m.result for m in out])
    rejects = holm_reject([m.result.pvalue for m in out], alpha)
    for m, res, rej in zip(out, adjusted, rejects):
        m.result, m.reject = res, rej
    space_shown = sides[a][1]
    return CompareReport(a, b, str(dataset), space_shown, test, alpha, out)
