"""The paper's reported numbers (Tables 1-23 of "Improving Neural Architecture Search by Minimizing
Worst-Case Validation Loss"), as tidy tables for the leaderboard to print beside wcbench's own runs.

The numbers live in ``wcbench/leaderboards/paper/*.csv`` (one file per benchmark, see :data:`BENCHMARKS`
and ``wcbench/leaderboards/paper/README.md``), copied exactly as printed. They are package data: a
wheel carries them and they are read through :mod:`importlib.resources`, so an installed wcbench finds
them from any working directory. Columns:

``table, row, method, searcher, dataset, metric, value, std, unit, note, eval_dataset``

``row`` is the row label as printed (with the paper's * / † / ‡ / Δ markers), ``searcher`` the
wcbench searcher id (empty for methods wcbench does not implement), ``dataset`` the dataset the
architecture was searched on (as in ``runs/<dataset>/``; empty when the paper does not say or the
network was designed by hand), ``eval_dataset`` the one the number was measured on. A cell printed
as "-" has no row. Each printed cell appears exactly once across the files; search-cost cells of
Tables 5, 18, 19 and 23 are in ``search_cost.csv`` with Table 9.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from wcbench.errors import ConfigError

__all__ = ["BENCHMARKS", "COLUMNS", "Benchmark", "load_paper_results", "paper_results_dir"]

COLUMNS = [
    "table",
    "row",
    "method",
    "searcher",
    "dataset",
    "metric",
    "value",
    "std",
    "unit",
    "note",
    "eval_dataset",
]
_TEXT_COLUMNS = ["row", "method", "searcher", "dataset", "metric", "unit", "note", "eval_dataset"]


@dataclass(frozen=True)
class Benchmark:
    """One CSV of the paper's numbers: file name, title, and the paper tables it holds."""

    csv: str
    title: str
    tables: tuple[int, ...]


BENCHMARKS: dict[str, Benchmark] = {
    "worst_case_cifar100": Benchmark(
        "worst_case_cifar100.csv", "Errors on worst-case, average-case and all CIFAR-100 test images", (1,)
    ),
    "cifar10c": Benchmark("cifar10c.csv", "Average error on CIFAR-10-C (searched on CIFAR-10)", (2,)),
    "imagenet_c": Benchmark(
        "imagenet_c.csv", "Mean corruption error on ImageNet-C (searched on ImageNet)", (3,)
    ),
    "search_spaces_s1_s4": Benchmark(
        "search_spaces_s1_s4.csv", "Robustness against performance collapse: RobustDARTS spaces S1-S4", (4,)
    ),
    "cifar_overall": Benchmark(
        "cifar_overall.csv", "Test error and parameters on CIFAR-10 and CIFAR-100", (5, 18, 19)
    ),
    "imagenet": Benchmark("imagenet.csv", "Top-1/top-5 error, parameters and FLOPs on ImageNet", (6, 23)),
    "imagenet_a_r_sketch": Benchmark(
        "imagenet_a_r_sketch.csv",
        "ImageNet-A accuracy, ImageNet-R error, ImageNet-Sketch accuracy",
        (10, 11, 12),
    ),
    "attacks": Benchmark(
        "attacks.csv", "Accuracy under PGD, FGSM and C&W attacks (CIFAR-10, ImageNet)", (15, 16)
    ),
    "stl10": Benchmark("stl10.csv", "Transfer to STL-10: test accuracy", (17,)),
    "search_cost": Benchmark(
        "search_cost.csv",
        "Search cost and memory (Table 9) and the cost columns of Tables 5, 18, 19, 23",
        (9, 5, 18, 19, 23),
    ),
    "ablations": Benchmark(
        "ablations.csv",
        "Ablations: adversarial only, tester networks, tester learning, generator from scratch",
        (7, 8, 13, 14),
    ),
    "generated_images": Benchmark(
        "generated_images.csv", "Inception score and FID of generated CIFAR-100 images", (20,)
    ),
    "significance": Benchmark(
        "significance.csv", "p-values of the paper's one-sample t-tests (App. B.7)", (21, 22)
    ),
}


def paper_results_dir() -> Path:
    """Where the CSVs are: ``$WCBENCH_PAPER_RESULTS`` if set, else the package data
    ``wcbench/leaderboards/paper`` (found through :func:`importlib.resources.files`)."""
    env = os.environ.get("WCBENCH_PAPER_RESULTS")
    directory = Path(env) if env else Path(str(resources.files("wcbench") / "leaderboards" / "paper"))
    if not (directory / BENCHMARKS["worst_case_cifar100"].csv).is_file():
        fix = "point WCBENCH_PAPER_RESULTS at a folder of them" if env else "reinstall wcbench"
        raise ConfigError(f"the paper's reported results were not found in {directory}; {fix}")
    return directory


def _read(name: str, directory: Path) -> pd.DataFrame:
    path = directory / BENCHMARKS[name].csv
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    if list(df.columns) != COLUMNS:
        raise ConfigError(f"{path} has columns {list(df.columns)}, expected {COLUMNS}")
    out = df.copy()
    out["table"] = out["table"].astype("int64")
    try:
        out["value"] = out["value"].map(float).astype("float64")
        out["std"] = out["std"].map(lambda s: float(s) if s else math.nan).astype("float64")
    except ValueError as exc:
        raise ConfigError(f"{path} has a non-numeric value or std: {exc}") from exc
    for col in _TEXT_COLUMNS:
        out[col] = out[col].astype(str)
    out.insert(0, "benchmark", name)
    return out


def load_paper_results(benchmark: str | None = None) -> pd.DataFrame:
    """The paper's numbers for one benchmark (a key of :data:`BENCHMARKS`), or all of them.

    Returns a DataFrame with a ``benchmark`` column followed by :data:`COLUMNS`; ``value`` and
    ``std`` are floats (``std`` NaN where the paper prints none), text columns use "" for empty.
    """
    directory = paper_results_dir()
    if benchmark is None:
        names = list(BENCHMARKS)
    elif benchmark in BENCHMARKS:
        names = [benchmark]
    else:
        close = difflib.get_close_matches(benchmark, list(BENCHMARKS), n=1)
        maybe = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown paper benchmark {benchmark!r}{maybe}; known: {', '.join(BENCHMARKS)}")
    return pd.concat([_read(n, directory) for n in names], ignore_index=True)
